-- The detectors' inbox: every write transaction of every ingest instance adds
-- one row naming the vessels it stored records of (each with the event time of
-- its oldest new record), in the same transaction. The detector leader reads
-- the rows it can see, detects, and deletes them in the transaction that
-- writes its events: its progress commits with its output. See
-- aiswatch/detection.py.
CREATE TABLE detector_inbox (
    seq             bigserial PRIMARY KEY,
    -- MMSIs with new positions, and the event time of each one's oldest
    mmsis           integer[] NOT NULL,
    first_ts        timestamptz[] NOT NULL,
    -- MMSIs with static reports (stored as identity changes, or confirming one)
    statics         integer[] NOT NULL,
    static_first_ts timestamptz[] NOT NULL,
    -- the spans of event time the transaction stored (split where a day
    -- apart: a live feed and an archive in one write stay apart)
    span_starts     timestamptz[] NOT NULL,
    span_ends       timestamptz[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Writers send event times as microseconds since the epoch (cheap to format, exact).
CREATE FUNCTION aiswatch_micros_to_ts(micros bigint[]) RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(timestamptz 'epoch' + m * interval '1 microsecond' ORDER BY n), '{}')
    FROM unnest(micros) WITH ORDINALITY AS u(m, n)
$$;

CREATE FUNCTION detector_inbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aiswatch_inbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER detector_inbox_notify AFTER INSERT ON detector_inbox
    FOR EACH STATEMENT EXECUTE FUNCTION detector_inbox_notify();

-- The periods of event time stored data covers (detectors/periods.py): each
-- vessel is judged by the clock of its own period. Kept by the leader, as are
-- the tracks it must rebuild from a late record on (a failover keeps them).
CREATE TABLE detector_periods (
    start_ts  timestamptz NOT NULL,
    end_ts    timestamptz NOT NULL
);

CREATE TABLE detector_stale (
    mmsi   integer PRIMARY KEY,
    since  timestamptz NOT NULL
);
