-- The name filter's index: migrations/sqlite/0005_images_name_index.sql
-- (see there for why it is composite).
CREATE INDEX images_name_created_at_id ON images (name, created_at, id);
