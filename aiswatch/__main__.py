"""``python -m aiswatch``.

The decoding process (multiprocessing, spawn) imports this module again as
``__mp_main__``: the CLI, and with it FastAPI, numpy and shapely, is imported
only when run as the program, so the worker starts in milliseconds and is
ignoring Ctrl-C before a user can press it.
"""

if __name__ == "__main__":
    from aiswatch.cli import main

    main()
