"""Detectors: positions and static reports in, events out. Pure logic.

Nothing here opens a socket, runs SQL or reads the wall clock: the clock is an
argument, so a replay and a live feed give the same events for the same
messages. :mod:`detectors.engine` is the entry point.
"""
