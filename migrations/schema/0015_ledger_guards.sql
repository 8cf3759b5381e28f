-- The ledger's rules, kept by the database whatever the code does (issue 27).
-- 1. A journal names its event (unique index in 0014) and carries postings that sum to zero;
--    its entries are written from those postings by the database, in the same statement.
-- 2. Ledger rows are append-only: no UPDATE, no DELETE.
-- 3. No entry is added to a journal beyond its postings (so a journal stays balanced).
-- 4. A payment never has more refunded than received; an order never more than its total.
--@sqlite
CREATE TRIGGER ledger_journal_checked BEFORE INSERT ON ledger_journals
WHEN NEW.event_key IS NULL OR NEW.event_key = '' OR NEW.postings IS NULL
  OR json_array_length(NEW.postings) = 0
  OR (SELECT COUNT(*) FROM json_each(NEW.postings)
        WHERE json_extract(value, '$.amount') IS NULL
           OR json_type(value, '$.amount') <> 'integer'
           OR json_extract(value, '$.amount') = 0) > 0
  OR (SELECT SUM(json_extract(value, '$.amount')) FROM json_each(NEW.postings)) <> 0
--@postgres
CREATE OR REPLACE FUNCTION ledger_journal_checked() RETURNS trigger AS $$
--@end
BEGIN
--@sqlite
  SELECT RAISE(ABORT, 'ledger: a journal needs an event key and postings that sum to zero');
END;
--@postgres
  IF NEW.event_key IS NULL OR NEW.event_key = '' OR NEW.postings IS NULL
     OR jsonb_typeof(NEW.postings::jsonb) <> 'array'
     OR jsonb_array_length(NEW.postings::jsonb) = 0
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(NEW.postings::jsonb) e
                 WHERE jsonb_typeof(e -> 'amount') IS DISTINCT FROM 'number'
                    OR (e ->> 'amount')::numeric <> trunc((e ->> 'amount')::numeric)
                    OR (e ->> 'amount')::numeric = 0)
     OR (SELECT SUM((e ->> 'amount')::numeric) FROM jsonb_array_elements(NEW.postings::jsonb) e) <> 0
  THEN
    RAISE EXCEPTION 'ledger: a journal needs an event key and postings that sum to zero'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
--@end

--@sqlite
CREATE TRIGGER ledger_journal_entries AFTER INSERT ON ledger_journals
--@postgres
CREATE OR REPLACE FUNCTION ledger_journal_entries() RETURNS trigger AS $$
--@end
BEGIN
  INSERT INTO ledger_entries (journal_id, account, shop_id, payment_id, amount_vnd)
--@sqlite
  SELECT NEW.id, json_extract(value, '$.account'), json_extract(value, '$.shop'),
         json_extract(value, '$.payment'), json_extract(value, '$.amount')
    FROM json_each(NEW.postings) ORDER BY key;
END;
--@postgres
  SELECT NEW.id, e.v ->> 'account', (e.v ->> 'shop')::bigint, (e.v ->> 'payment')::bigint,
         (e.v ->> 'amount')::bigint
    FROM jsonb_array_elements(NEW.postings::jsonb) WITH ORDINALITY AS e(v, n) ORDER BY e.n;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
--@end

--@sqlite
--@postgres
CREATE OR REPLACE FUNCTION ledger_entry_only_from_journal() RETURNS trigger AS $$
DECLARE
  p TEXT;
BEGIN
  SELECT postings INTO p FROM ledger_journals WHERE id = NEW.journal_id;
  IF p IS NULL OR (SELECT COUNT(*) FROM ledger_entries WHERE journal_id = NEW.journal_id)
                  >= jsonb_array_length(p::jsonb) THEN
    RAISE EXCEPTION 'ledger: entries are written only from their journal''s postings'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'ledger: % rows are append-only', TG_TABLE_NAME
    USING ERRCODE = 'check_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_journal_checked BEFORE INSERT ON ledger_journals
  FOR EACH ROW EXECUTE FUNCTION ledger_journal_checked();
CREATE TRIGGER ledger_journal_entries AFTER INSERT ON ledger_journals
  FOR EACH ROW EXECUTE FUNCTION ledger_journal_entries();
--@end
CREATE TRIGGER ledger_entry_only_from_journal BEFORE INSERT ON ledger_entries
--@sqlite
WHEN (SELECT postings FROM ledger_journals WHERE id = NEW.journal_id) IS NULL
  OR (SELECT COUNT(*) FROM ledger_entries WHERE journal_id = NEW.journal_id)
     >= (SELECT json_array_length(postings) FROM ledger_journals WHERE id = NEW.journal_id)
BEGIN
  SELECT RAISE(ABORT, 'ledger: entries are written only from their journal''s postings');
END;
--@postgres
  FOR EACH ROW EXECUTE FUNCTION ledger_entry_only_from_journal();
CREATE TRIGGER ledger_journals_append_only BEFORE UPDATE OR DELETE ON ledger_journals
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
-- TRUNCATE skips row triggers: refuse it too.
CREATE TRIGGER ledger_journals_no_truncate BEFORE TRUNCATE ON ledger_journals
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
--@end

--@sqlite
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
--@postgres
ALTER TABLE payments ADD CONSTRAINT payments_refund_within_paid
  CHECK (refunded_vnd <= amount_paid_vnd) NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_refund_within_total
  CHECK (refunded_vnd >= 0 AND refunded_vnd <= total_vnd) NOT VALID;
--@end

--@sqlite
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

--@postgres
--@end