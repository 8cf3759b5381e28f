-- Buyer protection (issue 28): the money of an order is released to its shop only when the
-- buyer has the goods; buyers raise return/refund requests; refunds are paid to their banks.

--@sqlite
-- 1. A refund on its way to a buyer's bank has its own ledger account. SQLite cannot change
--    a CHECK, so the entries table is rebuilt (its rows copied as they are) with its guards.
CREATE TABLE ledger_entries_v16 (
    id         INTEGER PRIMARY KEY,
    journal_id BIGINT NOT NULL REFERENCES ledger_journals (id),
    account    TEXT NOT NULL CHECK (account IN ('collect', 'suspense', 'payments_open', 'refunds_due',
                 'refunds_in_transit', 'fees', 'shop_pending', 'shop_available', 'shop_in_transit',
                 'shop_owed')),
    shop_id    BIGINT REFERENCES shops (id),
    payment_id BIGINT REFERENCES payments (id),
    amount_vnd BIGINT NOT NULL CHECK (amount_vnd <> 0)
);
INSERT INTO ledger_entries_v16 (id, journal_id, account, shop_id, payment_id, amount_vnd)
  SELECT id, journal_id, account, shop_id, payment_id, amount_vnd FROM ledger_entries;
DROP TRIGGER ledger_journal_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_v16 RENAME TO ledger_entries;
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
-- 1. A refund on its way to a buyer's bank has its own ledger account.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_check
  CHECK (account IN ('collect', 'suspense', 'payments_open', 'refunds_due', 'refunds_in_transit',
                     'fees', 'shop_pending', 'shop_available', 'shop_in_transit', 'shop_owed'));
--@end

-- 2. What the release rules read: who said it was delivered and when, the buyer's
--    confirmation, the one extension; the part of a live order decided to go back.
ALTER TABLE orders ADD COLUMN delivered_at BIGINT;
ALTER TABLE orders ADD COLUMN delivered_by TEXT CHECK (delivered_by IN ('seller', 'carrier', 'buyer'));
ALTER TABLE orders ADD COLUMN received_at BIGINT;
ALTER TABLE orders ADD COLUMN extended_at BIGINT;
ALTER TABLE orders ADD COLUMN refund_owed_vnd BIGINT NOT NULL DEFAULT 0;
--@sqlite
CREATE TRIGGER orders_refund_owed_within_total BEFORE UPDATE OF refund_owed_vnd ON orders
WHEN NEW.refund_owed_vnd > NEW.total_vnd OR NEW.refund_owed_vnd < 0
BEGIN
  SELECT RAISE(ABORT, 'orders: more owed back than the order');
END;
--@postgres
ALTER TABLE orders ADD CONSTRAINT orders_refund_owed_within_total
  CHECK (refund_owed_vnd >= 0 AND refund_owed_vnd <= total_vnd);
--@end
CREATE INDEX orders_unreleased_idx ON orders (status, released_at);

-- 3. Return/refund requests: one open per order.
CREATE TABLE order_requests (
    id               {id},
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    status           TEXT NOT NULL CHECK (status IN ('open', 'replied', 'escalated', 'awaiting_return',
                       'return_sent', 'refunded', 'released', 'closed')),
    reason           TEXT NOT NULL CHECK (reason IN ('not_received', 'damaged', 'wrong_item',
                       'missing_items', 'not_as_described')),
    text             TEXT NOT NULL,
    amount_vnd       BIGINT NOT NULL CHECK (amount_vnd > 0),
    answer_due_at    BIGINT NOT NULL,
    seller_text      TEXT,
    answered_at      BIGINT,
    escalated_at     BIGINT,
    outcome          TEXT CHECK (outcome IN ('refund', 'partial', 'release')),
    refund_vnd       BIGINT,
    decision_reason  TEXT,
    decided_by       BIGINT REFERENCES users (id),
    decided_at       BIGINT,
    return_due_at    BIGINT,
    return_tracking  TEXT,
    return_sent_at   BIGINT,
    closed_at        BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX order_requests_one_open ON order_requests (order_id)
  WHERE status IN ('open', 'replied', 'escalated', 'awaiting_return', 'return_sent');
CREATE INDEX order_requests_status_idx ON order_requests (status, answer_due_at);

CREATE TABLE request_photos (
    id         {id},
    request_id BIGINT NOT NULL REFERENCES order_requests (id),
    side       TEXT NOT NULL CHECK (side IN ('buyer', 'seller')),
    file       TEXT NOT NULL,
    thumb      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX request_photos_request_idx ON request_photos (request_id);

-- Every step of buyer protection on an order, shown to both sides and kept forever.
CREATE TABLE protection_events (
    id         {id},
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    request_id BIGINT REFERENCES order_requests (id),
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL CHECK (actor IN ('buyer', 'seller', 'moderator', 'admin', 'system')),
    user_id    BIGINT REFERENCES users (id),
    text       TEXT NOT NULL DEFAULT '',
    amount_vnd BIGINT,
    at         BIGINT NOT NULL
);
CREATE INDEX protection_events_order_idx ON protection_events (order_id, id);

-- 4. Refunds paid to buyers' banks (payOS Payouts or the treasurer's bank app).
CREATE TABLE refund_payouts (
    id             {id},
    code           TEXT NOT NULL,
    payment_id     BIGINT NOT NULL REFERENCES payments (id),
    order_id       BIGINT REFERENCES orders (id),
    request_id     BIGINT REFERENCES order_requests (id),
    method         TEXT NOT NULL CHECK (method IN ('payos', 'bank_app')),
    amount_vnd     BIGINT NOT NULL CHECK (amount_vnd > 0),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'paid', 'failed')),
    bank_bin       TEXT NOT NULL,
    account_no     TEXT NOT NULL,
    account_name   TEXT NOT NULL,
    provider_id    TEXT,
    provider_state TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    next_check_at  BIGINT,
    last_error     TEXT,
    bank_reference TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    paid_at        BIGINT,
    failed_at      BIGINT,
    CONSTRAINT refund_payouts_code_key UNIQUE (code)
);
-- One refund on its way per order (or per payment, for payment-level refunds).
CREATE UNIQUE INDEX refund_payouts_one_open ON refund_payouts (payment_id, COALESCE(order_id, 0))
  WHERE status IN ('pending', 'sent');
CREATE INDEX refund_payouts_due_idx ON refund_payouts (status, next_check_at);

-- 5. Where the buyer asked their refunds to go (per checkout: one buyer, one account).
ALTER TABLE checkouts ADD COLUMN refund_bank_bin TEXT;
ALTER TABLE checkouts ADD COLUMN refund_account_no TEXT;
ALTER TABLE checkouts ADD COLUMN refund_account_name TEXT;
