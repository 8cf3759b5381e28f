-- The ledger's rules, kept by the database whatever the code does (issue 27).
-- 1. A journal names its event (unique index in 0014) and carries postings that sum to zero;
--    its entries are written from those postings by the database, in the same statement.
-- 2. Ledger rows are append-only: no UPDATE, no DELETE.
-- 3. No entry is added to a journal beyond its postings (so a journal stays balanced).
-- 4. A payment never has more refunded than received; an order never more than its total.
CREATE TRIGGER ledger_journal_checked BEFORE INSERT ON ledger_journals
WHEN NEW.event_key IS NULL OR NEW.event_key = '' OR NEW.postings IS NULL
  OR json_array_length(NEW.postings) = 0
  OR (SELECT COUNT(*) FROM json_each(NEW.postings)
        WHERE json_extract(value, '$.amount') IS NULL
           OR json_type(value, '$.amount') <> 'integer'
           OR json_extract(value, '$.amount') = 0) > 0
  OR (SELECT SUM(json_extract(value, '$.amount')) FROM json_each(NEW.postings)) <> 0
BEGIN
  SELECT RAISE(ABORT, 'ledger: a journal needs an event key and postings that sum to zero');
END;

CREATE TRIGGER ledger_journal_entries AFTER INSERT ON ledger_journals
BEGIN
  INSERT INTO ledger_entries (journal_id, account, shop_id, payment_id, amount_vnd)
  SELECT NEW.id, json_extract(value, '$.account'), json_extract(value, '$.shop'),
         json_extract(value, '$.payment'), json_extract(value, '$.amount')
    FROM json_each(NEW.postings) ORDER BY key;
END;

CREATE TRIGGER ledger_entry_only_from_journal BEFORE INSERT ON ledger_entries
WHEN (SELECT postings FROM ledger_journals WHERE id = NEW.journal_id) IS NULL
  OR (SELECT COUNT(*) FROM ledger_entries WHERE journal_id = NEW.journal_id)
     >= (SELECT json_array_length(postings) FROM ledger_journals WHERE id = NEW.journal_id)
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are written only from their journal''s postings');
END;

CREATE TRIGGER ledger_journals_no_update BEFORE UPDATE ON ledger_journals
BEGIN
  SELECT RAISE(ABORT, 'ledger: journals are append-only');
END;
CREATE TRIGGER ledger_journals_no_delete BEFORE DELETE ON ledger_journals
BEGIN
  SELECT RAISE(ABORT, 'ledger: journals are append-only');
END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are append-only');
END;

CREATE TRIGGER payments_refund_within_paid BEFORE UPDATE OF refunded_vnd, amount_paid_vnd ON payments
WHEN NEW.refunded_vnd > NEW.amount_paid_vnd
BEGIN
  SELECT RAISE(ABORT, 'payments: refunded more than received');
END;
CREATE TRIGGER orders_refund_within_total BEFORE UPDATE OF refunded_vnd ON orders
WHEN NEW.refunded_vnd > NEW.total_vnd OR NEW.refunded_vnd < 0
BEGIN
  SELECT RAISE(ABORT, 'orders: refunded more than the order');
END;
