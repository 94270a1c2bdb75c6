-- Image members (Glance's image_members): one row per shared image and
-- member project, deleted with the image (portcullis deletes member rows
-- when an image is deleted, as Glance marks them deleted). A re-added
-- member gets a new row, as Glance's reuse of the soft-deleted row behaves.

CREATE TABLE image_members (
    image_id   TEXT   NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    member     TEXT   NOT NULL,
    status     TEXT   NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member)
);
-- A member's listing: "shared images where I am a member in this status".
CREATE INDEX image_members_member_status ON image_members (member, status);

-- The list filters on updated_at and the membership scope.
CREATE INDEX images_updated_at ON images (updated_at);
CREATE INDEX images_visibility ON images (visibility);
