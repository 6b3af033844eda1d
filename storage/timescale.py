"""TimescaleDB's policies on ``positions``, kept equal to the settings.

Applied at every start: a policy that exists with another interval is removed
and added again (``add_*_policy(if_not_exists => true)`` alone would keep the
old one, silently), and the retention policy is removed when
``retention_days`` is unset.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

#: policy -> (the job's procedure, its interval in the job's config, the add and remove functions)
_POLICIES = {
    "compression": (
        "policy_compression", "compress_after", "add_compression_policy", "remove_compression_policy"
    ),
    "retention": ("policy_retention", "drop_after", "add_retention_policy", "remove_retention_policy"),
}  # fmt: skip


async def apply_policies(
    conn: psycopg.AsyncConnection, *, compress_after_days: int, retention_days: int | None
) -> None:
    """Make the compression and retention policies of ``positions`` what the settings say."""
    await _apply(conn, "compression", compress_after_days)
    await _apply(conn, "retention", retention_days)


async def _apply(conn: psycopg.AsyncConnection, policy: str, days: int | None) -> None:
    proc, key, add, remove = _POLICIES[policy]
    row = await (
        await conn.execute(
            "SELECT (config ->> %s)::interval FROM timescaledb_information.jobs"
            " WHERE hypertable_name = 'positions' AND proc_name = %s",
            (key, proc),
        )
    ).fetchone()
    current: timedelta | None = None if row is None else row[0]
    wanted = None if days is None else timedelta(days=days)
    if current == wanted:
        return
    async with conn.transaction():
        if current is not None:
            await conn.execute(sql.SQL("SELECT {}('positions')").format(sql.Identifier(remove)))
        if wanted is not None:
            query = sql.SQL("SELECT {}('positions', %s::interval)").format(sql.Identifier(add))
            await conn.execute(query, (wanted,))
    log.info(
        "database: %s policy of positions: %s -> %s",
        policy,
        "none" if current is None else f"after {current.days} days",
        "none" if days is None else f"after {days} days",
    )
