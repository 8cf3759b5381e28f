-- Per-address request rates kept in the database, so every instance counts against the same
-- allowance (issue 12). One row per (scope, address): `tat` is the GCRA's theoretical
-- arrival time in ms since the epoch; `ok` says whether the request that last touched the
-- row was let through. Rows whose `tat` has passed hold nothing and are swept.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL,
    ok INTEGER NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
