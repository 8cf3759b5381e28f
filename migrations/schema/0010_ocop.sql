-- OCOP stars are a claim to check (issue 15): the certificate's number and year, and when the
-- village's moderator (or an admin) confirmed it. Unconfirmed stars show "chờ xác minh" and
-- count for nothing in search.
ALTER TABLE products ADD COLUMN ocop_cert_no TEXT;
ALTER TABLE products ADD COLUMN ocop_cert_year BIGINT;
ALTER TABLE products ADD COLUMN ocop_verified_at BIGINT;
ALTER TABLE products ADD COLUMN ocop_verified_by BIGINT;
-- Stars already present came through the admin's importer (the demo and CSV imports): an
-- admin's word, taken as confirmed.
UPDATE products SET ocop_verified_at = updated_at WHERE ocop_stars IS NOT NULL;
