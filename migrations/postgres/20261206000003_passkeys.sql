-- Passkeys (WebAuthn credentials) of Slack approvers, and the one-time links that enroll one or
-- cast a vote with one. A ceremony's server state sits on its link between its two halves, so
-- any replica can finish it and a challenge is used once.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY NOT NULL,
    slack_user_id TEXT NOT NULL,
    passkey       TEXT NOT NULL CHECK (passkey::json IS NOT NULL),
    aaguid        TEXT,
    created_at    TEXT COLLATE "C" NOT NULL,
    used_at       TEXT COLLATE "C",
    revoked_at    TEXT COLLATE "C"
);
CREATE INDEX passkeys_user ON passkeys (slack_user_id);

CREATE TABLE passkey_links (
    token_sha256  TEXT PRIMARY KEY NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('enroll', 'add', 'vote')),
    slack_user_id TEXT NOT NULL,
    proposal_id   TEXT,
    action        TEXT,
    created_at    TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    ceremony      TEXT,
    -- For an 'add' link: the passkey its owner proved before registering another.
    proven_by     TEXT,
    used_at       TEXT COLLATE "C"
);
