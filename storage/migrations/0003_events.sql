-- Events found by the detectors, their outbox for the alert dispatcher, the
-- watchlist matches, and the detectors' clock.

CREATE TABLE events (
    id          text PRIMARY KEY,          -- from (mmsi, kind, start, key): deterministic
    kind        text NOT NULL,
    state       text NOT NULL CHECK (state IN ('open', 'closed', 'withdrawn')),
    revision    integer NOT NULL DEFAULT 1,
    vessel      text NOT NULL,             -- the watchlist entry's name
    mmsi        integer NOT NULL,
    imo         integer,
    port        text,
    zone_key    text NOT NULL DEFAULT '',
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz,
    lat         double precision,
    lon         double precision,
    details     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_kind_start ON events (kind, start_ts);
CREATE INDEX events_vessel_start ON events (vessel, start_ts);
CREATE INDEX events_mmsi ON events (mmsi);

-- Written in the same transaction as the event revision it announces; the
-- alert dispatcher consumes it (delivered_at) and never sees a revision twice.
CREATE TABLE event_outbox (
    seq          bigserial PRIMARY KEY,
    event_id     text NOT NULL REFERENCES events (id),
    revision     integer NOT NULL,
    kind         text NOT NULL,
    state        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (event_id, revision)
);
CREATE INDEX event_outbox_undelivered ON event_outbox (seq) WHERE delivered_at IS NULL;

CREATE TABLE watchlist_matches (
    entry       text NOT NULL,
    mmsi        integer NOT NULL,
    level       text NOT NULL,             -- identified, probable, candidate, rejected
    reasons     text[] NOT NULL,
    first_at    timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entry, mmsi)
);

-- The detectors' watermark, so a restart resumes at the same clock.
CREATE TABLE detector_state (
    name   text PRIMARY KEY,
    value  timestamptz NOT NULL
);
