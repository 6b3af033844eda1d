"""PostgreSQL / TimescaleDB storage: schema, pool, batched writes, queries.

All SQL lives in this package. It depends on ``ingest.records`` for the
records it writes and on nothing else of ours.
"""
