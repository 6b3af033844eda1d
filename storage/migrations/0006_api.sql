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
