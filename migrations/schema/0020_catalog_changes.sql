-- What a product page shows has changed (issue 34): the database itself says so, whoever
-- wrote it (a page, another instance, a background job, `cholang import`, an operator's
-- SQL), so every instance drops the product data it keeps (`db::Kept`: product pages',
-- search hits' cards and texts). The tables are those a product page reads (`web::pages::
-- product_parts`; a hit's card and text read fewer): the product, its agreed price item,
-- shop, village, photos, batches and price history. Only pages of products that exist are
-- kept, so a new product, item, shop or village is on no kept page: those four tables are
-- watched for changes and deletions only (an import of a million new products and items
-- pays nothing), the other three for new rows too, except on SQLite a new item's first
-- price (no old price: written with the item, `pricing::store`, `cholang import`).
--
-- SQLite: one row counts the changes; each instance reads it a few times a second.
-- PostgreSQL: a notification on channel `cholang_catalog`, which the server sends at commit
-- (a transaction rolled back sends none; several in one transaction are sent as one).
--@sqlite
CREATE TABLE catalog_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO catalog_changes (id, n) VALUES (1, 0);
CREATE TRIGGER catalog_changed_products_update AFTER UPDATE ON products
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_products_delete AFTER DELETE ON products
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_price_items_update AFTER UPDATE ON price_items
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_price_items_delete AFTER DELETE ON price_items
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_shops_update AFTER UPDATE ON shops
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_shops_delete AFTER DELETE ON shops
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_villages_update AFTER UPDATE ON villages
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_villages_delete AFTER DELETE ON villages
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_product_photos_insert AFTER INSERT ON product_photos
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_product_photos_update AFTER UPDATE ON product_photos
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_product_photos_delete AFTER DELETE ON product_photos
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_batches_insert AFTER INSERT ON batches
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_batches_update AFTER UPDATE ON batches
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_batches_delete AFTER DELETE ON batches
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_price_changes_insert AFTER INSERT ON price_changes
WHEN NEW.old_price_vnd IS NOT NULL
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_price_changes_update AFTER UPDATE ON price_changes
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER catalog_changed_price_changes_delete AFTER DELETE ON price_changes
BEGIN UPDATE catalog_changes SET n = n + 1 WHERE id = 1; END;
--@end
--@postgres
CREATE FUNCTION catalog_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('cholang_catalog', '');
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER catalog_changed AFTER UPDATE OR DELETE OR TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER catalog_changed AFTER UPDATE OR DELETE OR TRUNCATE ON price_items
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER catalog_changed AFTER UPDATE OR DELETE OR TRUNCATE ON shops
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER catalog_changed AFTER UPDATE OR DELETE OR TRUNCATE ON villages
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON product_photos
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON price_changes
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
--@end
