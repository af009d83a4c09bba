-- Incidents: suspend proposals that arrived in a burst share incident cards (issue 23).
-- `alert_id` is the alert they share, NULL for those grouped by arrival; `members` and
-- `cards` count them, and `joined_at` is when the newest member joined.
CREATE TABLE incidents (
    id         TEXT PRIMARY KEY NOT NULL,
    channel    TEXT NOT NULL,
    alert_id   TEXT,
    created_at TEXT NOT NULL,
    joined_at  TEXT NOT NULL,
    members    INTEGER NOT NULL,
    cards      INTEGER NOT NULL
);
CREATE INDEX incidents_open ON incidents (channel, joined_at);
-- A member's seat: its incident, the card it is a row of, its place in arrival order.
ALTER TABLE proposals ADD COLUMN incident_id TEXT REFERENCES incidents (id);
ALTER TABLE proposals ADD COLUMN incident_card INTEGER;
ALTER TABLE proposals ADD COLUMN incident_seq INTEGER;
CREATE INDEX proposals_incident ON proposals (incident_id, incident_seq);
