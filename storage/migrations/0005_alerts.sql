-- Alerts: what the dispatcher sent (or will send), to which channel, and the
-- daily digest's runs. See alerts/store.py.

-- Wake the dispatcher when an outbox row is written: the notification is sent
-- when the writing transaction commits (never for one that rolls back).
CREATE FUNCTION event_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aiswatch_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION event_outbox_notify();

-- An outbox row waiting for its group's cool-down is not read again before
-- this time, so a backlog in cool-down neither starves later rows nor is
-- re-read on every poll.
ALTER TABLE event_outbox ADD COLUMN alert_due_at timestamptz;

-- One message to one channel: an alert (folding one or more outbox rows) or a
-- digest. The delivery record is the row itself: attempts, the last error,
-- when it was sent and the id the channel gave it, or when it was given up.
CREATE TABLE alert_deliveries (
    id          text PRIMARY KEY,          -- deterministic: channel, lead event and revision (or digest day)
    channel     text NOT NULL,
    kind        text NOT NULL,             -- an event kind, or 'digest' or 'test'
    vessel      text NOT NULL DEFAULT '',
    subject     text NOT NULL,
    thread      text,                      -- a follow-up: the first alert of its event (id)
    folded      integer NOT NULL DEFAULT 1, -- outbox rows folded into it
    message     jsonb NOT NULL,            -- what is sent: subject, text, html, data, images
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    last_error  text,
    sent_at     timestamptz,
    channel_message_id text,
    failed_at   timestamptz                -- dead-lettered: given up after alerts.give_up_h
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (channel, created_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX alert_deliveries_group ON alert_deliveries (channel, vessel, kind, created_at);

-- Which event each channel has announced, in which alert, up to which revision:
-- later revisions are follow-ups to that first alert.
CREATE TABLE alert_events (
    channel       text NOT NULL,
    event_id      text NOT NULL,
    first_delivery text NOT NULL REFERENCES alert_deliveries (id),
    last_revision integer NOT NULL,
    PRIMARY KEY (channel, event_id)
);

-- One row per digest day: written in the transaction that queues its
-- deliveries, so no day is sent twice.
CREATE TABLE digest_runs (
    day         date PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    channels    text[] NOT NULL,
    summary     text NOT NULL
);
