-- Money that cannot be recorded wrong (issue 27).
--
-- Every journal names the business event it records (`settle:payment:7`, `release:order:12`,
-- `refund:payment:7:230000`, `payout:sent:3` …): one journal per event, whatever the code
-- does. A journal carries its postings as JSON; the database checks they sum to zero and
-- writes the entries itself, in the same statement (0015 holds the triggers).
ALTER TABLE ledger_journals ADD COLUMN event_key TEXT;
ALTER TABLE ledger_journals ADD COLUMN postings TEXT;
UPDATE ledger_journals SET event_key = 'legacy:' || id;
CREATE UNIQUE INDEX ledger_journals_event_key ON ledger_journals (event_key);

-- The platform fee in basis points in force when the order was placed; a later change of
-- PLATFORM_FEE_BPS never re-prices it (NULL only for orders from before this column; the
-- server fills them with the fee in force when it first starts on this schema).
ALTER TABLE orders ADD COLUMN fee_bps BIGINT;
-- What was paid back to the buyer for this order (a refund at order level).
ALTER TABLE orders ADD COLUMN refunded_vnd BIGINT NOT NULL DEFAULT 0;
-- payments.refunded_vnd is now every refund recorded for the payment, its orders' too.
UPDATE orders SET refunded_vnd = total_vnd WHERE status = 'refunded'
   AND checkout_id IN (SELECT checkout_id FROM payments WHERE status <> 'refunded');
UPDATE payments SET refunded_vnd = refunded_vnd + (SELECT COALESCE(SUM(o.refunded_vnd), 0)
   FROM orders o WHERE o.checkout_id = payments.checkout_id)
 WHERE status <> 'refunded';

-- One transfer, one record across feeds: an incoming transfer counted as money carries its
-- bank reference here; the same reference and amount from a second feed cannot be counted
-- again (it is kept as a duplicate delivery: status 'ignored', duplicate_of set).
ALTER TABLE bank_transactions ADD COLUMN money_ref TEXT;
ALTER TABLE bank_transactions ADD COLUMN duplicate_of BIGINT REFERENCES bank_transactions (id);
-- An incoming transfer that was a payout coming back (bank returned it).
ALTER TABLE bank_transactions ADD COLUMN returned_payout_id BIGINT REFERENCES payouts (id);
CREATE UNIQUE INDEX bank_transactions_money_ref ON bank_transactions (money_ref, amount_vnd);

-- The last ledger check (housekeeping): one row, shown on admin pages, /readyz, /metrics.
CREATE TABLE ledger_health (
    id         BIGINT PRIMARY KEY,
    checked_at BIGINT NOT NULL,
    violations TEXT NOT NULL DEFAULT ''
);

-- The shop's last confirmed email while a new one waits for confirmation: security notices
-- (the payout-account alert) still reach it.
ALTER TABLE shops ADD COLUMN email_previous TEXT;

-- Payouts that failed or came back, and who said so.
ALTER TABLE payouts ADD COLUMN failed_at BIGINT;
