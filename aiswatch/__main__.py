"""``python -m aiswatch`` and the ``aiswatch`` command.

The decoding process (multiprocessing, spawn) imports this module again as
``__mp_main__``: the CLI, and with it FastAPI, numpy and shapely, is imported
only when run as the program, so the worker starts light. A Ctrl-C while the
CLI is still importing is one line and exit code 130, as later.
"""

import sys


def run() -> None:
    try:
        from aiswatch.cli import main  # noqa: PLC0415 (a Ctrl-C while importing)
    except KeyboardInterrupt:
        sys.stderr.write("aiswatch: interrupted\n")
        raise SystemExit(130) from None
    main()


if __name__ == "__main__":
    run()
