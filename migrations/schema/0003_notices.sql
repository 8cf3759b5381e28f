-- Durable outbox of notices (email, Zalo, Telegram). A row is written in the same
--@sqlite
-- transaction as the event that causes it; a worker delivers it. Kept equal to the postgres file.
--@postgres
-- transaction as the event that causes it; a worker delivers it. Kept equal to the sqlite file.
--@end

-- What happened, written in the same transaction as the event itself (order paid, proposal
-- opened, …). The worker expands each event into notices per recipient and channel.
CREATE TABLE notice_events (
    id          {id},
    kind        TEXT NOT NULL,
    ref_id      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expanded_at BIGINT
);
CREATE INDEX notice_events_pending_idx ON notice_events (expanded_at, id);

CREATE TABLE notices (
    id              {id},
    -- one notice per event, channel and recipient: enqueueing twice is a no-op, and the key is
    -- sent to providers that deduplicate (Zalo tracking_id, email Message-ID)
    idempotency_key TEXT NOT NULL,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'zalo', 'telegram')),
    recipient       TEXT NOT NULL,
    shop_id         BIGINT REFERENCES shops (id),
    -- rendered content as JSON: subject, text, html, template_data
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    run_after       BIGINT NOT NULL,
    -- a claimed row is leased until this time; a crashed worker's lease runs out and the row
    -- is taken again (at most one duplicate, never a lost notice)
    lease_until     BIGINT,
    last_error      TEXT,
    provider_ref    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    CONSTRAINT notices_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX notices_due_idx ON notices (status, run_after);
CREATE INDEX notices_shop_idx ON notices (shop_id, created_at);

-- Zalo OA tokens: one row; refreshed one at a time (a refresh token is single-use).
CREATE TABLE zalo_tokens (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    access_token  TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Which channels a shop wants its notices on (email, Zalo phone, Telegram chat).
ALTER TABLE shops ADD COLUMN notify_email BIGINT NOT NULL DEFAULT 1;
ALTER TABLE shops ADD COLUMN notify_zalo BIGINT NOT NULL DEFAULT 1;
ALTER TABLE shops ADD COLUMN notify_telegram BIGINT NOT NULL DEFAULT 1;
