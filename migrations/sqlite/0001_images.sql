-- Image records, Glance image API v2 fields. Written in the SQL subset that
-- SQLite and PostgreSQL share (BIGINT, TEXT, BOOLEAN, CHECK, foreign keys),
-- so the PostgreSQL migration can be this file with only types adjusted.
-- Timestamps are microseconds since the Unix epoch (UTC): exact, sortable,
-- and the same type on both databases.

CREATE TABLE images (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated')),
    visibility       TEXT    NOT NULL CHECK (visibility IN ('public', 'private', 'shared', 'community')),
    protected        BOOLEAN NOT NULL,
    os_hidden        BOOLEAN NOT NULL,
    owner            TEXT,
    disk_format      TEXT,
    container_format TEXT,
    min_disk         BIGINT  NOT NULL CHECK (min_disk >= 0),
    min_ram          BIGINT  NOT NULL CHECK (min_ram >= 0),
    size             BIGINT  CHECK (size >= 0),
    virtual_size     BIGINT  CHECK (virtual_size >= 0),
    checksum         TEXT,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    -- Set when status becomes 'deleted'; the row is kept for audit.
    deleted_at       BIGINT
);

-- The default listing: newest first, per owner, per status.
CREATE INDEX images_created_at_id ON images (created_at, id);
CREATE INDEX images_owner_status ON images (owner, status);
CREATE INDEX images_status ON images (status);

CREATE TABLE image_properties (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
-- Property filters (?os_distro=cirros) look up by name and value.
CREATE INDEX image_properties_name_value ON image_properties (name, value);

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, value)
);
CREATE INDEX image_tags_value ON image_tags (value);

CREATE TABLE image_locations (
    image_id TEXT   NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    url      TEXT   NOT NULL,
    -- Glance's location metadata: a JSON object of strings.
    metadata TEXT   NOT NULL,
    PRIMARY KEY (image_id, position)
);
