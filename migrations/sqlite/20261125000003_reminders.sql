-- When the half-TTL reminder was posted for a pending proposal; at most one per proposal.
ALTER TABLE proposals ADD COLUMN reminded_at TEXT;
