-- Pending deletions (issue 8, item 11): the data of a deleted image, queued
-- in the same transaction that marks the image `deleted` and forgotten once
-- the store confirmed the delete. A process killed in between leaves the row,
-- and the next command that opens the repository deletes the data (as
-- Glance's scrubber works through `pending_delete` locations). Image ids are
-- never reused, so a queued URL is never live data. queued_at is in
-- microseconds of the database's clock.

CREATE TABLE pending_deletions (
    url       TEXT   NOT NULL PRIMARY KEY,
    image_id  TEXT   NOT NULL,
    queued_at BIGINT NOT NULL
);
CREATE INDEX pending_deletions_queued_at ON pending_deletions (queued_at);
