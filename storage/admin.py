"""Creating and dropping whole databases (tests, benchmarks, set-up scripts).

aiswatch itself never needs this; the helpers live here because they are SQL.
"""

from __future__ import annotations

import psycopg
from psycopg import sql


def database_url(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (from ``template`` if given); return its URL."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(query)
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
