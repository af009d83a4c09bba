-- Who opened countersign's Home tab, and when last: their Home is kept current for a day after.
CREATE TABLE home_openers (
    slack_user_id TEXT PRIMARY KEY NOT NULL,
    opened_at     TEXT COLLATE "C" NOT NULL
);
