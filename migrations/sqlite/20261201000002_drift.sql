-- Drift watch: what countersign last recorded or observed of each 1Password user's state,
-- the drifts it noticed (each announced once), and leases that let one replica sweep at a time.

CREATE TABLE user_states (
    user_id     TEXT PRIMARY KEY NOT NULL,
    email       TEXT,
    state       TEXT NOT NULL,
    -- When countersign recorded it, and what recorded it: a sweep, or an executed proposal.
    seen_at     TEXT NOT NULL,
    proposal_id TEXT
);

CREATE TABLE drifts (
    -- The `drift.detected` event that records it.
    seq          INTEGER PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL,
    email        TEXT,
    from_state   TEXT NOT NULL,
    to_state     TEXT NOT NULL,
    -- A reactivation that undid countersign's suspension: announced in the approvals channel.
    urgent       INTEGER NOT NULL,
    noticed_at   TEXT NOT NULL,
    announced_at TEXT
);
CREATE INDEX drifts_unannounced ON drifts (announced_at, seq);

CREATE TABLE leases (
    name   TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
);
