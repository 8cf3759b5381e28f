-- The fair price, round two (issue 29).
-- Why an open proposal waits for a person: 'band' (the vote passed, but the price would leave
-- ±30 % of the lowest or highest agreed price of the last PRICE_BAND_DAYS) or 'small' (the
-- village has too few sellers for its quorum: the moderator, or the admin, decides).
ALTER TABLE proposals ADD COLUMN waits_for TEXT CHECK (waits_for IN ('band', 'small'));
UPDATE proposals SET waits_for = 'band' WHERE stage = 'moderator';

-- A product takes the price item whose name it carries. Under another name it asks the
-- village's moderator: 'pending' (not listed), 'accepted' (for the name in item_join_name on
-- its current item), 'refused'. Listings already there keep the item they have.
ALTER TABLE products ADD COLUMN item_join TEXT CHECK (item_join IN ('pending', 'accepted', 'refused'));
ALTER TABLE products ADD COLUMN item_join_name TEXT;
ALTER TABLE products ADD COLUMN item_join_item BIGINT;
ALTER TABLE products ADD COLUMN item_join_reason TEXT;
ALTER TABLE products ADD COLUMN item_join_by BIGINT REFERENCES users (id);
ALTER TABLE products ADD COLUMN item_join_at BIGINT;
UPDATE products SET item_join = 'accepted', item_join_name = name, item_join_item = price_item_id;
CREATE INDEX products_item_join_idx ON products (item_join) WHERE item_join = 'pending';

--@sqlite
-- A pending product is never listed.
CREATE TRIGGER products_pending_not_listed_ins BEFORE INSERT ON products
WHEN NEW.item_join IN ('pending', 'refused') AND NEW.active = 1
BEGIN SELECT RAISE(ABORT, 'a product waiting for its price item cannot be listed'); END;
CREATE TRIGGER products_pending_not_listed_upd BEFORE UPDATE ON products
WHEN NEW.item_join IN ('pending', 'refused') AND NEW.active = 1
BEGIN SELECT RAISE(ABORT, 'a product waiting for its price item cannot be listed'); END;
--@postgres
-- A pending or refused product is never listed.
ALTER TABLE products ADD CONSTRAINT products_item_join_listed
    CHECK (item_join IS NULL OR item_join = 'accepted' OR active = 0);
--@end

-- Batches carry no OCOP certificate of their own: the origin page shows the product's
-- verified one. What earlier batches recorded is not shown anywhere.
UPDATE batch_revisions SET ocop_cert_no = NULL, ocop_cert_year = NULL;
