-- accepted_creates: how many creates OKX accepted (created, or the file existed) for one window.
SELECT count(*)
FROM create_attempts
WHERE window_id = %(window_id)s
  AND outcome IN ('created', 'existed');
