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

ALTER TABLE positions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'mmsi',
    timescaledb.compress_orderby = 'ts'
);
