-- Drift attribution from 1Password's Events API (issue 24).
-- Who made a drift, as an audit event names them; and the message that announced it, so an
-- attribution that arrives later edits it instead of posting again.
ALTER TABLE drifts ADD COLUMN actor_uuid TEXT;
ALTER TABLE drifts ADD COLUMN actor_name TEXT;
ALTER TABLE drifts ADD COLUMN actor_email TEXT;
ALTER TABLE drifts ADD COLUMN actor_ip TEXT;
ALTER TABLE drifts ADD COLUMN actor_location TEXT;
ALTER TABLE drifts ADD COLUMN changed_at TEXT COLLATE "C";
ALTER TABLE drifts ADD COLUMN attributed_at TEXT COLLATE "C";
ALTER TABLE drifts ADD COLUMN message_channel TEXT;
ALTER TABLE drifts ADD COLUMN message_ts TEXT;
ALTER TABLE drifts ADD COLUMN edited_at TEXT COLLATE "C";
-- A user state an audit event told of (its uuid), newer than any listing taken before it.
ALTER TABLE user_states ADD COLUMN audit_event TEXT;
-- Every audit event about a user's state that was read, once: what it was taken as.
CREATE TABLE audit_events (
    uuid        TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    action      TEXT NOT NULL,
    occurred_at TEXT COLLATE "C" NOT NULL,
    -- The execution it confirms, the drift it names the actor of, or neither.
    proposal_id TEXT,
    drift_seq   BIGINT,
    read_at     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_events_proposal ON audit_events (proposal_id);
-- Where the next poll of the Events API starts: one cursor for all replicas.
CREATE TABLE audit_cursor (
    name       TEXT PRIMARY KEY NOT NULL,
    cursor     TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
