//! `GET /v2/images` in SQL: a [`ListQuery`] as one `SELECT` with its
//! filters, the caller's scope (with shared images through memberships),
//! Glance's community default, the sort keys and keyset paging after a marker.
//!
//! It owns the translation only: what each filter and scope means is
//! documented on the query types. Column names come from fixed tables here,
//! never from caller input, which only ever travels as bound values.

use super::engine::{Session, Sql, Value};
use super::records::{IMAGE_COLUMNS, db, images_from_rows, load_image, micros, to_i64};
use crate::image::{Image, ImageId};
use crate::repo::{
    AnyOf, Comparison, Error, ListQuery, ListScope, MemberStatusFilter, SortBy, SortDir, SortKey,
    TimeFilter, VisibilityFilter,
};

/// One page of `query`.
pub(crate) async fn list(session: &mut Session, query: &ListQuery) -> Result<Vec<Image>, Error> {
    let marker = match query.marker {
        Some(id) => Some(marker(session, &query.scope, id).await?),
        None => None,
    };
    let sort = effective_sort(&query.sort, query.tie_break_dir);
    let mut select = Sql::new(format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE status <> 'deleted'"
    ));
    push_filters(&mut select, query);
    push_scope(&mut select, &query.scope, Some(query.member_status));
    push_visibility(&mut select, query.visibility, query.scope.project());
    if let Some(marker) = &marker {
        select.push(" AND ");
        push_after_marker(&mut select, &sort, marker)?;
    }
    select.push(" ORDER BY ");
    for (position, by) in sort.iter().enumerate() {
        if position > 0 {
            select.push(", ");
        }
        let column = sort_column(by.key);
        if sort_key_nullable(by.key) {
            // Null sorts as the smallest value on every database (SQLite
            // and PostgreSQL disagree by default), hence the explicit key.
            select.push(&format!(
                "({column} IS NULL) {}, ",
                match by.dir {
                    SortDir::Asc => "DESC",
                    SortDir::Desc => "ASC",
                }
            ));
        }
        select.push(&format!(
            "{column} {}",
            match by.dir {
                SortDir::Asc => "ASC",
                SortDir::Desc => "DESC",
            }
        ));
    }
    if let Some(limit) = query.limit {
        select.push(" LIMIT ").bind(i64::from(limit));
    }
    let rows = session
        .fetch_all(&select)
        .await
        .map_err(db("listing images"))?;
    images_from_rows(session, &rows).await
}

/// The marker image, which must be one the caller can see (in any member
/// status, as Glance's `_image_get`); it need not match the filters.
async fn marker(session: &mut Session, scope: &ListScope, id: ImageId) -> Result<Image, Error> {
    let mut visible = Sql::new("SELECT id FROM images WHERE status <> 'deleted' AND id = ");
    visible.bind(id.to_string());
    push_scope(&mut visible, scope, None);
    let found = session
        .fetch_optional(&visible)
        .await
        .map_err(db("reading the list marker"))?;
    if found.is_none() {
        return Err(Error::MarkerNotFound { id });
    }
    load_image(session, id)
        .await?
        .ok_or(Error::MarkerNotFound { id })
}

/// The sort keys to apply: the caller's (without repeats), then Glance's
/// tie-breakers `created_at` and `id` in `tie_break` when missing.
fn effective_sort(requested: &[SortBy], tie_break: SortDir) -> Vec<SortBy> {
    let mut sort: Vec<SortBy> = Vec::new();
    for by in requested {
        if !sort.iter().any(|seen| seen.key == by.key) {
            sort.push(*by);
        }
    }
    for key in [SortKey::CreatedAt, SortKey::Id] {
        if !sort.iter().any(|seen| seen.key == key) {
            sort.push(SortBy {
                key,
                dir: tie_break,
            });
        }
    }
    sort
}

fn sort_column(key: SortKey) -> &'static str {
    // Column names are the Glance names; this table is the whitelist that
    // keeps caller input out of the SQL text.
    match key {
        SortKey::Name => "name",
        SortKey::Status => "status",
        SortKey::ContainerFormat => "container_format",
        SortKey::DiskFormat => "disk_format",
        SortKey::Size => "size",
        SortKey::Id => "id",
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
    }
}

fn sort_key_nullable(key: SortKey) -> bool {
    match key {
        SortKey::Name | SortKey::ContainerFormat | SortKey::DiskFormat | SortKey::Size => true,
        SortKey::Status | SortKey::Id | SortKey::CreatedAt | SortKey::UpdatedAt => false,
    }
}

/// A marker's value for one sort key (typed, as its column).
fn marker_value(key: SortKey, marker: &Image) -> Result<Value, Error> {
    let id = marker.id;
    Ok(match key {
        SortKey::Name => Value::Text(marker.name.clone()),
        SortKey::Status => Value::Text(Some(marker.status.as_str().to_owned())),
        SortKey::ContainerFormat => {
            Value::Text(marker.container_format.map(|f| f.as_str().to_owned()))
        }
        SortKey::DiskFormat => Value::Text(marker.disk_format.map(|f| f.as_str().to_owned())),
        SortKey::Size => Value::Int(marker.size.map(|v| to_i64(id, "size", v)).transpose()?),
        SortKey::Id => Value::Text(Some(marker.id.to_string())),
        SortKey::CreatedAt => Value::Int(Some(micros(marker.created_at))),
        SortKey::UpdatedAt => Value::Int(Some(micros(marker.updated_at))),
    })
}

fn value_is_null(value: &Value) -> bool {
    matches!(value, Value::Text(None) | Value::Int(None))
}

/// Keyset pagination: rows strictly after `marker` in `sort` order, null
/// being the smallest value. For keys k1..kn:
/// `after(k1) OR (equal(k1) AND (after(k2) OR (equal(k2) AND …)))`.
fn push_after_marker(select: &mut Sql, sort: &[SortBy], marker: &Image) -> Result<(), Error> {
    let Some((first, rest)) = sort.split_first() else {
        return Ok(());
    };
    let column = sort_column(first.key);
    let value = marker_value(first.key, marker)?;
    let null = value_is_null(&value);
    select.push("(");
    match (first.dir, null) {
        (SortDir::Asc, true) => {
            select.push(&format!("{column} IS NOT NULL"));
        }
        (SortDir::Desc, true) => {
            select.push("1 = 0");
        }
        (SortDir::Asc, false) => {
            select.push(&format!("{column} > ")).bind(value.clone());
        }
        (SortDir::Desc, false) => {
            select.push(&format!("{column} < ")).bind(value.clone());
            if sort_key_nullable(first.key) {
                select.push(&format!(" OR {column} IS NULL"));
            }
        }
    }
    if !rest.is_empty() {
        select.push(" OR (");
        if null {
            select.push(&format!("{column} IS NULL"));
        } else {
            select.push(&format!("{column} = ")).bind(value);
        }
        select.push(" AND ");
        push_after_marker(select, rest, marker)?;
        select.push(")");
    }
    select.push(")");
    Ok(())
}

/// `AND column IN (…)` for an `eq:`/`in:` filter (an empty list matches nothing).
fn push_any_of(select: &mut Sql, column: &'static str, filter: &Option<AnyOf>) {
    let Some(AnyOf(values)) = filter else {
        return;
    };
    if values.is_empty() {
        select.push(" AND 1 = 0");
    } else {
        select.push(&format!(" AND {column} IN "));
        select.bind_list(values.iter().cloned());
    }
}

/// A time condition at whole-second precision, as index-friendly ranges of
/// the stored microseconds.
fn push_time(select: &mut Sql, column: &'static str, filter: &Option<TimeFilter>) {
    let Some(filter) = filter else {
        return;
    };
    const MICROS: i64 = 1_000_000;
    let second = filter.at.unix_timestamp();
    let start = second.saturating_mul(MICROS);
    let next = second.saturating_add(1).saturating_mul(MICROS);
    let (operator, bound) = match filter.op {
        Comparison::Gt => (">=", next),
        Comparison::Gte => (">=", start),
        Comparison::Lt => ("<", start),
        Comparison::Lte => ("<", next),
        Comparison::Eq => {
            select
                .push(&format!(" AND {column} >= "))
                .bind(start)
                .push(&format!(" AND {column} < "))
                .bind(next);
            return;
        }
        Comparison::Neq => {
            select
                .push(&format!(" AND ({column} < "))
                .bind(start)
                .push(&format!(" OR {column} >= "))
                .bind(next)
                .push(")");
            return;
        }
    };
    select
        .push(&format!(" AND {column} {operator} "))
        .bind(bound);
}

fn push_filters(select: &mut Sql, query: &ListQuery) {
    push_any_of(select, "id", &query.id);
    push_any_of(select, "name", &query.name);
    push_any_of(select, "status", &query.status);
    push_any_of(select, "container_format", &query.container_format);
    push_any_of(select, "disk_format", &query.disk_format);
    if let Some(owner) = &query.owner {
        select.push(" AND owner = ").bind(owner);
    }
    select
        .push(" AND os_hidden = ")
        .bind(query.os_hidden.unwrap_or(false));
    if let Some(protected) = query.protected {
        select.push(" AND protected = ").bind(protected);
    }
    if let Some(checksum) = &query.checksum {
        select.push(" AND checksum = ").bind(checksum);
    }
    if let Some(hash) = &query.os_hash_value {
        select.push(" AND os_hash_value = ").bind(hash);
    }
    // Bounds past i64::MAX match nothing (min) or everything with data (max).
    if let Some(min) = query.size_min {
        match i64::try_from(min) {
            Ok(min) => select.push(" AND size >= ").bind(min),
            Err(_) => select.push(" AND 1 = 0"),
        };
    }
    if let Some(max) = query.size_max {
        match i64::try_from(max) {
            Ok(max) => select.push(" AND size <= ").bind(max),
            Err(_) => select.push(" AND size IS NOT NULL"),
        };
    }
    push_time(select, "created_at", &query.created_at);
    push_time(select, "updated_at", &query.updated_at);
    for tag in &query.tags {
        select
            .push(" AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.value = ")
            .bind(tag)
            .push(")");
    }
    for (name, value) in &query.properties {
        select
            .push(" AND EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id AND p.name = ")
            .bind(name)
            .push(" AND p.value = ")
            .bind(value)
            .push(")");
    }
}

/// Who may see what (the scope the authorization layer set). `member_status`
/// limits which memberships count (`None`: any, as for the marker and `get`).
pub(crate) fn push_scope(
    select: &mut Sql,
    scope: &ListScope,
    member_status: Option<MemberStatusFilter>,
) {
    let ListScope::VisibleTo { project } = scope else {
        return;
    };
    select.push(" AND (visibility IN ('public', 'community')");
    if let Some(project) = project {
        select
            .push(" OR owner = ")
            .bind(project)
            .push(" OR (visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member = ")
            .bind(project);
        if let Some(MemberStatusFilter::Only(status)) = member_status {
            select.push(" AND m.status = ").bind(status.as_str());
        }
        select.push("))");
    }
    select.push(")");
}

/// The `visibility` filter, or Glance's default without one: no community
/// images except the caller's own (administrators included).
fn push_visibility(select: &mut Sql, filter: Option<VisibilityFilter>, project: Option<&str>) {
    match filter {
        Some(VisibilityFilter::Only(visibility)) => {
            select.push(" AND visibility = ").bind(visibility.as_str());
        }
        Some(VisibilityFilter::All) => {}
        None => {
            select.push(" AND (visibility <> 'community'");
            if let Some(project) = project {
                select.push(" OR owner = ").bind(project);
            }
            select.push(")");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tie_breakers_follow_the_single_direction() {
        let by = |key, dir| SortBy { key, dir };
        assert_eq!(
            effective_sort(&[by(SortKey::Name, SortDir::Asc)], SortDir::Asc),
            [
                by(SortKey::Name, SortDir::Asc),
                by(SortKey::CreatedAt, SortDir::Asc),
                by(SortKey::Id, SortDir::Asc)
            ]
        );
        assert_eq!(
            effective_sort(
                &[
                    by(SortKey::Id, SortDir::Asc),
                    by(SortKey::Id, SortDir::Desc)
                ],
                SortDir::Desc
            ),
            [
                by(SortKey::Id, SortDir::Asc),
                by(SortKey::CreatedAt, SortDir::Desc)
            ]
        );
    }
}
