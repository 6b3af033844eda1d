"""Asyncio sources: where lines come from. The only I/O in ``ingest``."""
