-- The ledger of the collecting account and payouts to sellers (issue 9).
-- Append-only, double-entry: every money movement is one journal whose entries sum to zero,
-- written in the same transaction as the change that causes it. The code never updates or
-- deletes a journal or an entry; a correction is a new journal.
--
-- Accounts (entries.account), amounts signed, debit positive:
--   collect                 the collecting bank account (asset: money in − money out)
--   suspense                money received that matches no payment yet
--   payments_open           money received for a payment not settled yet (per payment_id)
--   refunds_due             money owed back to buyers
--   fees                    platform fees taken at release
--   shop_pending            a shop's paid orders, not releasable yet (per shop_id)
--   shop_available          releasable to the shop (per shop_id)
--   shop_in_transit         paid out, not yet confirmed (per shop_id)
--   shop_owed               owed back by a shop (a refund after its money was released)
CREATE TABLE ledger_journals (
    id         {id},
    kind       TEXT NOT NULL,
    payment_id BIGINT REFERENCES payments (id),
    order_id   BIGINT REFERENCES orders (id),
    payout_id  BIGINT,
    txn_id     BIGINT REFERENCES bank_transactions (id),
    memo       TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL
);
CREATE INDEX ledger_journals_payment_idx ON ledger_journals (payment_id);
CREATE INDEX ledger_journals_order_idx ON ledger_journals (order_id, kind);
CREATE INDEX ledger_journals_payout_idx ON ledger_journals (payout_id);

CREATE TABLE ledger_entries (
    id         {id},
    journal_id BIGINT NOT NULL REFERENCES ledger_journals (id),
    account    TEXT NOT NULL CHECK (account IN ('collect', 'suspense', 'payments_open', 'refunds_due',
                 'fees', 'shop_pending', 'shop_available', 'shop_in_transit', 'shop_owed')),
    shop_id    BIGINT REFERENCES shops (id),
    payment_id BIGINT REFERENCES payments (id),
    amount_vnd BIGINT NOT NULL CHECK (amount_vnd <> 0)
);
CREATE INDEX ledger_entries_journal_idx ON ledger_entries (journal_id);
CREATE INDEX ledger_entries_shop_idx ON ledger_entries (shop_id, account);
CREATE INDEX ledger_entries_payment_idx ON ledger_entries (payment_id, account);

-- One-off data steps done by the application after the SQL migrations (the ledger backfill).
CREATE TABLE data_migrations (
    name    TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);

-- When an order's money was released to its shop (delivered, or days after shipping).
ALTER TABLE orders ADD COLUMN shipped_at BIGINT;
ALTER TABLE orders ADD COLUMN released_at BIGINT;
CREATE INDEX orders_release_idx ON orders (status, shipped_at);

-- Payouts go to the shop's account only after a hold following a change of it.
ALTER TABLE shops ADD COLUMN payout_hold_until BIGINT;

CREATE TABLE payout_runs (
    id         {id},
    code       TEXT NOT NULL,
    method     TEXT NOT NULL CHECK (method IN ('payos', 'bank_app')),
    created_by BIGINT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    CONSTRAINT payout_runs_code_key UNIQUE (code)
);

-- One payout per shop per run, for its whole available balance; its code (CLPO…) is the
-- payOS referenceId and idempotency key, and the bank-app transfer's description.
--   pending: created, money in transit (bank app: waiting for the treasurer; payOS: not yet
--            accepted); sent: accepted by payOS; paid: confirmed; failed: money back.
CREATE TABLE payouts (
    id             {id},
    code           TEXT NOT NULL,
    run_id         BIGINT NOT NULL REFERENCES payout_runs (id),
    shop_id        BIGINT NOT NULL REFERENCES shops (id),
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
    flag           TEXT,
    bank_reference TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    paid_at        BIGINT,
    CONSTRAINT payouts_code_key UNIQUE (code)
);
-- Never two open payouts for one shop (a second run at once finds nothing to pay).
CREATE UNIQUE INDEX payouts_one_open_per_shop ON payouts (shop_id) WHERE status IN ('pending', 'sent');
CREATE INDEX payouts_run_idx ON payouts (run_id);
CREATE INDEX payouts_due_idx ON payouts (status, next_check_at);
