-- Upload leases (issue 7): the row an upload owns while its image is
-- `saving`, written in the same transaction as the queued -> saving claim.
-- node_id names the node, holder the process on it (boot id, pid, start
-- time), token this one upload. expires_at is in microseconds of the
-- database's own clock (never a node's), renewed by the upload's
-- heartbeat; an expired lease is forfeit and whoever finds it rolls the
-- image back and aborts the staging intent recorded here before the first
-- byte was written.
-- store_binding: the one store whose objects this database's images
-- reference; opening the database with another store is refused.

CREATE TABLE upload_leases (
    image_id    TEXT   NOT NULL PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    node_id     TEXT   NOT NULL,
    holder      TEXT   NOT NULL,
    token       TEXT   NOT NULL,
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
