-- Image records, Glance image API v2 fields: migrations/sqlite/0001_images.sql
-- with PostgreSQL's types. Text columns use COLLATE "C" so that sorting and
-- keyset paging compare bytes exactly as SQLite's BINARY collation does,
-- whatever locale the cluster was created with. Timestamps are microseconds
-- since the Unix epoch (UTC), as on SQLite.

CREATE TABLE images (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name             TEXT COLLATE "C",
    status           TEXT COLLATE "C" NOT NULL CHECK (status IN ('queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated')),
    visibility       TEXT COLLATE "C" NOT NULL CHECK (visibility IN ('public', 'private', 'shared', 'community')),
    protected        BOOLEAN NOT NULL,
    os_hidden        BOOLEAN NOT NULL,
    owner            TEXT COLLATE "C",
    disk_format      TEXT COLLATE "C",
    container_format TEXT COLLATE "C",
    min_disk         BIGINT  NOT NULL CHECK (min_disk >= 0),
    min_ram          BIGINT  NOT NULL CHECK (min_ram >= 0),
    size             BIGINT  CHECK (size >= 0),
    virtual_size     BIGINT  CHECK (virtual_size >= 0),
    checksum         TEXT COLLATE "C",
    os_hash_algo     TEXT COLLATE "C",
    os_hash_value    TEXT COLLATE "C",
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    -- Set when status becomes 'deleted'; the row is kept for audit.
    deleted_at       BIGINT
);

CREATE INDEX images_created_at_id ON images (created_at, id);
CREATE INDEX images_owner_status ON images (owner, status);
CREATE INDEX images_status ON images (status);

CREATE TABLE image_properties (
    image_id TEXT COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name     TEXT COLLATE "C" NOT NULL,
    value    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name_value ON image_properties (name, value);

CREATE TABLE image_tags (
    image_id TEXT COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    value    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, value)
);
CREATE INDEX image_tags_value ON image_tags (value);

CREATE TABLE image_locations (
    image_id TEXT COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    url      TEXT   NOT NULL,
    -- Glance's location metadata: a JSON object of strings.
    metadata TEXT   NOT NULL,
    PRIMARY KEY (image_id, position)
);
