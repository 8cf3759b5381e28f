--@sqlite
-- Chợ Làng schema, SQLite flavour. Kept column-for-column equal to migrations/postgres.
--@postgres
-- Chợ Làng schema, PostgreSQL flavour. Kept column-for-column equal to migrations/sqlite.
--@end
-- Conventions shared with SQLite so one set of queries runs on both through sqlx::Any:
--   * every integer is BIGINT (Any decodes i64 from both engines' integers);
--   * flags are BIGINT 0/1, never BOOLEAN (Any cannot decode SQLite booleans);
--   * times are BIGINT milliseconds since the Unix epoch, UTC;
--   * money is BIGINT whole đồng (VND has no minor unit), never a float.
-- Constraint names are referenced by src/db.rs to turn violations into user messages.

CREATE TABLE users (
    id            {id},
    email         TEXT,
    phone         TEXT,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- 'seller' owns shops; 'moderator' keeps the price boards of the villages in
    -- village_moderators; 'admin' can do everything.
    role          TEXT NOT NULL CHECK (role IN ('seller', 'moderator', 'admin')),
    created_at    BIGINT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_phone_key UNIQUE (phone),
    CONSTRAINT users_has_login CHECK (email IS NOT NULL OR phone IS NOT NULL)
);

-- Only a SHA-256 of the session token is stored: a leaked table does not give sessions away.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Failed logins, per login name and per client address, for the attempt limit.
CREATE TABLE login_failures (
    id        {id},
    key       TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX login_failures_key_at_idx ON login_failures (key, at);

CREATE TABLE villages (
    id             {id},
    slug           TEXT NOT NULL,
    name           TEXT NOT NULL,
    commune        TEXT NOT NULL,
    district       TEXT NOT NULL,
    province       TEXT NOT NULL,
    story          TEXT NOT NULL DEFAULT '',
    -- Quorum for price proposals: yes votes must be at least quorum_min_yes AND more than
    -- quorum_percent % of the village's active shops; proposals close after proposal_days.
    quorum_min_yes BIGINT NOT NULL DEFAULT 3 CHECK (quorum_min_yes >= 1),
    quorum_percent BIGINT NOT NULL DEFAULT 50 CHECK (quorum_percent BETWEEN 0 AND 99),
    proposal_days  BIGINT NOT NULL DEFAULT 7 CHECK (proposal_days BETWEEN 1 AND 60),
    created_at     BIGINT NOT NULL,
    CONSTRAINT villages_slug_key UNIQUE (slug),
    CONSTRAINT villages_identity_key UNIQUE (name, commune, district)
);

CREATE TABLE village_moderators (
    village_id BIGINT NOT NULL REFERENCES villages (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (village_id, user_id)
);

CREATE TABLE shops (
    id                {id},
    slug              TEXT NOT NULL,
    village_id        BIGINT NOT NULL REFERENCES villages (id),
    -- NULL until a seller account is given the shop (imported shops start unclaimed).
    owner_id          BIGINT REFERENCES users (id),
    name              TEXT NOT NULL,
    phone             TEXT NOT NULL,
    email             TEXT,
    zalo_phone        TEXT,
    telegram_chat_id  TEXT,
    bank_bin          TEXT,
    bank_account_no   TEXT,
    bank_account_name TEXT,
    story             TEXT NOT NULL DEFAULT '',
    active            BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CONSTRAINT shops_slug_key UNIQUE (slug),
    CONSTRAINT shops_village_name_key UNIQUE (village_id, name)
);
CREATE INDEX shops_owner_idx ON shops (owner_id);

-- The village price board: one agreed price per item. Products never carry a price of
-- their own; they point at an item here.
CREATE TABLE price_items (
    id         {id},
    village_id BIGINT NOT NULL REFERENCES villages (id),
    name       TEXT NOT NULL,
    unit       TEXT NOT NULL,
    price_vnd  BIGINT NOT NULL CHECK (price_vnd > 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT price_items_village_name_key UNIQUE (village_id, name)
);

CREATE TABLE proposals (
    id               {id},
    price_item_id    BIGINT NOT NULL REFERENCES price_items (id),
    proposer_user_id BIGINT NOT NULL REFERENCES users (id),
    proposer_shop_id BIGINT NOT NULL REFERENCES shops (id),
    old_price_vnd    BIGINT NOT NULL,
    new_price_vnd    BIGINT NOT NULL CHECK (new_price_vnd > 0),
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'approved', 'rejected')),
    -- how it was decided: 'quorum', 'moderator' or 'expired'
    decision         TEXT,
    created_at       BIGINT NOT NULL,
    closes_at        BIGINT NOT NULL,
    decided_at       BIGINT,
    decided_by       BIGINT REFERENCES users (id)
);
-- At most one open proposal per item: two competing open votes would be confusing.
CREATE UNIQUE INDEX proposals_one_open_per_item ON proposals (price_item_id) WHERE status = 'open';
CREATE INDEX proposals_status_closes_idx ON proposals (status, closes_at);

-- One vote per shop per proposal (the quorum counts the village's active shops).
CREATE TABLE votes (
    proposal_id BIGINT NOT NULL REFERENCES proposals (id),
    shop_id     BIGINT NOT NULL REFERENCES shops (id),
    user_id     BIGINT NOT NULL REFERENCES users (id),
    approve     BIGINT NOT NULL CHECK (approve IN (0, 1)),
    at          BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, shop_id)
);

-- Public history of every agreed price, kept forever.
CREATE TABLE price_changes (
    id            {id},
    price_item_id BIGINT NOT NULL REFERENCES price_items (id),
    old_price_vnd BIGINT,
    new_price_vnd BIGINT NOT NULL CHECK (new_price_vnd > 0),
    -- 'created' (item added by a moderator), 'imported', 'proposal' (quorum), 'moderator'
    source        TEXT NOT NULL CHECK (source IN ('created', 'imported', 'proposal', 'moderator')),
    proposal_id   BIGINT REFERENCES proposals (id),
    actor_user_id BIGINT REFERENCES users (id),
    at            BIGINT NOT NULL
);
CREATE INDEX price_changes_item_idx ON price_changes (price_item_id, at);

CREATE TABLE products (
    id            {id},
    slug          TEXT NOT NULL,
    shop_id       BIGINT NOT NULL REFERENCES shops (id),
    price_item_id BIGINT NOT NULL REFERENCES price_items (id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    category      TEXT NOT NULL,
    stock         BIGINT NOT NULL CHECK (stock >= 0),
    ocop_stars    BIGINT CHECK (ocop_stars BETWEEN 3 AND 5),
    maker         TEXT NOT NULL DEFAULT '',
    materials     TEXT NOT NULL DEFAULT '',
    made_in       TEXT NOT NULL DEFAULT '',
    -- name, description, shop and village folded to ASCII lower case for simple search
    search_text   TEXT NOT NULL DEFAULT '',
    active        BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT products_slug_key UNIQUE (slug),
    CONSTRAINT products_shop_name_key UNIQUE (shop_id, name)
);
CREATE INDEX products_price_item_idx ON products (price_item_id);
CREATE INDEX products_created_idx ON products (created_at);

CREATE TABLE product_photos (
    id         {id},
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    file_name  TEXT NOT NULL,
    thumb_name TEXT NOT NULL,
    position   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX product_photos_product_idx ON product_photos (product_id, position);
