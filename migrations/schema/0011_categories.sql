-- Categories come from the village's list, kept by its moderators (issue 15): a seller picks
-- one, never types a new one ("màn tuyn" beside "Màn tuyn" split the filter in two).
-- `name_key` is the folded name (lower case, no diacritics): two categories of one village
-- never fold alike, and a name typed in another case or without diacritics finds its category.
-- Products keep the category's name (search indexes it); a rename updates them. The list is
-- filled from the products already there by a one-off step after the migrations
-- (`catalog::categories::adopt_existing`).
CREATE TABLE categories (
    id         {id},
    village_id BIGINT NOT NULL REFERENCES villages (id),
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT categories_village_key UNIQUE (village_id, name_key)
);
