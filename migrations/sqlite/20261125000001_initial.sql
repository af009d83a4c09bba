-- countersign's ledger. `proposals` holds each proposal's current state; `ledger_events` is the
-- append-only, hash-chained history every transition writes in the same transaction.

CREATE TABLE proposals (
    id                 TEXT PRIMARY KEY NOT NULL,
    action             TEXT NOT NULL CHECK (action IN ('suspend', 'restore')),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'executing',
                           'executed', 'denied', 'expired', 'cancelled', 'failed')),
    target_user_id     TEXT NOT NULL,
    requester_token_id TEXT,
    created_at         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    slack_channel      TEXT,
    slack_ts           TEXT,
    -- The whole proposal as the API shows it; the columns above are its indexed projection.
    document           TEXT NOT NULL CHECK (json_valid(document)),
    updated_at         TEXT NOT NULL
);
CREATE INDEX proposals_status ON proposals (status, expires_at);
CREATE INDEX proposals_target ON proposals (target_user_id, action, status);

-- One row per person per proposal: the database itself refuses a second vote.
CREATE TABLE approvals (
    proposal_id   TEXT NOT NULL REFERENCES proposals (id),
    slack_user_id TEXT NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT,
    at            TEXT NOT NULL,
    PRIMARY KEY (proposal_id, slack_user_id)
);

CREATE TABLE ledger_events (
    seq         INTEGER PRIMARY KEY NOT NULL,
    proposal_id TEXT,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    payload     TEXT NOT NULL CHECK (json_valid(payload)),
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
CREATE INDEX ledger_events_proposal ON ledger_events (proposal_id, seq);

CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only');
END;

CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN
    SELECT RAISE(ABORT, 'ledger_events is append-only');
END;

-- API tokens are stored as SHA-256 of the secret; the secret is shown once, at creation.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Work caused by a ledger event, written in that event's transaction and done by the worker.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id  TEXT REFERENCES proposals (id),
    -- Jobs of one proposal run in order within a lane; a Slack outage or a callback receiver
    -- that is down never holds back the 1Password lane.
    lane         TEXT NOT NULL CHECK (lane IN ('slack', 'onepassword', 'callback')),
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    created_at   TEXT NOT NULL,
    run_after    TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_until TEXT,
    last_error   TEXT,
    done_at      TEXT
);
CREATE INDEX outbox_due ON outbox (done_at, run_after);
CREATE INDEX outbox_order ON outbox (proposal_id, lane, done_at, id);
