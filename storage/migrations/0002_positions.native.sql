-- Positions, partitioned by day with PostgreSQL's own range partitioning.
-- aiswatch creates each day's partition before writing to it (and a few days
-- ahead); see storage/partitions.py.

CREATE TABLE positions (
    ts           timestamptz NOT NULL,
    mmsi         integer NOT NULL,
    msg_type     smallint NOT NULL,
    lat          double precision,
    lon          double precision,
    speed        real,
    course       real,
    heading      smallint,
    status       smallint,
    turn         real,
    accuracy     boolean,
    second       smallint,
    station      text,
    payload_crc  bigint NOT NULL
) PARTITION BY RANGE (ts);

-- Identifies a message, so replaying a file stores nothing twice; also serves
-- a vessel's track over time.
CREATE UNIQUE INDEX positions_key ON positions (mmsi, ts, payload_crc);
