-- Upload leases and the store binding: migrations/sqlite/0003_upload_leases.sql
-- with PostgreSQL's types (see there for what each column means).

CREATE TABLE upload_leases (
    image_id    TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    node_id     TEXT COLLATE "C" NOT NULL,
    holder      TEXT COLLATE "C" NOT NULL,
    token       TEXT COLLATE "C" NOT NULL,
    intent      TEXT,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX upload_leases_expires_at ON upload_leases (expires_at);

CREATE TABLE store_binding (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    store     TEXT    NOT NULL,
    bound_at  BIGINT  NOT NULL
);
