-- Origin tracing (issue 10): a product's GTIN, its production batches ("lô") with every
-- revision kept, batch photos, anonymous scan counts per day, and the batch an order line
-- was sold from.

-- GTIN-14 (zero-padded, check digit verified in domain::Gtin); one product per GTIN.
ALTER TABLE products ADD COLUMN gtin TEXT;
CREATE UNIQUE INDEX products_gtin_key ON products (gtin);
-- The batch new orders are sold from; NULL means "the newest batch".
ALTER TABLE products ADD COLUMN current_batch_id BIGINT;

CREATE TABLE batches (
    id                {id},
    -- Upper-case, URL-safe, at most 20 characters (GS1 AI 10); printed in QR codes, so it
    -- never changes.
    code              TEXT NOT NULL,
    product_id        BIGINT NOT NULL REFERENCES products (id),
    shop_id           BIGINT NOT NULL REFERENCES shops (id),
    -- The revision the origin page shows; earlier ones stay in batch_revisions.
    revision          BIGINT NOT NULL DEFAULT 1,
    -- Set when labels were first printed: from then on a correction is a new revision.
    labels_printed_at BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CONSTRAINT batches_code_key UNIQUE (code)
);
CREATE INDEX batches_product_idx ON batches (product_id, id);

CREATE TABLE batch_revisions (
    batch_id       BIGINT NOT NULL REFERENCES batches (id),
    revision       BIGINT NOT NULL,
    produced_on    TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity > 0),
    maker          TEXT NOT NULL,
    -- JSON array of {"material","source"}.
    inputs         TEXT NOT NULL DEFAULT '[]',
    notes          TEXT NOT NULL DEFAULT '',
    expires_on     TEXT,
    ocop_cert_no   TEXT,
    ocop_cert_year BIGINT,
    -- Why a printed batch was corrected (empty for the first revision).
    reason         TEXT NOT NULL DEFAULT '',
    created_by     BIGINT REFERENCES users (id),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (batch_id, revision)
);

CREATE TABLE batch_photos (
    id         {id},
    batch_id   BIGINT NOT NULL REFERENCES batches (id),
    file_name  TEXT NOT NULL,
    thumb_name TEXT NOT NULL,
    position   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX batch_photos_batch_idx ON batch_photos (batch_id, position);

-- Origin page views per batch and day (Asia/Ho_Chi_Minh date): a count, nothing personal.
CREATE TABLE batch_scans (
    batch_id BIGINT NOT NULL REFERENCES batches (id),
    day      TEXT NOT NULL,
    n        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, day)
);

ALTER TABLE order_lines ADD COLUMN batch_code TEXT;
