//! Image records in SQL: the columns, decoding rows (and their properties,
//! tags and locations) into [`Image`]s, and writing them back.
//!
//! It owns the mapping between `Image` and the `images`, `image_properties`,
//! `image_tags` and `image_locations` tables, and the compare-and-swap
//! `UPDATE`. It must not decide whether a change is allowed.

use std::collections::BTreeMap;
use std::str::FromStr;

use time::OffsetDateTime;

use super::engine::{Engine, Row, Session, Sql, is_unique_violation};
use crate::image::{Image, ImageId, Location, Properties};
use crate::repo::{Change, ChangeKind, Error};

/// How many ids go into one `IN (…)` list when loading child rows.
const IN_LIST_CHUNK: usize = 500;

/// The `images` columns an [`Image`] is read from, in `SELECT` order.
pub(crate) const IMAGE_COLUMNS: &str = "id, name, status, visibility, protected, os_hidden, owner, \
     disk_format, container_format, min_disk, min_ram, size, virtual_size, checksum, \
     os_hash_algo, os_hash_value, created_at, updated_at";

/// Maps a driver error to [`Error::Database`] naming what was being done.
pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Database { operation, source }
}

/// Microseconds since the Unix epoch: the stored form of every timestamp.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    // i64 microseconds cover ±292,000 years; clamp rather than fail beyond.
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The timestamp stored as `value` microseconds.
pub(crate) fn from_micros(id: &str, value: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1000).map_err(|err| {
        Error::Corrupt {
            id: id.to_owned(),
            reason: format!("timestamp {value} is out of range: {err}"),
        }
    })
}

/// `value` as a BIGINT.
pub(crate) fn to_i64(id: ImageId, attribute: &str, value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::Corrupt {
        id: id.to_string(),
        reason: format!("{attribute} {value} is larger than the database can store"),
    })
}

pub(crate) fn parse_column<T: FromStr>(id: &str, column: &str, text: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|err| Error::Corrupt {
        id: id.to_owned(),
        reason: format!("column {column}: {err}"),
    })
}

fn unsigned(id: &str, column: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt {
        id: id.to_owned(),
        reason: format!("column {column} is negative ({value})"),
    })
}

/// Decodes one `images` row (children not yet attached).
pub(crate) fn image_from_row(row: &Row) -> Result<Image, Error> {
    let read = || db("reading an image row");
    let id_text = row.text("id").map_err(read())?.unwrap_or_default();
    let text = |column: &str| row.text(column).map_err(read());
    let int = |column: &str| row.int(column).map_err(read());
    let flag = |column: &str| row.boolean(column).map_err(read());
    let required_text = |column: &str| -> Result<String, Error> {
        text(column)?.ok_or_else(|| Error::Corrupt {
            id: id_text.clone(),
            reason: format!("column {column} is null"),
        })
    };
    let required_int = |column: &str| -> Result<i64, Error> {
        int(column)?.ok_or_else(|| Error::Corrupt {
            id: id_text.clone(),
            reason: format!("column {column} is null"),
        })
    };
    let optional_u64 = |column: &str| -> Result<Option<u64>, Error> {
        int(column)?
            .map(|value| unsigned(&id_text, column, value))
            .transpose()
    };
    let small = |column: &str| -> Result<u32, Error> {
        let value = required_int(column)?;
        u32::try_from(value).map_err(|_| Error::Corrupt {
            id: id_text.clone(),
            reason: format!("column {column} is out of range ({value})"),
        })
    };
    let id: ImageId = parse_column(&id_text, "id", &id_text)?;
    Ok(Image {
        id,
        name: text("name")?,
        status: parse_column(&id_text, "status", &required_text("status")?)?,
        visibility: parse_column(&id_text, "visibility", &required_text("visibility")?)?,
        protected: flag("protected")?,
        os_hidden: flag("os_hidden")?,
        owner: text("owner")?,
        disk_format: text("disk_format")?
            .map(|value| parse_column(&id_text, "disk_format", &value))
            .transpose()?,
        container_format: text("container_format")?
            .map(|value| parse_column(&id_text, "container_format", &value))
            .transpose()?,
        min_disk: small("min_disk")?,
        min_ram: small("min_ram")?,
        size: optional_u64("size")?,
        virtual_size: optional_u64("virtual_size")?,
        checksum: text("checksum")?,
        os_hash_algo: text("os_hash_algo")?,
        os_hash_value: text("os_hash_value")?,
        tags: Default::default(),
        created_at: from_micros(&id_text, required_int("created_at")?)?,
        updated_at: from_micros(&id_text, required_int("updated_at")?)?,
        locations: Vec::new(),
        properties: Properties::new(),
    })
}

/// Decodes `images` rows and attaches their children.
pub(crate) async fn images_from_rows(
    session: &mut Session,
    rows: &[Row],
) -> Result<Vec<Image>, Error> {
    let mut images = rows
        .iter()
        .map(image_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    load_children(session, &mut images).await?;
    Ok(images)
}

/// Attaches properties, tags and locations to `images` (by id), read in
/// one statement that returns one row per image and kind, each a JSON
/// document aggregated by the database (`kind`: `p` an object of the
/// properties, `t` an array of the tags, `l` an array of `[position, url,
/// metadata]`).
///
/// Why one aggregated statement: both drivers hand every row across a
/// channel from their connection's thread and copy every value, so rows
/// and statements, not the bytes, are the list path's cost; a page of 25
/// images with three properties each was 100 rows in three statements,
/// and is 25 to 75 rows in one (README, Benchmarks: metadata API).
async fn load_children(session: &mut Session, images: &mut [Image]) -> Result<(), Error> {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (position, image) in images.iter().enumerate() {
        index.insert(image.id.to_string(), position);
    }
    let ids: Vec<String> = index.keys().cloned().collect();
    let (properties, tags, locations) = match session.engine() {
        Engine::Sqlite => (
            "json_group_object(name, value)",
            "json_group_array(value)",
            "json_group_array(json_array(position, url, metadata))",
        ),
        Engine::Postgres => (
            "json_object_agg(name, value)::text",
            "json_agg(value)::text",
            "json_agg(json_build_array(position, url, metadata))::text",
        ),
    };
    let read = || db("reading image properties, tags and locations");
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let mut query = Sql::new(format!(
            "SELECT image_id, 'p' AS kind, {properties} AS doc FROM image_properties WHERE image_id IN "
        ));
        query.bind_list(chunk.iter().cloned()).push(&format!(
            " GROUP BY image_id UNION ALL \
             SELECT image_id, 't' AS kind, {tags} AS doc FROM image_tags WHERE image_id IN "
        ));
        query.bind_list(chunk.iter().cloned()).push(&format!(
            " GROUP BY image_id UNION ALL \
             SELECT image_id, 'l' AS kind, {locations} AS doc FROM image_locations WHERE image_id IN "
        ));
        query
            .bind_list(chunk.iter().cloned())
            .push(" GROUP BY image_id");
        for row in session.fetch_all(&query).await.map_err(read())? {
            let image_id = row.text("image_id").map_err(read())?.unwrap_or_default();
            let kind = row.text("kind").map_err(read())?.unwrap_or_default();
            let doc = row.text("doc").map_err(read())?.unwrap_or_default();
            let Some(&position) = index.get(&image_id) else {
                continue;
            };
            let corrupt = |what: &str, err: serde_json::Error| Error::Corrupt {
                id: image_id.clone(),
                reason: format!("{what}: {err}"),
            };
            let image = &mut images[position];
            match kind.as_str() {
                "p" => {
                    image.properties = serde_json::from_str(&doc)
                        .map_err(|err| corrupt("properties are not strings", err))?;
                }
                "t" => {
                    let tags: Vec<String> = serde_json::from_str(&doc)
                        .map_err(|err| corrupt("tags are not strings", err))?;
                    image.tags.extend(tags);
                }
                _ => {
                    let mut rows: Vec<(i64, String, String)> =
                        serde_json::from_str(&doc).map_err(|err| {
                            corrupt("locations are not [position, url, metadata]", err)
                        })?;
                    rows.sort_by_key(|(position, _, _)| *position);
                    for (_, url, metadata_json) in rows {
                        let metadata: Properties =
                            serde_json::from_str(&metadata_json).map_err(|err| {
                                corrupt("location metadata is not a JSON object of strings", err)
                            })?;
                        image.locations.push(Location { url, metadata });
                    }
                }
            }
        }
    }
    Ok(())
}

/// The live (not deleted) image `id`, with its children.
pub(crate) async fn load_image(session: &mut Session, id: ImageId) -> Result<Option<Image>, Error> {
    let mut query = Sql::new(format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = "));
    query.bind(id.to_string()).push(" AND status <> 'deleted'");
    let Some(row) = session
        .fetch_optional(&query)
        .await
        .map_err(db("reading an image"))?
    else {
        return Ok(None);
    };
    let mut images = images_from_rows(session, &[row]).await?;
    Ok(images.pop())
}

/// Whether image `id` exists and is not deleted.
pub(crate) async fn is_live(session: &mut Session, id: ImageId) -> Result<bool, Error> {
    let mut query = Sql::new("SELECT id FROM images WHERE status <> 'deleted' AND id = ");
    query.bind(id.to_string());
    Ok(session
        .fetch_optional(&query)
        .await
        .map_err(db("reading an image"))?
        .is_some())
}

/// Whether any row, deleted or not, has id `id` (Glance never reuses ids).
pub(crate) async fn id_taken(session: &mut Session, id: ImageId) -> Result<bool, Error> {
    let mut query = Sql::new("SELECT id FROM images WHERE id = ");
    query.bind(id.to_string());
    Ok(session
        .fetch_optional(&query)
        .await
        .map_err(db("adding an image"))?
        .is_some())
}

/// Appends the attribute columns of `image` as `$n` values, in the order of
/// `name, status, visibility, protected, os_hidden, owner, disk_format,
/// container_format, min_disk, min_ram, size, virtual_size, checksum,
/// os_hash_algo, os_hash_value`, each preceded by `separator(column)`.
fn push_fields(
    query: &mut Sql,
    image: &Image,
    mut separator: impl FnMut(&mut Sql, &'static str),
) -> Result<(), Error> {
    let size = image
        .size
        .map(|value| to_i64(image.id, "size", value))
        .transpose()?;
    let virtual_size = image
        .virtual_size
        .map(|value| to_i64(image.id, "virtual_size", value))
        .transpose()?;
    let values: [(&'static str, super::engine::Value); 15] = [
        ("name", image.name.clone().into()),
        ("status", image.status.as_str().into()),
        ("visibility", image.visibility.as_str().into()),
        ("protected", image.protected.into()),
        ("os_hidden", image.os_hidden.into()),
        ("owner", image.owner.clone().into()),
        (
            "disk_format",
            image.disk_format.map(|format| format.as_str()).into(),
        ),
        (
            "container_format",
            image.container_format.map(|format| format.as_str()).into(),
        ),
        ("min_disk", i64::from(image.min_disk).into()),
        ("min_ram", i64::from(image.min_ram).into()),
        ("size", size.into()),
        ("virtual_size", virtual_size.into()),
        ("checksum", image.checksum.clone().into()),
        ("os_hash_algo", image.os_hash_algo.clone().into()),
        ("os_hash_value", image.os_hash_value.clone().into()),
    ];
    for (column, value) in values {
        separator(query, column);
        query.bind(value);
    }
    Ok(())
}

/// Inserts `image` and its children.
///
/// Fails with [`Error::AlreadyExists`] when another transaction inserted
/// the same id first (PostgreSQL's unique violation).
pub(crate) async fn insert_image(session: &mut Session, image: &Image) -> Result<(), Error> {
    let mut insert = Sql::new(
        "INSERT INTO images (id, created_at, updated_at, name, status, visibility, protected, \
         os_hidden, owner, disk_format, container_format, min_disk, min_ram, size, virtual_size, \
         checksum, os_hash_algo, os_hash_value) VALUES (",
    );
    insert
        .bind(image.id.to_string())
        .push(", ")
        .bind(micros(image.created_at))
        .push(", ")
        .bind(micros(image.updated_at));
    push_fields(&mut insert, image, |query, _| {
        query.push(", ");
    })?;
    insert.push(")");
    session.execute(&insert).await.map_err(|err| {
        if is_unique_violation(&err) {
            Error::AlreadyExists { id: image.id }
        } else {
            Error::Database {
                operation: "adding an image",
                source: err,
            }
        }
    })?;
    write_properties_and_tags(session, image).await?;
    write_locations(session, image).await
}

/// Writes `change.after` over the record `change.before` was read as, with
/// `updated_at` set to `updated_at`: a compare-and-swap on the revision
/// (`updated_at` and `status`). Returns whether the row matched; when it did
/// not, nothing was written. Children are replaced as the kind's write set
/// says (an update: properties and tags; an upload's commit or rollback:
/// locations).
pub(crate) async fn update_image(
    session: &mut Session,
    change: &Change,
    updated_at: OffsetDateTime,
) -> Result<bool, Error> {
    let before = &change.before;
    let after = &change.after;
    let mut update = Sql::new("UPDATE images SET updated_at = ");
    update.bind(micros(updated_at));
    push_fields(&mut update, after, |query, column| {
        query.push(", ").push(column).push(" = ");
    })?;
    update
        .push(" WHERE id = ")
        .bind(before.id.to_string())
        .push(" AND updated_at = ")
        .bind(micros(before.updated_at))
        .push(" AND status = ")
        .bind(before.status.as_str());
    let matched = session
        .execute(&update)
        .await
        .map_err(db("saving an image"))?;
    if matched == 0 {
        return Ok(false);
    }
    match change.kind {
        ChangeKind::Update => {
            delete_children(session, after.id, &["image_properties", "image_tags"]).await?;
            write_properties_and_tags(session, after).await?;
        }
        ChangeKind::CommitUpload | ChangeKind::RollbackUpload => {
            delete_children(session, after.id, &["image_locations"]).await?;
            write_locations(session, after).await?;
        }
        ChangeKind::ClaimUpload
        | ChangeKind::Deactivate
        | ChangeKind::Reactivate
        | ChangeKind::Stage
        | ChangeKind::Unstage => {}
    }
    Ok(true)
}

/// Deletes the rows of `tables` (child tables of `images`) for image `id`.
pub(crate) async fn delete_children(
    session: &mut Session,
    id: ImageId,
    tables: &[&'static str],
) -> Result<(), Error> {
    for table in tables {
        let mut delete = Sql::new(format!("DELETE FROM {table} WHERE image_id = "));
        delete.bind(id.to_string());
        session
            .execute(&delete)
            .await
            .map_err(db("replacing image children"))?;
    }
    Ok(())
}

async fn write_properties_and_tags(session: &mut Session, image: &Image) -> Result<(), Error> {
    let id = image.id.to_string();
    for (name, value) in &image.properties {
        let mut insert = Sql::new("INSERT INTO image_properties (image_id, name, value) VALUES (");
        insert
            .bind(&id)
            .push(", ")
            .bind(name)
            .push(", ")
            .bind(value)
            .push(")");
        session
            .execute(&insert)
            .await
            .map_err(db("writing image properties"))?;
    }
    for tag in &image.tags {
        let mut insert = Sql::new("INSERT INTO image_tags (image_id, value) VALUES (");
        insert.bind(&id).push(", ").bind(tag).push(")");
        session
            .execute(&insert)
            .await
            .map_err(db("writing image tags"))?;
    }
    Ok(())
}

async fn write_locations(session: &mut Session, image: &Image) -> Result<(), Error> {
    let id = image.id.to_string();
    for (position, location) in image.locations.iter().enumerate() {
        let metadata = serde_json::to_string(&location.metadata).map_err(|err| Error::Corrupt {
            id: id.clone(),
            reason: format!("location metadata cannot be encoded: {err}"),
        })?;
        let mut insert =
            Sql::new("INSERT INTO image_locations (image_id, position, url, metadata) VALUES (");
        insert
            .bind(&id)
            .push(", ")
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .push(", ")
            .bind(&location.url)
            .push(", ")
            .bind(metadata)
            .push(")");
        session
            .execute(&insert)
            .await
            .map_err(db("writing image locations"))?;
    }
    Ok(())
}
