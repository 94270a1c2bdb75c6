-- Pending deletions (issue 8, item 11): data that must go once the step
-- that queued it is over, forgotten when the store confirmed the delete. A
-- process killed in between leaves the row, and the next command that opens
-- the repository deletes the data (as Glance's scrubber works through
-- `pending_delete` locations).
-- reason 'deleted_image': the data of a deleted image, queued in the same
-- transaction that marks it `deleted` (image ids are never reused, so it is
-- never live data again). reason 'stage_object': a glance-direct stage
-- object, queued by its import before it unstages the image (or by the
-- delete of its `uploading` image, before the delete); collectable
-- once older than the upload lease while the image is neither `uploading`
-- nor `saving` (then its import is over, or died).
-- queued_at is in microseconds of the database's clock.

CREATE TABLE pending_deletions (
    url       TEXT   NOT NULL PRIMARY KEY,
    image_id  TEXT   NOT NULL,
    reason    TEXT   NOT NULL CHECK (reason IN ('deleted_image', 'stage_object')),
    queued_at BIGINT NOT NULL
);
CREATE INDEX pending_deletions_queued_at ON pending_deletions (queued_at);
