-- Issue 30: phone numbers proven by a code, reset codes issued in person, the village's
-- digital team (helpers acting for households that agreed), and what they did.

-- When the account's phone was proven by a code (NULL: not proven; such an account cannot
-- open a shop or be given one).
ALTER TABLE users ADD COLUMN phone_verified_at BIGINT;

-- Codes sent to a phone to prove it: a registration waiting for its code (name and password
-- hash kept until then), a phone being added to an account, a household's consent.
-- Only an HMAC of the code is kept.
CREATE TABLE phone_codes (
    id            {id},
    phone         TEXT NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('register', 'add_phone', 'household')),
    user_id       BIGINT REFERENCES users (id) ON DELETE CASCADE,
    household_id  BIGINT,
    display_name  TEXT,
    password_hash TEXT,
    code_hash     TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    sent_via      TEXT NOT NULL CHECK (sent_via IN ('zalo', 'sms', 'file')),
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX phone_codes_phone_idx ON phone_codes (phone, purpose, id);

-- Who issued a reset code in person (a moderator or the admin), and how a code went out.
ALTER TABLE password_resets ADD COLUMN issued_by BIGINT REFERENCES users (id);
ALTER TABLE password_resets ADD COLUMN sent_via TEXT;

-- Account events worth an audit line: reset codes issued in person, phones proven,
-- helpers named and removed.
CREATE TABLE account_audit (
    id         {id},
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id   BIGINT REFERENCES users (id),
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL
);
CREATE INDEX account_audit_user_idx ON account_audit (user_id, at);

-- The village's digital team, named by its moderator.
CREATE TABLE village_helpers (
    village_id BIGINT NOT NULL REFERENCES villages (id),
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    named_by   BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (village_id, user_id)
);

-- A household a helper is bringing online: waits for the code sent to its phone.
CREATE TABLE households (
    id           {id},
    village_id   BIGINT NOT NULL REFERENCES villages (id),
    helper_id    BIGINT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    phone        TEXT NOT NULL,
    shop_name    TEXT NOT NULL,
    user_id      BIGINT REFERENCES users (id),
    shop_id      BIGINT REFERENCES shops (id),
    confirmed_at BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX households_helper_idx ON households (helper_id, id);

-- A helper's rights on a shop, given by the household's code; the owner may revoke them.
CREATE TABLE shop_helpers (
    shop_id    BIGINT NOT NULL REFERENCES shops (id),
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    granted_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (shop_id, user_id)
);

-- Everything a helper did for a shop, shown to its owner.
CREATE TABLE helper_actions (
    id        {id},
    shop_id   BIGINT NOT NULL REFERENCES shops (id),
    helper_id BIGINT NOT NULL REFERENCES users (id),
    action    TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX helper_actions_shop_idx ON helper_actions (shop_id, id);
