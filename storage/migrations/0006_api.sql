-- HTTP API tokens and the indexes the history queries need.

-- A token is shown once when created; only its SHA-256 is kept.
CREATE TABLE api_tokens (
    name        text PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);

-- A vessel by the name it broadcast (any time), case-insensitively.
CREATE INDEX vessel_static_upper_shipname ON vessel_static (upper(shipname));
-- Watchlist entries by name, case-insensitively.
CREATE INDEX watchlist_matches_upper_entry ON watchlist_matches (upper(entry));
-- A vessel's events by kind and time (tracks and voyages read dark gaps,
-- port calls and implausible fixes of one MMSI).
CREATE INDEX events_mmsi_kind_start ON events (mmsi, kind, start_ts);
-- Port calls at a port over time.
CREATE INDEX events_port_kind_start ON events (upper(port), kind, start_ts) WHERE port IS NOT NULL;
-- Positions by time alone (vessels in an area over a day): a BRIN index, a
-- few pages per partition and next to nothing per insert, as feeds and
-- archives arrive in time order. A monthly archive partition is then read
-- for the day asked, not in full. New block ranges are summarised by
-- autovacuum (autosummarize); until then they are read like the rest.
CREATE INDEX positions_ts_brin ON positions USING brin (ts) WITH (autosummarize = on);
