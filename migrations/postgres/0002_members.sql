-- Image members: migrations/sqlite/0002_members.sql with PostgreSQL's types,
-- plus quota_projects, the row per project that quota-checked writes lock
-- (SELECT ... FOR UPDATE) so that two nodes cannot both pass a quota. SQLite
-- needs no such table: its write transactions (BEGIN IMMEDIATE) already
-- exclude each other.

CREATE TABLE image_members (
    image_id   TEXT COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    member     TEXT COLLATE "C" NOT NULL,
    status     TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE INDEX image_members_member_status ON image_members (member, status);

CREATE INDEX images_updated_at ON images (updated_at);
CREATE INDEX images_visibility ON images (visibility);

CREATE TABLE quota_projects (
    project TEXT COLLATE "C" NOT NULL PRIMARY KEY
);
