-- The Users API gateway (DESIGN §10): clients a SOAR's 1Password integration authenticates as,
-- and the access tokens they were issued. Secrets and tokens are kept as SHA-256 only.
CREATE TABLE gateway_clients (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
-- Policy rules and requesters name a client by its name: one live client per name.
CREATE UNIQUE INDEX gateway_clients_live_name ON gateway_clients (name) WHERE revoked_at IS NULL;

CREATE TABLE gateway_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL REFERENCES gateway_clients (id),
    expires_at TEXT NOT NULL
);
CREATE INDEX gateway_tokens_expiry ON gateway_tokens (expires_at);
