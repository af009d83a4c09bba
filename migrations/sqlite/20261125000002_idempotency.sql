-- Idempotency keys sent by automation, per token, kept 24 hours, with the SHA-256 of the raw
-- body so a replay with another body is told apart from a true retry.
CREATE TABLE idempotency_keys (
    token_id    TEXT NOT NULL,
    key         TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    proposal_id TEXT NOT NULL REFERENCES proposals (id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (token_id, key)
);
