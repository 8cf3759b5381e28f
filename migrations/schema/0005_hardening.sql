-- Closing the attacks that worked against the board, payments and accounts (issue 14).
--@sqlite
-- Kept equal to migrations/postgres/0005 except for id columns.
--@postgres
-- Kept equal to migrations/sqlite/0005 except for id columns.
--@end
-- 1. A shop joins its village's price board only when the village's moderator (or an admin)
--    accepts it: until then it lists nothing, proposes nothing and votes on nothing. Shops
--    that existed before this migration were already trading: they stay accepted.
ALTER TABLE shops ADD COLUMN membership TEXT NOT NULL DEFAULT 'accepted'
    CHECK (membership IN ('pending', 'accepted', 'rejected'));
ALTER TABLE shops ADD COLUMN membership_by BIGINT REFERENCES users (id);
ALTER TABLE shops ADD COLUMN membership_at BIGINT;
ALTER TABLE shops ADD COLUMN membership_reason TEXT;
CREATE INDEX shops_village_membership_idx ON shops (village_id, membership);

-- A shop's notices reach its email only once the address is confirmed (a link mailed to
-- it). Addresses already in use before this migration count as confirmed.
ALTER TABLE shops ADD COLUMN email_confirmed BIGINT NOT NULL DEFAULT 1 CHECK (email_confirmed IN (0, 1));
ALTER TABLE shops ADD COLUMN email_token_hash TEXT;

-- 2. One vote per person, whatever the number of shops they own. Earlier votes cast once per
--    shop by one account are folded to one (the vote through the account's first shop).
DELETE FROM votes WHERE EXISTS (
    SELECT 1 FROM votes v2
    WHERE v2.proposal_id = votes.proposal_id AND v2.user_id = votes.user_id AND v2.shop_id < votes.shop_id
);
CREATE UNIQUE INDEX votes_one_per_user ON votes (proposal_id, user_id);

-- A proposal that passed the vote but changes the price by more than 30 % waits for the
-- moderator: status stays 'open' (one open proposal per item), stage becomes 'moderator'.
-- decision_reason is the moderator's written reason for a rejection (public).
ALTER TABLE proposals ADD COLUMN stage TEXT NOT NULL DEFAULT 'voting' CHECK (stage IN ('voting', 'moderator'));
ALTER TABLE proposals ADD COLUMN decision_reason TEXT;

-- 3. A payment whose orders were all cancelled by their sellers before any money arrived is
--    closed (status 'expired', cancelled_at set); money arriving later is owed back.
ALTER TABLE payments ADD COLUMN cancelled_at BIGINT;

-- Open unpaid checkouts are bounded per client address and per phone number.
ALTER TABLE checkouts ADD COLUMN client_ip TEXT;
CREATE INDEX checkouts_client_ip_idx ON checkouts (client_ip, created_at);
CREATE INDEX checkouts_phone_idx ON checkouts (buyer_phone, created_at);

-- 4. Attempt counters that are reserved before the expensive check, atomically:
--    INSERT … ON CONFLICT (key) DO UPDATE … RETURNING n takes the row's lock on PostgreSQL
--    and runs under the write lock on SQLite, so N concurrent attempts see 1, 2, … N.
--    A counter covers one window from window_start; the first attempt after it starts anew.
--    Keys: 'lock:<login>|<address>' (lockout), 'ip:<address>' (throttle),
--    'track:<order>|<address>', 'test-notice:<shop>', 'reset:<login>', 'hold:<phone|address>'.
CREATE TABLE attempt_counters (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    n            BIGINT NOT NULL
);
CREATE INDEX attempt_counters_window_idx ON attempt_counters (window_start);
DROP TABLE login_failures;

-- 5. Password reset codes: only a SHA-256 of the code is kept; one use, short life, few tries.
CREATE TABLE password_resets (
    id         {id},
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id, created_at);
