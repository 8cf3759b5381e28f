-- Delivery (issue 32): a shop's pickup address and ways to ship; the buyer's address from
-- the 2025 lists; the shipping fee of each shop's order, part of its total and its payment.

-- One row per shop that set its ways to ship. Codes are official ones of `dataset`.
CREATE TABLE shop_shipping (
    shop_id          BIGINT PRIMARY KEY REFERENCES shops (id),
    pickup_province  TEXT NOT NULL,
    pickup_ward      TEXT NOT NULL,
    pickup_street    TEXT NOT NULL,
    dataset          TEXT NOT NULL,
    -- Comma-separated `self`, `ghn`, `ghtk`.
    methods          TEXT NOT NULL,
    self_same_commune  BIGINT NOT NULL DEFAULT 0 CHECK (self_same_commune >= 0),
    self_same_province BIGINT NOT NULL DEFAULT 0 CHECK (self_same_province >= 0),
    self_elsewhere     BIGINT NOT NULL DEFAULT 0 CHECK (self_elsewhere >= 0),
    self_free_from     BIGINT CHECK (self_free_from >= 0),
    -- The shop's own carrier accounts (booked and paid by the shop), never shown back.
    ghn_token        TEXT,
    ghn_shop_id      BIGINT,
    ghtk_token       TEXT,
    updated_at       BIGINT NOT NULL
);

-- The buyer's two-level address when chosen from the lists (`buyer_address` keeps the whole
-- line as shown, and an old-style address typed as text).
ALTER TABLE checkouts ADD COLUMN buyer_province TEXT;
ALTER TABLE checkouts ADD COLUMN buyer_ward TEXT;
ALTER TABLE checkouts ADD COLUMN buyer_street TEXT;
ALTER TABLE checkouts ADD COLUMN address_dataset TEXT;

-- An order's shipping: the way chosen and its fee, inside `total_vnd` (goods = total − fee).
-- The platform fee is taken on the goods only.
ALTER TABLE orders ADD COLUMN shipping_method TEXT CHECK (shipping_method IN ('self', 'ghn', 'ghtk'));
ALTER TABLE orders ADD COLUMN shipping_vnd BIGINT NOT NULL DEFAULT 0;
-- Who is owed the fee: the shop (it delivers, or pays its carrier) or the platform's
-- account with the carrier; at release the fee goes there, whole.
ALTER TABLE orders ADD COLUMN shipping_payee TEXT CHECK (shipping_payee IN ('shop', 'platform'));

-- The ledger's account of what the platform owes its carriers.
--@sqlite
CREATE TABLE ledger_entries_v19 (
    id         INTEGER PRIMARY KEY,
    journal_id BIGINT NOT NULL REFERENCES ledger_journals (id),
    account    TEXT NOT NULL CHECK (account IN ('collect', 'suspense', 'payments_open', 'refunds_due',
                 'refunds_in_transit', 'fees', 'shop_pending', 'shop_available', 'shop_in_transit',
                 'shop_owed', 'carriers_payable')),
    shop_id    BIGINT REFERENCES shops (id),
    payment_id BIGINT REFERENCES payments (id),
    amount_vnd BIGINT NOT NULL CHECK (amount_vnd <> 0)
);
INSERT INTO ledger_entries_v19 (id, journal_id, account, shop_id, payment_id, amount_vnd)
  SELECT id, journal_id, account, shop_id, payment_id, amount_vnd FROM ledger_entries;
DROP TRIGGER ledger_journal_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_v19 RENAME TO ledger_entries;
CREATE TRIGGER ledger_journal_entries AFTER INSERT ON ledger_journals
BEGIN
  INSERT INTO ledger_entries (journal_id, account, shop_id, payment_id, amount_vnd)
  SELECT NEW.id, json_extract(value, '$.account'), json_extract(value, '$.shop'),
         json_extract(value, '$.payment'), json_extract(value, '$.amount')
    FROM json_each(NEW.postings) ORDER BY key;
END;
CREATE INDEX ledger_entries_journal_idx ON ledger_entries (journal_id);
CREATE INDEX ledger_entries_shop_idx ON ledger_entries (shop_id, account);
CREATE INDEX ledger_entries_payment_idx ON ledger_entries (payment_id, account);
CREATE TRIGGER ledger_entry_only_from_journal BEFORE INSERT ON ledger_entries
WHEN (SELECT postings FROM ledger_journals WHERE id = NEW.journal_id) IS NULL
  OR (SELECT COUNT(*) FROM ledger_entries WHERE journal_id = NEW.journal_id)
     >= (SELECT json_array_length(postings) FROM ledger_journals WHERE id = NEW.journal_id)
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are written only from their journal''s postings');
END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are append-only');
END;
--@postgres
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check
  CHECK (account IN ('collect', 'suspense', 'payments_open', 'refunds_due', 'refunds_in_transit',
                     'fees', 'shop_pending', 'shop_available', 'shop_in_transit', 'shop_owed',
                     'carriers_payable'));
--@end

-- Parcel facts for carriers' quotes: a product's own, else its category's default.
ALTER TABLE products ADD COLUMN weight_g BIGINT CHECK (weight_g > 0);
ALTER TABLE products ADD COLUMN length_cm BIGINT CHECK (length_cm > 0);
ALTER TABLE products ADD COLUMN width_cm BIGINT CHECK (width_cm > 0);
ALTER TABLE products ADD COLUMN height_cm BIGINT CHECK (height_cm > 0);
ALTER TABLE categories ADD COLUMN weight_g BIGINT CHECK (weight_g > 0);
ALTER TABLE categories ADD COLUMN length_cm BIGINT CHECK (length_cm > 0);
ALTER TABLE categories ADD COLUMN width_cm BIGINT CHECK (width_cm > 0);
ALTER TABLE categories ADD COLUMN height_cm BIGINT CHECK (height_cm > 0);

--@postgres
ALTER TABLE orders ADD CONSTRAINT orders_shipping_within_total
  CHECK (shipping_vnd >= 0 AND shipping_vnd <= total_vnd);
--@end
--@sqlite
CREATE TRIGGER orders_shipping_within_total_ins BEFORE INSERT ON orders
WHEN NEW.shipping_vnd < 0 OR NEW.shipping_vnd > NEW.total_vnd
BEGIN
  SELECT RAISE(ABORT, 'orders: shipping fee outside the order total');
END;
CREATE TRIGGER orders_shipping_within_total_upd BEFORE UPDATE OF shipping_vnd, total_vnd ON orders
WHEN NEW.shipping_vnd < 0 OR NEW.shipping_vnd > NEW.total_vnd
BEGIN
  SELECT RAISE(ABORT, 'orders: shipping fee outside the order total');
END;
--@end

-- A parcel booked with a carrier for an order (one per order). `state` is ours: booking
-- (asked, answer not known yet: looked up by `client_code` before asking again), booked,
-- failed (the carrier refused: its message in `last_error`), cancelled. `progress` is the
-- carrier's status as we read it from its API.
CREATE TABLE shipments (
    id             {id},
    order_id       BIGINT NOT NULL REFERENCES orders (id),
    carrier        TEXT NOT NULL CHECK (carrier IN ('ghn', 'ghtk')),
    client_code    TEXT NOT NULL,
    carrier_code   TEXT,
    state          TEXT NOT NULL CHECK (state IN ('booking', 'booked', 'failed', 'cancelled')),
    progress       TEXT NOT NULL DEFAULT 'booked',
    carrier_status TEXT,
    fee_vnd        BIGINT,
    expected_at    BIGINT,
    last_error     TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until    BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    checked_at     BIGINT NOT NULL,
    CONSTRAINT shipments_order_key UNIQUE (order_id),
    CONSTRAINT shipments_carrier_code_key UNIQUE (carrier, carrier_code)
);
CREATE INDEX shipments_checked_idx ON shipments (state, checked_at);

-- Every carrier report (webhook, poll, booking), stored once: a webhook is a hint, and
-- `confirmed` is what the carrier's API said when asked.
CREATE TABLE shipment_events (
    id           {id},
    shipment_id  BIGINT REFERENCES shipments (id),
    carrier      TEXT NOT NULL,
    carrier_code TEXT,
    dedup_key    TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('webhook', 'poll', 'booking')),
    claimed      TEXT,
    confirmed    TEXT,
    outcome      TEXT NOT NULL,
    body         TEXT,
    at           BIGINT NOT NULL,
    CONSTRAINT shipment_events_dedup_key UNIQUE (dedup_key)
);
CREATE INDEX shipment_events_shipment_idx ON shipment_events (shipment_id, id);
