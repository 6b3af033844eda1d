"""API tokens: random, shown once, kept only as SHA-256 hashes.

A token is 32 random bytes (URL-safe text, ``aw_`` in front so a leaked one
is recognisable). The database keeps its hash; checking a token is one
statement that also notes when it was last used. A revoked token stays
listed (with when it was revoked) and is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from storage.vessels import QueryError

PREFIX: Final = "aw_"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(conn: psycopg.AsyncConnection[Any], name: str) -> str:
    """A new token named ``name`` (shown once: only its hash is stored)."""
    if not name.strip() or len(name) > 100:
        raise QueryError("a token needs a name of 1 to 100 characters")
    token = PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO api_tokens (name, token_hash) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (name, token_hash(token)),
        )
        if cur.rowcount != 1:
            raise QueryError(f"a token named {name!r} exists already: choose another name")
    return token


async def list_tokens(conn: psycopg.AsyncConnection[Any]) -> list[TokenInfo]:
    cur = await conn.execute(
        "SELECT name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name"
    )
    return [TokenInfo(*row) for row in await cur.fetchall()]


async def revoke_token(conn: psycopg.AsyncConnection[Any], name: str) -> None:
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,)
        )
        if cur.rowcount != 1:
            raise QueryError(f"no active token named {name!r}")


async def check_token(conn: psycopg.AsyncConnection[Any], token: str) -> str | None:
    """The name of the active token ``token``, or None. When it was last used
    is written at most once a minute, so most requests only read."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    row = await (
        await conn.execute(
            # one statement (one round trip on the API's autocommit connections)
            "WITH found AS (SELECT name, last_used_at IS NULL OR last_used_at < now() - interval '1 minute'"
            " AS stale FROM api_tokens WHERE token_hash = %(hash)s AND revoked_at IS NULL),"
            " touched AS (UPDATE api_tokens SET last_used_at = now() WHERE token_hash = %(hash)s"
            " AND (SELECT stale FROM found)) SELECT name FROM found",
            {"hash": digest},
        )
    ).fetchone()
    await conn.commit()
    return None if row is None else str(row[0])
