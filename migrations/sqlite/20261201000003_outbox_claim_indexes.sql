-- Claiming the next job walks an index of undone jobs in the order they are to run, and the
-- per-user check looks only at jobs leased now; done jobs, however many, are never scanned.
-- `priority`: in a burst new cards first (0), then card updates (1), then everything else (2).
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;
UPDATE outbox SET priority = CASE kind WHEN 'post_card' THEN 0 WHEN 'update_card' THEN 1 ELSE 2 END;
CREATE INDEX outbox_next ON outbox (lane, priority, id) WHERE done_at IS NULL;
CREATE INDEX outbox_leased ON outbox (lane, leased_until) WHERE done_at IS NULL;
