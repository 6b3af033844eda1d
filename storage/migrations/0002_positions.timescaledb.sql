-- Positions in a TimescaleDB hypertable: daily chunks, compressed by MMSI.
-- Compression and retention policies are set from the configuration at start
-- (storage/partitions.py), not here.

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
);

SELECT create_hypertable('positions', 'ts', chunk_time_interval => INTERVAL '1 day');

CREATE UNIQUE INDEX positions_key ON positions (mmsi, ts, payload_crc);

-- Compressed by vessel (segment by mmsi), ordered by time within a vessel.
-- payload_crc, the rest of the unique key, is ordered by too: TimescaleDB
-- checks the key of a row going into a compressed chunk (a replay) through the
-- segment-by and order-by columns, and warns when a key column is in neither.
-- Order-by, not segment-by: the CRC is nearly unique, so segmenting by it
-- would leave one row per segment and nothing to compress. (0007 brings
-- schemas made before this to the same settings.)
ALTER TABLE positions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'mmsi',
    timescaledb.compress_orderby = 'ts, payload_crc'
);
