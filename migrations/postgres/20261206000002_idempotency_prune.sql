-- Idempotency keys live 24 hours: an index on their time lets each new key prune the
-- expired ones cheaply.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
