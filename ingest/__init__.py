"""Reading AIS: lines in, typed records out.

The pure part (``nmea``, ``assembly``, ``dedup``, ``decode``, ``pipeline``)
does no I/O and takes the clock as an argument; ``sources`` holds the asyncio
edges that read bytes from files (and, later, sockets and brokers).
"""
