-- Vessels: each MMSI's current identity, and the history of what it said.

CREATE TABLE vessels (
    mmsi          integer PRIMARY KEY,
    imo           integer,
    callsign      text,
    shipname      text,
    ship_type     smallint,
    to_bow        smallint,
    to_stern      smallint,
    to_port       smallint,
    to_starboard  smallint,
    draught       real,
    destination   text,
    eta           timestamptz,
    -- event time of the newest static report this identity rests on
    static_at     timestamptz NOT NULL
);
CREATE INDEX vessels_imo ON vessels (imo) WHERE imo IS NOT NULL;
CREATE INDEX vessels_shipname ON vessels (shipname);

-- One row per change: a report that changes nothing adds no row.
CREATE TABLE vessel_static (
    mmsi          integer NOT NULL,
    valid_from    timestamptz NOT NULL,
    msg_type      smallint NOT NULL,
    imo           integer,
    callsign      text,
    shipname      text,
    ship_type     smallint,
    to_bow        smallint,
    to_stern      smallint,
    to_port       smallint,
    to_starboard  smallint,
    draught       real,
    destination   text,
    eta           timestamptz,
    PRIMARY KEY (mmsi, valid_from)
);
CREATE INDEX vessel_static_imo ON vessel_static (imo) WHERE imo IS NOT NULL;

-- What every source read, by outcome: the accounting of "nothing lost".
CREATE TABLE source_counters (
    source      text NOT NULL,
    outcome     text NOT NULL,   -- stored, already_stored, duplicate, filtered, malformed
    reason      text NOT NULL DEFAULT '',
    lines       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, outcome, reason)
);

-- Apply staged static reports in event-time order. Each report is merged with
-- the identity in effect at its time (a field it does not carry keeps its
-- value); a history row is written only when the merge changes something, and
-- the current identity moves only forward in time, so late and replayed
-- reports are safe. A report that changes nothing and is not newer than the
-- vessel's last confirmation (vessels.static_at) was already known: its lines
-- are counted as already stored. Returns (history rows written, lines already
-- stored).
CREATE FUNCTION aiswatch_apply_static(OUT changes integer, OUT already_lines integer)
LANGUAGE plpgsql AS $$
DECLARE
    r        record;
    prev     vessel_static%ROWTYPE;
    merged   vessel_static%ROWTYPE;
    current_at timestamptz;
BEGIN
    changes := 0;
    already_lines := 0;
    FOR r IN SELECT * FROM static_stage ORDER BY mmsi, ts LOOP
        SELECT * INTO prev FROM vessel_static
         WHERE mmsi = r.mmsi AND valid_from <= r.ts
         ORDER BY valid_from DESC LIMIT 1;
        merged.mmsi := r.mmsi;
        merged.valid_from := r.ts;
        merged.msg_type := r.msg_type;
        merged.imo := coalesce(r.imo, prev.imo);
        merged.callsign := coalesce(r.callsign, prev.callsign);
        merged.shipname := coalesce(r.shipname, prev.shipname);
        merged.ship_type := coalesce(r.ship_type, prev.ship_type);
        merged.to_bow := coalesce(r.to_bow, prev.to_bow);
        merged.to_stern := coalesce(r.to_stern, prev.to_stern);
        merged.to_port := coalesce(r.to_port, prev.to_port);
        merged.to_starboard := coalesce(r.to_starboard, prev.to_starboard);
        merged.draught := coalesce(r.draught, prev.draught);
        merged.destination := coalesce(r.destination, prev.destination);
        merged.eta := coalesce(r.eta, prev.eta);
        IF prev.mmsi IS NOT NULL AND
           (merged.imo, merged.callsign, merged.shipname, merged.ship_type, merged.to_bow,
            merged.to_stern, merged.to_port, merged.to_starboard, merged.draught,
            merged.destination, merged.eta)
           IS NOT DISTINCT FROM
           (prev.imo, prev.callsign, prev.shipname, prev.ship_type, prev.to_bow,
            prev.to_stern, prev.to_port, prev.to_starboard, prev.draught,
            prev.destination, prev.eta) THEN
            SELECT static_at INTO current_at FROM vessels WHERE mmsi = r.mmsi;
            IF current_at IS NOT NULL AND r.ts <= current_at THEN
                already_lines := already_lines + r.sentences;
            ELSE
                UPDATE vessels SET static_at = r.ts WHERE mmsi = r.mmsi AND static_at < r.ts;
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO vessel_static VALUES (merged.*) ON CONFLICT (mmsi, valid_from) DO NOTHING;
        IF NOT FOUND THEN
            already_lines := already_lines + r.sentences;
            CONTINUE;
        END IF;
        changes := changes + 1;
        INSERT INTO vessels (mmsi, imo, callsign, shipname, ship_type, to_bow, to_stern,
                             to_port, to_starboard, draught, destination, eta, static_at)
        VALUES (merged.mmsi, merged.imo, merged.callsign, merged.shipname, merged.ship_type,
                merged.to_bow, merged.to_stern, merged.to_port, merged.to_starboard,
                merged.draught, merged.destination, merged.eta, merged.valid_from)
        ON CONFLICT (mmsi) DO UPDATE SET
            imo = EXCLUDED.imo, callsign = EXCLUDED.callsign, shipname = EXCLUDED.shipname,
            ship_type = EXCLUDED.ship_type, to_bow = EXCLUDED.to_bow,
            to_stern = EXCLUDED.to_stern, to_port = EXCLUDED.to_port,
            to_starboard = EXCLUDED.to_starboard, draught = EXCLUDED.draught,
            destination = EXCLUDED.destination, eta = EXCLUDED.eta,
            static_at = EXCLUDED.static_at
        WHERE vessels.static_at <= EXCLUDED.static_at;
    END LOOP;
END
$$;
