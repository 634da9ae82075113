-- insert_event: one state change of a window, for window_events.
INSERT INTO window_events (window_id, event_at, from_state, to_state, detail)
VALUES (%(window_id)s, %(event_at)s, %(from_state)s, %(to_state)s, %(detail)s);
