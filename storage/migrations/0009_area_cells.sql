-- Which vessels were in an area: positions by grid cell.
--
-- A cell is a tenth of a degree of latitude by a tenth of longitude (about
-- 11 km by 6 km here). Once a day's partition is complete (no longer today),
-- the service indexes its positions by (cell, time) (storage/partitions.py,
-- index_areas), so that "who was in Vostochny's zone that day" reads the few
-- cells around the zone instead of the whole day. Writing is not slowed: the
-- index is built once per partition, not kept up row by row while the day
-- is live (a backfill into an indexed day does pay for it). A position off
-- the globe (NaN, an infinity, a latitude past 90) has no cell (NULL): it
-- must neither fail the index's build nor a later write into its day.
CREATE FUNCTION aiswatch_cell(lat double precision, lon double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180
                THEN (floor(lat * 10)::integer + 900) * 3601 + (floor(lon * 10)::integer + 1800) END
$$;
