-- Signed Slack requests are single use: the SHA-256 of each accepted signature, kept while
-- Slack's five-minute window (and a margin for clocks) could still accept it. The first
-- delivery inserts its row; a replay, on any replica, finds it there and does nothing.
CREATE TABLE slack_signatures (
    signature_sha256 TEXT PRIMARY KEY NOT NULL,
    -- The request's signed X-Slack-Request-Timestamp; rows are pruned by it.
    signed_at        TEXT COLLATE "C" NOT NULL,
    received_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX slack_signatures_signed ON slack_signatures (signed_at);
