-- A proposal can end `superseded` (a newer decision about the same user was approved first);
-- `approved_at` orders decisions per user; outbox claims carry a fencing token.
--
-- SQLite cannot change a CHECK constraint in place, so `proposals` is rebuilt. Foreign keys
-- from `approvals` and `outbox` point at it by name; deferring their checks to commit lets the
-- old table go before the new one takes its name.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE proposals_rebuilt (
    id                 TEXT PRIMARY KEY NOT NULL,
    action             TEXT NOT NULL CHECK (action IN ('suspend', 'restore')),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'executing',
                           'executed', 'denied', 'expired', 'cancelled', 'failed', 'superseded')),
    target_user_id     TEXT NOT NULL,
    requester_token_id TEXT,
    created_at         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    -- When the proposal became approved (its last approval, or its creation for a policy
    -- rule); NULL while it never was.
    approved_at        TEXT,
    slack_channel      TEXT,
    slack_ts           TEXT,
    document           TEXT NOT NULL CHECK (json_valid(document)),
    updated_at         TEXT NOT NULL,
    reminded_at        TEXT
);

INSERT INTO proposals_rebuilt (id, action, status, target_user_id, requester_token_id,
        created_at, expires_at, approved_at, slack_channel, slack_ts, document, updated_at,
        reminded_at)
    SELECT id, action, status, target_user_id, requester_token_id, created_at, expires_at,
           CASE WHEN status IN ('approved', 'executing', 'executed', 'failed')
                THEN strftime('%Y-%m-%dT%H:%M:%fZ', COALESCE(
                    json_extract(document, '$.approvals[#-1].at'),
                    json_extract(document, '$.created_at')))
           END,
           slack_channel, slack_ts, document, updated_at, reminded_at
    FROM proposals;

DROP TABLE proposals;
ALTER TABLE proposals_rebuilt RENAME TO proposals;
CREATE INDEX proposals_status ON proposals (status, expires_at);
CREATE INDEX proposals_target ON proposals (target_user_id, action, status);
CREATE INDEX proposals_decisions ON proposals (target_user_id, approved_at);

-- Only the worker holding a claim's token may renew, complete or reschedule it.
ALTER TABLE outbox ADD COLUMN lease_token TEXT;
