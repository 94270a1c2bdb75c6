//! Image members in SQL: the `image_members` table (one row per image and
//! member project, deleted with the image).
//!
//! It owns the rows and their mapping to [`Member`]; who may see or change
//! which membership is the authorization and policy layers' business.

use time::OffsetDateTime;

use super::engine::{Row, Session, Sql, is_unique_violation};
use super::records::{db, from_micros, micros, parse_column};
use crate::image::{ImageId, Member, MemberStatus};
use crate::repo::Error;

/// The longest member id Glance stores (its `member` column).
const MAX_MEMBER_ID: usize = 255;

fn member_from_row(row: &Row) -> Result<Member, Error> {
    let read = || db("reading an image member");
    let image_id = row.text("image_id").map_err(read())?.unwrap_or_default();
    let member_id = row.text("member").map_err(read())?.unwrap_or_default();
    let status = row.text("status").map_err(read())?.unwrap_or_default();
    let created_at = row.int("created_at").map_err(read())?.unwrap_or_default();
    let updated_at = row.int("updated_at").map_err(read())?.unwrap_or_default();
    Ok(Member {
        image_id: parse_column(&image_id, "image_members.image_id", &image_id)?,
        status: parse_column(&image_id, "image_members.status", &status)?,
        created_at: from_micros(&image_id, created_at)?,
        updated_at: from_micros(&image_id, updated_at)?,
        member_id,
    })
}

const MEMBER_COLUMNS: &str = "image_id, member, status, created_at, updated_at";

/// Every member of image `id`, oldest first.
pub(crate) async fn list(session: &mut Session, id: ImageId) -> Result<Vec<Member>, Error> {
    let mut query = Sql::new(format!(
        "SELECT {MEMBER_COLUMNS} FROM image_members WHERE image_id = "
    ));
    query
        .bind(id.to_string())
        .push(" ORDER BY created_at, member");
    session
        .fetch_all(&query)
        .await
        .map_err(db("listing image members"))?
        .iter()
        .map(member_from_row)
        .collect()
}

/// The membership of `member_id` in image `id`, if any.
pub(crate) async fn find(
    session: &mut Session,
    id: ImageId,
    member_id: &str,
) -> Result<Option<Member>, Error> {
    let mut query = Sql::new(format!(
        "SELECT {MEMBER_COLUMNS} FROM image_members WHERE image_id = "
    ));
    query
        .bind(id.to_string())
        .push(" AND member = ")
        .bind(member_id);
    session
        .fetch_optional(&query)
        .await
        .map_err(db("reading an image member"))?
        .as_ref()
        .map(member_from_row)
        .transpose()
}

/// Fails unless `member_id` can name a project: not empty, at most 255
/// characters, no control characters.
pub(crate) fn validate_member_id(member_id: &str) -> Result<(), Error> {
    let reason = if member_id.is_empty() {
        Some("it is empty")
    } else if member_id.chars().count() > MAX_MEMBER_ID {
        Some("it is longer than 255 characters")
    } else if member_id.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidMember {
            member_id: member_id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Adds `member_id` to image `id` as `pending`.
///
/// Fails with [`Error::MemberExists`] when it already is a member.
pub(crate) async fn insert(
    session: &mut Session,
    id: ImageId,
    member_id: &str,
    now: OffsetDateTime,
) -> Result<Member, Error> {
    if find(session, id, member_id).await?.is_some() {
        return Err(Error::MemberExists {
            id,
            member_id: member_id.to_owned(),
        });
    }
    let mut insert = Sql::new(format!(
        "INSERT INTO image_members ({MEMBER_COLUMNS}) VALUES ("
    ));
    insert
        .bind(id.to_string())
        .push(", ")
        .bind(member_id)
        .push(", ")
        .bind(MemberStatus::Pending.as_str())
        .push(", ")
        .bind(micros(now))
        .push(", ")
        .bind(micros(now))
        .push(")");
    session.execute(&insert).await.map_err(|err| {
        if is_unique_violation(&err) {
            Error::MemberExists {
                id,
                member_id: member_id.to_owned(),
            }
        } else {
            Error::Database {
                operation: "adding an image member",
                source: err,
            }
        }
    })?;
    find(session, id, member_id)
        .await?
        .ok_or_else(|| Error::MemberNotFound {
            id,
            member_id: member_id.to_owned(),
        })
}

/// Sets the status of `member_id` in image `id`.
///
/// Fails with [`Error::MemberNotFound`] when it is not a member.
pub(crate) async fn set_status(
    session: &mut Session,
    id: ImageId,
    member_id: &str,
    status: MemberStatus,
    now: OffsetDateTime,
) -> Result<Member, Error> {
    let mut update = Sql::new("UPDATE image_members SET status = ");
    update
        .bind(status.as_str())
        .push(", updated_at = ")
        .bind(micros(now))
        .push(" WHERE image_id = ")
        .bind(id.to_string())
        .push(" AND member = ")
        .bind(member_id);
    let changed = session
        .execute(&update)
        .await
        .map_err(db("updating an image member"))?;
    let not_found = || Error::MemberNotFound {
        id,
        member_id: member_id.to_owned(),
    };
    if changed == 0 {
        return Err(not_found());
    }
    find(session, id, member_id).await?.ok_or_else(not_found)
}

/// Removes `member_id` from image `id`; returns the membership as it was.
///
/// Fails with [`Error::MemberNotFound`] when it is not a member.
pub(crate) async fn delete(
    session: &mut Session,
    id: ImageId,
    member_id: &str,
) -> Result<Member, Error> {
    let not_found = || Error::MemberNotFound {
        id,
        member_id: member_id.to_owned(),
    };
    let member = find(session, id, member_id).await?.ok_or_else(not_found)?;
    let mut delete = Sql::new("DELETE FROM image_members WHERE image_id = ");
    delete
        .bind(id.to_string())
        .push(" AND member = ")
        .bind(member_id);
    let deleted = session
        .execute(&delete)
        .await
        .map_err(db("removing an image member"))?;
    if deleted == 0 {
        return Err(not_found());
    }
    Ok(member)
}
