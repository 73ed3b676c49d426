-- Queues and the event bus of the embedded backend, in one SQLite file shared by processes.
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    id            TEXT    NOT NULL UNIQUE,
    body          TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,   -- ms since the Unix epoch
    visible_at    INTEGER NOT NULL,   -- ms; a leased message is invisible until then
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT    UNIQUE,     -- the current lease, if any
    dead_at       INTEGER             -- set when dead-lettered
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, dead_at, visible_at, seq);

-- Bus rules: events of a detail type are copied to the subscribed queues.
CREATE TABLE IF NOT EXISTS subscriptions (
    bus         TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    queue       TEXT NOT NULL,
    PRIMARY KEY (bus, detail_type, queue)
);
