-- window_events: every state change of every window, in order; the ledger's history for audits and debugging.
-- Grain: event_id.
CREATE SEQUENCE IF NOT EXISTS window_event_ids;
CREATE TABLE IF NOT EXISTS window_events (
    event_id     BIGINT PRIMARY KEY DEFAULT nextval('window_event_ids'),
    window_id    VARCHAR NOT NULL,
    event_at     TIMESTAMPTZ NOT NULL,
    from_state   VARCHAR,
    to_state     VARCHAR NOT NULL,
    detail       VARCHAR
);
