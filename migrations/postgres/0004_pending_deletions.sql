-- Pending deletions: migrations/sqlite/0004_pending_deletions.sql with
-- PostgreSQL's types (see there for what each column means).

CREATE TABLE pending_deletions (
    url       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    image_id  TEXT COLLATE "C" NOT NULL,
    reason    TEXT COLLATE "C" NOT NULL CHECK (reason IN ('deleted_image', 'stage_object')),
    queued_at BIGINT NOT NULL
);
CREATE INDEX pending_deletions_queued_at ON pending_deletions (queued_at);
