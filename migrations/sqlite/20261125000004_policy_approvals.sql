-- Counting an auto-approve rule's approvals in the last hour must not scan the whole ledger.
CREATE INDEX ledger_events_actor ON ledger_events (kind, actor, at);
