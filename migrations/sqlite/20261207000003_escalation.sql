-- When a pending proposal was escalated (policy `escalate_after`): once, across replicas.
ALTER TABLE proposals ADD COLUMN escalated_at TEXT;
