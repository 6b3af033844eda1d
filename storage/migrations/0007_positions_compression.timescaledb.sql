-- payload_crc joins the compression order-by (see 0002) in schemas made
-- before 0002 had it; chunks compressed before keep their settings until they
-- are recompressed. For schemas made since, this sets what they have.
ALTER TABLE positions SET (timescaledb.compress_orderby = 'ts, payload_crc');
