from aiswatch.cli import main

main()
