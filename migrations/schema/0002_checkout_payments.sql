-- Checkout, orders and bank-transfer payments. Same conventions as 0001 (BIGINT everything,
--@sqlite
-- times in epoch ms UTC, money in whole đồng). Kept equal to migrations/postgres/0002.
--@postgres
-- times in epoch ms UTC, money in whole đồng). Kept equal to migrations/sqlite/0002.
--@end

-- One checkout = one payment + one order per shop.
CREATE TABLE checkouts (
    id            {id},
    code          TEXT NOT NULL,
    buyer_name    TEXT NOT NULL,
    buyer_phone   TEXT NOT NULL,
    buyer_address TEXT NOT NULL,
    buyer_email   TEXT,
    note          TEXT NOT NULL DEFAULT '',
    total_vnd     BIGINT NOT NULL CHECK (total_vnd > 0),
    created_at    BIGINT NOT NULL,
    CONSTRAINT checkouts_code_key UNIQUE (code)
);

CREATE TABLE payments (
    id              {id},
    checkout_id     BIGINT NOT NULL REFERENCES checkouts (id),
    -- what the payer types in the transfer description, e.g. CL7K3QX9
    code            TEXT NOT NULL,
    -- positive integer reference, also payOS's orderCode
    order_code      BIGINT NOT NULL CHECK (order_code > 0),
    method          TEXT NOT NULL CHECK (method IN ('vietqr', 'payos', 'stripe')),
    amount_vnd      BIGINT NOT NULL CHECK (amount_vnd > 0),
    -- every matched transfer adds here; never decreases
    amount_paid_vnd BIGINT NOT NULL DEFAULT 0 CHECK (amount_paid_vnd >= 0),
    -- money sent back by an admin (overpayments, late or cancelled payments)
    refunded_vnd    BIGINT NOT NULL DEFAULT 0 CHECK (refunded_vnd >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'underpaid', 'paid', 'expired', 'refund_due', 'refunded')),
    -- 1 when the money arrived after the payment had expired
    late            BIGINT NOT NULL DEFAULT 0 CHECK (late IN (0, 1)),
    expires_at      BIGINT NOT NULL,
    paid_at         BIGINT,
    provider_ref    TEXT,
    checkout_url    TEXT,
    provider_qr     TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT payments_code_key UNIQUE (code),
    CONSTRAINT payments_order_code_key UNIQUE (order_code),
    CONSTRAINT payments_checkout_key UNIQUE (checkout_id)
);
CREATE INDEX payments_status_expires_idx ON payments (status, expires_at);

CREATE TABLE orders (
    id          {id},
    code        TEXT NOT NULL,
    checkout_id BIGINT NOT NULL REFERENCES checkouts (id),
    shop_id     BIGINT NOT NULL REFERENCES shops (id),
    status      TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'accepted', 'shipped',
                  'delivered', 'cancelled', 'expired', 'refund_due', 'refunded')),
    total_vnd   BIGINT NOT NULL CHECK (total_vnd > 0),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT orders_code_key UNIQUE (code)
);
CREATE INDEX orders_shop_idx ON orders (shop_id, created_at);
CREATE INDEX orders_checkout_idx ON orders (checkout_id);

-- Lines snapshot the agreed price in force at checkout.
CREATE TABLE order_lines (
    id             {id},
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    product_id     BIGINT NOT NULL REFERENCES products (id),
    name           TEXT NOT NULL,
    unit           TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_vnd BIGINT NOT NULL CHECK (unit_price_vnd > 0)
);
CREATE INDEX order_lines_order_idx ON order_lines (order_id);

-- Every status change of an order, who made it and when.
CREATE TABLE order_events (
    id            {id},
    order_id      BIGINT NOT NULL REFERENCES orders (id),
    from_status   TEXT NOT NULL,
    to_status     TEXT NOT NULL,
    actor         TEXT NOT NULL,
    actor_user_id BIGINT REFERENCES users (id),
    at            BIGINT NOT NULL
);
CREATE INDEX order_events_order_idx ON order_events (order_id);

-- Every verified money event, stored once per (provider, provider's transaction id).
-- Nothing is ever deleted: unmatched ones wait here for an admin.
CREATE TABLE bank_transactions (
    id               {id},
    provider         TEXT NOT NULL CHECK (provider IN ('bank', 'casso', 'payos', 'stripe')),
    provider_txn_id  TEXT NOT NULL,
    amount_vnd       BIGINT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    account_number   TEXT,
    reference        TEXT,
    transaction_time TEXT,
    raw              TEXT NOT NULL,
    payment_id       BIGINT REFERENCES payments (id),
    -- matched: counted into payment_id; unmatched: waiting for an admin; ignored: not money
    -- in (outgoing transfer or a provider's failure notice); refunded: sent back by an admin
    status           TEXT NOT NULL CHECK (status IN ('matched', 'unmatched', 'ignored', 'refunded')),
    received_at      BIGINT NOT NULL,
    CONSTRAINT bank_transactions_provider_txn_key UNIQUE (provider, provider_txn_id)
);
CREATE INDEX bank_transactions_status_idx ON bank_transactions (status, received_at);
CREATE INDEX bank_transactions_payment_idx ON bank_transactions (payment_id);

-- Admin actions on money (assign, refund), kept forever.
CREATE TABLE audit_log (
    id            {id},
    actor_user_id BIGINT REFERENCES users (id),
    action        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '',
    at            BIGINT NOT NULL
);
