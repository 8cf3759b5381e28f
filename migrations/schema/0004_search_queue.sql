-- Changes waiting to reach the search index. A row is written in the same transaction as
-- the change (a product, its stock, its agreed price, its shop); the search sync worker
-- reads the current rows of what it names, applies them to the engine and only then
-- deletes the row. An unreachable engine leaves the row for a later attempt.
CREATE TABLE search_queue (
    id              {id},
    scope           TEXT NOT NULL CHECK (scope IN ('product', 'shop', 'price_item', 'village', 'all')),
    scope_id        BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX search_queue_due_idx ON search_queue (next_attempt_at, id);

-- One holder at a time for single-writer workers (two sync workers applying the same
-- product out of order could leave an older version in the index).
CREATE TABLE worker_leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
INSERT INTO worker_leases (name, holder, until_ms) VALUES ('search_sync', '', 0);
