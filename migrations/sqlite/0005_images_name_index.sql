-- The name filter (`GET /v2/images?name=…`, the listing Glance's clients
-- run most after the default one): an index that finds the name and yields
-- its images already in the default order (created_at, id), so a page is a
-- seek and no scan. An index on name alone was not used: the planner
-- preferred walking images_created_at_id for the ORDER BY and checked every
-- row's name (benches/api-load.sh: 1 hit among 1000 images, 2.8x the
-- requests per second with this index).
CREATE INDEX images_name_created_at_id ON images (name, created_at, id);
