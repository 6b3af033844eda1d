from aiswatch.cli import main

if __name__ == "__main__":  # the decoding process re-imports this module under spawn
    main()
