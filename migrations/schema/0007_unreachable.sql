-- A notice for a shop that has no channel able to deliver it (no confirmed email, Zalo or
-- Telegram not set up) used to vanish: now each such case is kept for the admin's
-- failed-notices page, with the shop named (issue 15).
CREATE TABLE unreachable_notices (
    id        {id},
    shop_id   BIGINT NOT NULL REFERENCES shops (id),
    kind      TEXT NOT NULL,
    event_key TEXT NOT NULL,
    at        BIGINT NOT NULL,
    CONSTRAINT unreachable_notices_key UNIQUE (event_key)
);
CREATE INDEX unreachable_notices_at_idx ON unreachable_notices (at);
