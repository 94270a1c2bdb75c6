//! The typed query of Glance's `GET /v2/images`: filters, member status,
//! sort, paging and the caller's scope ([`ListQuery`]), plus parsers for the
//! filter-value syntax Glance 33 accepts (`in:` lists with quotes, `eq:`,
//! `gt:`/`gte:`/`lt:`/`lte:`/`neq:` times, ISO 8601 as the `iso8601`
//! library reads it).
//!
//! It owns what each filter means; the SQL backend translates the query and
//! the HTTP layer fills it from a query string (with the parsers here). It
//! must not do IO.
//!
//! Behaviour recorded from the real Glance 33 (glance/api/v2/images.py,
//! glance/db/sqlalchemy/api.py, glance/common/utils.py, and requests to it):
//! `id`, `name`, `status`, `container_format` and `disk_format` take `eq:` or
//! `in:` (any other operator is 400; a name containing `:` needs `eq:`); their
//! values are compared as stored text, so an unknown status or a non-UUID id
//! matches nothing (200, empty) rather than failing; `in:` with nothing after
//! it matches nothing; `created_at`/`updated_at` take an operator and an ISO
//! 8601 time (no operator: `eq`); `size_min`/`size_max` are inclusive and
//! leave out images without data; any other key is a custom property compared
//! exactly.

use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::image::{MemberStatus, Properties, Visibility};

/// Filters, sort and paging for [`super::ImageRepo::list`], as Glance's
/// `GET /v2/images`.
///
/// `Default` is Glance's default listing: every image the caller may see,
/// except hidden images, community images of other projects, and shared
/// images the caller has not accepted; newest first; no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only these ids (`id=<id>`, `id=in:<a>,<b>`).
    pub id: Option<AnyOf>,
    /// Only these names (`name=<n>`, `name=eq:<n:with:colons>`, `name=in:…`).
    pub name: Option<AnyOf>,
    /// Only these statuses (`status=active`, `status=in:queued,saving`).
    /// Deleted images are never listed, whatever this says.
    pub status: Option<AnyOf>,
    /// Only these container formats.
    pub container_format: Option<AnyOf>,
    /// Only these disk formats.
    pub disk_format: Option<AnyOf>,
    /// Only images of this owner (compared exactly; Glance has no `in:` here).
    pub owner: Option<String>,
    /// Visibility filter; `None` is Glance's default (no community images
    /// of other projects).
    pub visibility: Option<VisibilityFilter>,
    /// Which memberships bring shared images of other projects into the
    /// list (Glance's `member_status`, default `accepted`).
    pub member_status: MemberStatusFilter,
    /// Only images carrying every one of these tags.
    pub tags: Vec<String>,
    /// Only hidden (`true`) or only not hidden (`false`) images; `None` is
    /// Glance's default, `false`.
    pub os_hidden: Option<bool>,
    /// Only protected (`true`) or unprotected (`false`) images.
    pub protected: Option<bool>,
    /// Only images whose md5 `checksum` is exactly this.
    pub checksum: Option<String>,
    /// Only images whose `os_hash_value` is exactly this.
    pub os_hash_value: Option<String>,
    /// Only images with at least this many bytes (images without data never match).
    pub size_min: Option<u64>,
    /// Only images with at most this many bytes (images without data never match).
    pub size_max: Option<u64>,
    /// A condition on `created_at`.
    pub created_at: Option<TimeFilter>,
    /// A condition on `updated_at`.
    pub updated_at: Option<TimeFilter>,
    /// Only images with every one of these properties set to these values.
    pub properties: Properties,
    /// At most this many images; `None` means all.
    pub limit: Option<u32>,
    /// Start after this image (the last id of the previous page). It must be
    /// an image the caller can see; it need not match the filters.
    pub marker: Option<crate::image::ImageId>,
    /// Sort keys, most significant first; empty means Glance's default
    /// (`created_at` desc). `created_at` and `id` are appended as
    /// tie-breakers when missing, in [`ListQuery::tie_break_dir`], so pages
    /// never overlap or skip even when many images share a timestamp.
    pub sort: Vec<SortBy>,
    /// The direction of the appended tie-breakers. Glance uses the one
    /// `sort_dir` the request gave (`sort_key=name&sort_dir=asc`, `sort=name:asc`)
    /// and `desc` when it gave none or several.
    pub tie_break_dir: SortDir,
    /// Which images the caller may see at all. Set by the authorization
    /// layer; callers leave it at the default.
    pub scope: ListScope,
}

impl ListQuery {
    /// Makes this query match no image whatever its other filters say, for
    /// a filter value no image can meet (Glance's `size=abc`, a `size_max`
    /// beyond any integer). The query still runs, so the marker is still
    /// checked and the answer is an ordinary empty page, as Glance's.
    pub fn match_nothing(&mut self) {
        // An empty `in:` list matches nothing (see [`AnyOf`]).
        self.id = Some(AnyOf(Vec::new()));
    }
}

/// Glance's `eq:`/`in:` filter on one attribute: the stored value (as
/// text) must be one of these. An empty list matches nothing (`name=in:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnyOf(pub Vec<String>);

impl AnyOf {
    /// Exactly one value.
    pub fn one(value: impl Into<String>) -> AnyOf {
        AnyOf(vec![value.into()])
    }

    /// Parses a filter value as Glance does for `id`, `name`, `status`,
    /// `container_format` and `disk_format`: `in:a,"b,c"` (a list; double
    /// quotes protect commas, `\"` a quote), `eq:value`, or a bare value. A
    /// value with a `:` that is not an ISO 8601 time is read as
    /// `operator:value`, so a name containing `:` must be given as `eq:`.
    ///
    /// Fails on an operator other than `in` or `eq`, and on badly placed or
    /// unclosed quotes in an `in:` list.
    pub fn parse(text: &str) -> Result<AnyOf, BadFilter> {
        let (operator, value) = split_operator(text);
        match operator {
            "in" => split_quoted_list(value).map(AnyOf),
            "eq" => Ok(AnyOf::one(value)),
            other => Err(BadFilter::UnknownOperator {
                operator: other.to_owned(),
            }),
        }
    }
}

/// A comparison of a timestamp filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `eq:` (also a bare time)
    Eq,
    /// `neq:`
    Neq,
    /// `gt:`
    Gt,
    /// `gte:`
    Gte,
    /// `lt:`
    Lt,
    /// `lte:`
    Lte,
}

/// A condition on `created_at` or `updated_at`.
///
/// Compared at the API's precision, whole seconds: Glance shows timestamps to
/// the second, so `eq:` with a time copied from an image document matches
/// that image, and `gt:` a shown time excludes it (the fraction of `at` is
/// dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFilter {
    /// How to compare.
    pub op: Comparison,
    /// With this time.
    pub at: OffsetDateTime,
}

impl FromStr for TimeFilter {
    type Err = BadFilter;

    /// Parses Glance's `created_at`/`updated_at` value: `[op:]ISO-8601-time`
    /// with `op` one of `eq`, `neq`, `gt`, `gte`, `lt`, `lte`.
    fn from_str(text: &str) -> Result<TimeFilter, BadFilter> {
        let (operator, value) = split_operator(text);
        let op = match operator {
            "eq" => Comparison::Eq,
            "neq" => Comparison::Neq,
            "gt" => Comparison::Gt,
            "gte" => Comparison::Gte,
            "lt" => Comparison::Lt,
            "lte" => Comparison::Lte,
            other => {
                return Err(BadFilter::UnknownOperator {
                    operator: other.to_owned(),
                });
            }
        };
        Ok(TimeFilter {
            op,
            at: parse_isotime(value)?,
        })
    }
}

/// The `visibility` list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// Only images with this visibility (`shared`: the caller's own shared
    /// images and those shared with it, by `member_status`).
    Only(Visibility),
    /// Every visibility the caller may see, community included (Glance's `all`).
    All,
}

impl FromStr for VisibilityFilter {
    type Err = crate::image::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            Ok(VisibilityFilter::All)
        } else {
            s.parse().map(VisibilityFilter::Only)
        }
    }
}

/// The `member_status` list filter: which of the caller's memberships list
/// other projects' shared images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatusFilter {
    /// Memberships in this status (Glance's default: `accepted`).
    Only(MemberStatus),
    /// Any membership (`all`).
    All,
}

impl Default for MemberStatusFilter {
    fn default() -> Self {
        MemberStatusFilter::Only(MemberStatus::Accepted)
    }
}

impl FromStr for MemberStatusFilter {
    type Err = crate::image::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            Ok(MemberStatusFilter::All)
        } else {
            s.parse().map(MemberStatusFilter::Only)
        }
    }
}

/// Which images a listing may return at all, as the authorization layer
/// decides (glance/db/sqlalchemy/api.py `_select_images_query`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Every image (administrators; the bare SQL backend). `project` is the
    /// caller's project: Glance's default listing leaves out community
    /// images of any other project, for administrators too.
    Everything {
        /// The caller's project, if any.
        project: Option<String>,
    },
    /// Public and community images, every image owned by `project`, and
    /// `shared` images `project` is a member of (in the query's
    /// `member_status`). Without a project: public and community only.
    VisibleTo {
        /// The caller's project, if any.
        project: Option<String>,
    },
}

impl Default for ListScope {
    fn default() -> Self {
        ListScope::Everything { project: None }
    }
}

impl ListScope {
    /// The caller's project.
    pub fn project(&self) -> Option<&str> {
        match self {
            ListScope::Everything { project } | ListScope::VisibleTo { project } => {
                project.as_deref()
            }
        }
    }
}

/// One sort key and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortBy {
    /// The attribute.
    pub key: SortKey,
    /// Ascending or descending.
    pub dir: SortDir,
}

/// Sort direction (Glance's `sort_dir`, default `desc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDir {
    /// Smallest first (null before any value).
    Asc,
    /// Largest first (null after any value).
    #[default]
    Desc,
}

impl FromStr for SortDir {
    type Err = BadSort;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "asc" => Ok(SortDir::Asc),
            "desc" => Ok(SortDir::Desc),
            other => Err(BadSort::Dir(other.to_owned())),
        }
    }
}

/// The attributes Glance 33 sorts by (its `_available_sort_keys`; any other
/// `sort_key` is a 400 there and a parse error here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `name`
    Name,
    /// `status`
    Status,
    /// `container_format`
    ContainerFormat,
    /// `disk_format`
    DiskFormat,
    /// `size`
    Size,
    /// `id`
    Id,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
}

impl SortKey {
    /// Every key, with its Glance name, in Glance's order.
    pub const ALL: &'static [(SortKey, &'static str)] = &[
        (SortKey::Name, "name"),
        (SortKey::Status, "status"),
        (SortKey::ContainerFormat, "container_format"),
        (SortKey::DiskFormat, "disk_format"),
        (SortKey::Size, "size"),
        (SortKey::Id, "id"),
        (SortKey::CreatedAt, "created_at"),
        (SortKey::UpdatedAt, "updated_at"),
    ];

    /// Glance's name for this key.
    pub fn as_str(self) -> &'static str {
        match self {
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
}

impl FromStr for SortKey {
    type Err = BadSort;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortKey::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(key, _)| *key)
            .ok_or_else(|| BadSort::Key(s.to_owned()))
    }
}

/// A `sort_key` or `sort_dir` Glance does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSort {
    /// Unknown sort key.
    #[error(
        "{0:?} is not a sort key (expected one of: name, status, container_format, disk_format, size, id, created_at, updated_at)"
    )]
    Key(String),
    /// Unknown direction.
    #[error("{0:?} is not a sort direction (expected asc or desc)")]
    Dir(String),
    /// `sort=` together with `sort_key`/`sort_dir`.
    #[error("the sort= syntax and sort_key/sort_dir cannot be combined")]
    Combined,
    /// Several `sort_dir`s, but not one per `sort_key`.
    #[error("{dirs} sort directions for {keys} sort keys (give one direction, or one per key)")]
    CountMismatch {
        /// How many `sort_key`s.
        keys: usize,
        /// How many `sort_dir`s.
        dirs: usize,
    },
}

/// Glance's two sort syntaxes, as `GET /v2/images` reads them: `sort`
/// (`name:asc,created_at`: a missing direction is `desc`) or the classic
/// repeated `sort_key` and `sort_dir` (one direction for every key, or one
/// per key; none: `desc`). Returns the sort keys and the direction of the
/// appended `created_at`/`id` tie-breakers ([`ListQuery::tie_break_dir`]):
/// the one direction given when exactly one was, else `desc`, as Glance's
/// `image_get_all`. No keys at all means `created_at`.
///
/// Fails when the syntaxes are combined, a key or direction is not
/// Glance's, or several directions do not match the keys one to one.
pub fn parse_sort(
    sort: Option<&str>,
    sort_keys: &[&str],
    sort_dirs: &[&str],
) -> Result<(Vec<SortBy>, SortDir), BadSort> {
    let (keys, dirs): (Vec<SortKey>, Vec<SortDir>) = match sort {
        Some(_) if !sort_keys.is_empty() || !sort_dirs.is_empty() => {
            return Err(BadSort::Combined);
        }
        Some(text) => {
            let mut keys = Vec::new();
            let mut dirs = Vec::new();
            for item in text.trim().split(',') {
                let (key, dir) = item.split_once(':').unwrap_or((item, ""));
                keys.push(key.trim().parse()?);
                dirs.push(match dir.trim() {
                    "" => SortDir::Desc,
                    dir => dir.parse()?,
                });
            }
            (keys, dirs)
        }
        None => {
            let keys = sort_keys
                .iter()
                .map(|key| key.trim().parse())
                .collect::<Result<Vec<SortKey>, _>>()?;
            let dirs = sort_dirs
                .iter()
                .map(|dir| dir.trim().parse())
                .collect::<Result<Vec<SortDir>, _>>()?;
            if dirs.len() > 1 && dirs.len() != keys.len() {
                return Err(BadSort::CountMismatch {
                    keys: keys.len(),
                    dirs: dirs.len(),
                });
            }
            (keys, dirs)
        }
    };
    let keys = if keys.is_empty() {
        vec![SortKey::CreatedAt]
    } else {
        keys
    };
    let single = match dirs.as_slice() {
        [] => Some(SortDir::Desc),
        [one] => Some(*one),
        _ => None,
    };
    let sort = keys
        .iter()
        .enumerate()
        .map(|(position, key)| SortBy {
            key: *key,
            dir: single.unwrap_or_else(|| dirs[position]),
        })
        .collect();
    Ok((sort, single.unwrap_or(SortDir::Desc)))
}

/// A filter value Glance would refuse (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFilter {
    /// `op:` with an operator the filter does not take.
    #[error(
        "{operator:?} is not a filter operator here (names, ids, statuses and formats take eq: or in:, times take eq:, neq:, gt:, gte:, lt: or lte:)"
    )]
    UnknownOperator {
        /// The operator given.
        operator: String,
    },
    /// A time that is not ISO 8601.
    #[error("{value:?} is not an ISO 8601 time (for example 2026-11-28T10:00:00Z)")]
    BadTime {
        /// The value given.
        value: String,
    },
    /// Quotes in an `in:` list that do not pair up around whole items.
    #[error("invalid filter value {value:?}: {reason}")]
    BadQuotes {
        /// The list given.
        value: String,
        /// What is wrong (Glance's wording).
        reason: &'static str,
    },
}

/// Glance's `split_filter_op`: `op:value`, unless the whole text is an ISO
/// 8601 time (which contains `:` itself), which means `eq`.
fn split_operator(text: &str) -> (&str, &str) {
    match text.split_once(':') {
        Some(_) if parse_isotime(text).is_ok() => ("eq", text),
        Some((operator, value)) => (operator, value),
        None => ("eq", text),
    }
}

/// Glance's `split_filter_value_for_quotes` (with `validate_quotes`): items
/// separated by commas; an item may be double-quoted (then it may hold
/// commas, and `\"`); a quote must open right after a comma (or at the
/// start) and close right before one (or at the end).
fn split_quoted_list(value: &str) -> Result<Vec<String>, BadFilter> {
    let bad = |reason| BadFilter::BadQuotes {
        value: value.to_owned(),
        reason,
    };
    // 1. validate_quotes
    let bytes = value.as_bytes();
    let mut opening = true;
    for (i, byte) in bytes.iter().enumerate() {
        if *byte != b'"' || (i > 0 && bytes[i - 1] == b'\\') {
            continue;
        }
        if opening {
            if i > 0 && bytes[i - 1] != b',' {
                return Err(bad("there is no comma before opening quotation mark"));
            }
        } else if i + 1 != bytes.len() && bytes[i + 1] != b',' {
            return Err(bad("there is no comma after closing quotation mark"));
        }
        opening = !opening;
    }
    if !opening {
        return Err(bad("the quote is not closed"));
    }
    // 2. The same regular expression as Glance's `re.findall`.
    static ITEM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#""([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,"#)
            .expect("a constant regular expression")
    });
    Ok(ITEM
        .captures_iter(value)
        .map(|item| {
            item.get(1)
                .filter(|quoted| !quoted.as_str().is_empty())
                .or_else(|| item.get(2))
                .map_or_else(String::new, |found| found.as_str().to_owned())
        })
        .collect())
}

/// Parses an ISO 8601 time as oslo.utils' `parse_isotime` (the `iso8601`
/// library) does: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYYMMDD`, then
/// optionally `T` or a space, `hh[[:]mm[[:]ss[.fraction]]]` and `Z` or
/// `±hh[[:]mm]`; no zone means UTC. Fractions beyond microseconds are cut.
///
/// Fails on anything else, and on out-of-range fields.
pub fn parse_isotime(text: &str) -> Result<OffsetDateTime, BadFilter> {
    static ISO: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?P<year>[0-9]{4})",
            r"(?:(?:-(?P<monthdash>[0-9]{1,2})|(?P<month>[0-9]{2}))",
            r"(?:(?:-(?P<daydash>[0-9]{1,2})|(?P<day>[0-9]{2}))",
            r"(?:[ T](?P<hour>[0-9]{2})(?::?(?P<minute>[0-9]{2}))?",
            r"(?::?(?P<second>[0-9]{1,2})(?:[.,](?P<fraction>[0-9]+))?)?",
            r"(?P<zone>Z|(?P<sign>[-+])(?P<zhour>[0-9]{2}):?(?P<zminute>[0-9]{2})?)?",
            r")?)?)?$"
        ))
        .expect("a constant regular expression")
    });
    let bad = || BadFilter::BadTime {
        value: text.to_owned(),
    };
    let found = ISO.captures(text).ok_or_else(bad)?;
    let number = |name: &str| -> Option<u32> {
        found
            .name(name)
            .and_then(|value| value.as_str().parse().ok())
    };
    // iso8601 refuses YYYYMM without a day (it would read as a year and more).
    if found.name("month").is_some() && number("daydash").or(number("day")).is_none() {
        return Err(bad());
    }
    let year = found
        .name("year")
        .and_then(|value| value.as_str().parse::<i32>().ok())
        .ok_or_else(bad)?;
    let month = number("monthdash").or(number("month")).unwrap_or(1);
    let day = number("daydash").or(number("day")).unwrap_or(1);
    let month = u8::try_from(month)
        .ok()
        .and_then(|month| Month::try_from(month).ok())
        .ok_or_else(bad)?;
    let day = u8::try_from(day).map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let small = |name: &str| -> Result<u8, BadFilter> {
        u8::try_from(number(name).unwrap_or(0)).map_err(|_| bad())
    };
    let micros = match found.name("fraction") {
        Some(fraction) => {
            let digits: String = fraction.as_str().chars().take(6).collect();
            let scale = 10u32.pow(6 - u32::try_from(digits.len()).unwrap_or(6));
            digits.parse::<u32>().map_err(|_| bad())? * scale
        }
        None => 0,
    };
    let time = Time::from_hms_micro(small("hour")?, small("minute")?, small("second")?, micros)
        .map_err(|_| bad())?;
    let offset = match found.name("sign") {
        Some(sign) => {
            let hours = i8::try_from(number("zhour").unwrap_or(0)).map_err(|_| bad())?;
            let minutes = i8::try_from(number("zminute").unwrap_or(0)).map_err(|_| bad())?;
            let (hours, minutes) = if sign.as_str() == "-" {
                (-hours, -minutes)
            } else {
                (hours, minutes)
            };
            UtcOffset::from_hms(hours, minutes, 0).map_err(|_| bad())?
        }
        None => UtcOffset::UTC,
    };
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_are_glance_33s() {
        for (key, name) in SortKey::ALL {
            assert_eq!(name.parse::<SortKey>().unwrap(), *key);
            assert_eq!(key.as_str(), *name);
        }
        // Glance 33 refuses these (recorded: 400 "Invalid sort key").
        for refused in ["owner", "min_disk", "virtual_size", "visibility", "colour"] {
            assert!(matches!(refused.parse::<SortKey>(), Err(BadSort::Key(_))));
        }
        assert_eq!("asc".parse::<SortDir>().unwrap(), SortDir::Asc);
        assert!("up".parse::<SortDir>().is_err());
    }

    #[test]
    fn visibility_and_member_status_filters_parse() {
        assert_eq!(
            "all".parse::<VisibilityFilter>().unwrap(),
            VisibilityFilter::All
        );
        assert_eq!(
            "community".parse::<VisibilityFilter>().unwrap(),
            VisibilityFilter::Only(Visibility::Community)
        );
        assert!("bogus".parse::<VisibilityFilter>().is_err());
        assert_eq!(
            MemberStatusFilter::default(),
            MemberStatusFilter::Only(MemberStatus::Accepted)
        );
        assert_eq!(
            "all".parse::<MemberStatusFilter>().unwrap(),
            MemberStatusFilter::All
        );
        assert_eq!(
            "pending".parse::<MemberStatusFilter>().unwrap(),
            MemberStatusFilter::Only(MemberStatus::Pending)
        );
        assert!("bogus".parse::<MemberStatusFilter>().is_err());
    }

    #[test]
    fn both_sort_syntaxes_follow_glance() {
        let by = |key, dir| SortBy { key, dir };
        use SortDir::{Asc, Desc};
        assert_eq!(
            parse_sort(None, &[], &[]).unwrap(),
            (vec![by(SortKey::CreatedAt, Desc)], Desc)
        );
        // glanceclient's image-list.
        assert_eq!(
            parse_sort(None, &["name"], &["asc"]).unwrap(),
            (vec![by(SortKey::Name, Asc)], Asc)
        );
        // One direction for every key, and for the tie-breakers.
        assert_eq!(
            parse_sort(None, &["name", "size"], &["asc"]).unwrap(),
            (vec![by(SortKey::Name, Asc), by(SortKey::Size, Asc)], Asc)
        );
        assert_eq!(
            parse_sort(None, &["name", "size"], &["asc", "desc"]).unwrap(),
            (vec![by(SortKey::Name, Asc), by(SortKey::Size, Desc)], Desc)
        );
        assert_eq!(
            parse_sort(Some("name:asc"), &[], &[]).unwrap(),
            (vec![by(SortKey::Name, Asc)], Asc)
        );
        assert_eq!(
            parse_sort(Some("name:asc, created_at"), &[], &[]).unwrap(),
            (
                vec![by(SortKey::Name, Asc), by(SortKey::CreatedAt, Desc)],
                Desc
            )
        );
        // Recorded 400s.
        assert_eq!(
            parse_sort(Some("name:asc"), &["id"], &[]).unwrap_err(),
            BadSort::Combined
        );
        assert_eq!(
            parse_sort(None, &["name", "id"], &["asc", "desc", "asc"]).unwrap_err(),
            BadSort::CountMismatch { keys: 2, dirs: 3 }
        );
        assert!(matches!(
            parse_sort(None, &["owner"], &[]),
            Err(BadSort::Key(_))
        ));
        assert!(matches!(
            parse_sort(Some("name:up"), &[], &[]),
            Err(BadSort::Dir(_))
        ));
    }

    /// Each case as the real Glance 33 answered it (see the module header).
    #[test]
    fn attribute_filters_follow_glance() {
        let ok = |text: &str, items: &[&str]| {
            assert_eq!(
                AnyOf::parse(text).unwrap(),
                AnyOf(items.iter().map(|item| item.to_string()).collect()),
                "{text}"
            );
        };
        ok("queued", &["queued"]);
        ok("in:queued,active", &["queued", "active"]);
        ok("eq:a:b", &["a:b"]);
        ok(r#"in:s1,"a:b""#, &["s1", "a:b"]);
        ok(r#"in:"x,y",z"#, &["x,y", "z"]);
        ok(r#"in:"say \"hi\"""#, &[r#"say \"hi\""#]);
        ok("in:", &[]);
        ok("in:a,,b", &["a", "", "b"]);
        // A time with colons is a plain value, not an operator.
        ok("2026-11-28T10:00:00Z", &["2026-11-28T10:00:00Z"]);
        let refused = |text: &str| AnyOf::parse(text).unwrap_err();
        assert!(
            matches!(refused("a:b"), BadFilter::UnknownOperator { operator } if operator == "a")
        );
        assert!(matches!(
            refused("neq:queued"),
            BadFilter::UnknownOperator { .. }
        ));
        assert!(
            matches!(refused(r#"in:s1,"x"#), BadFilter::BadQuotes { reason, .. } if reason.contains("not closed"))
        );
        assert!(
            matches!(refused(r#"in:s1"x""#), BadFilter::BadQuotes { reason, .. } if reason.contains("before"))
        );
        assert!(
            matches!(refused(r#"in:"x"y"#), BadFilter::BadQuotes { reason, .. } if reason.contains("after"))
        );
    }

    #[test]
    fn time_filters_follow_glance() {
        let at = |text: &str| parse_isotime(text).unwrap();
        let utc = |text: &str| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
        };
        // The forms oslo.utils' parse_isotime accepted, recorded on Glance 33's venv.
        assert_eq!(at("2026-11-28"), utc("2026-11-28T00:00:00Z"));
        assert_eq!(at("2026-11-28T10:00"), utc("2026-11-28T10:00:00Z"));
        assert_eq!(at("2026-11-28T10:00:00"), utc("2026-11-28T10:00:00Z"));
        assert_eq!(at("2026-11-28 10:00:00"), utc("2026-11-28T10:00:00Z"));
        assert_eq!(
            at("2026-11-28T10:00:00.5+02:00"),
            utc("2026-11-28T08:00:00.5Z")
        );
        assert_eq!(at("2026-11-28T10:00:00+0200"), utc("2026-11-28T08:00:00Z"));
        assert_eq!(at("2026-11-28T10:00:00+02"), utc("2026-11-28T08:00:00Z"));
        assert_eq!(at("2026-11-28T10:00:00-00:30"), utc("2026-11-28T10:30:00Z"));
        assert_eq!(at("20261128T100000Z"), utc("2026-11-28T10:00:00Z"));
        assert_eq!(at("2026-11"), utc("2026-11-01T00:00:00Z"));
        assert_eq!(at("2026"), utc("2026-01-01T00:00:00Z"));
        assert_eq!(at("2026-11-28T10"), utc("2026-11-28T10:00:00Z"));
        assert_eq!(
            at("2026-11-28T10:00:00.123456789Z"),
            utc("2026-11-28T10:00:00.123456Z")
        );
        // ... and the ones it refused.
        for refused in [
            "2026-W48",
            "10:00",
            "2026-11-28T24:00:00Z",
            "2026-11-28t10:00:00z",
            "2026-11-28T10:00:00 +02:00",
            "202611",
            "2026-02-30",
            "bogus",
            "",
        ] {
            assert!(parse_isotime(refused).is_err(), "{refused}");
        }
        let filter: TimeFilter = "gte:2026-11-28".parse().unwrap();
        assert_eq!(
            filter,
            TimeFilter {
                op: Comparison::Gte,
                at: utc("2026-11-28T00:00:00Z")
            }
        );
        let bare: TimeFilter = "2026-11-28T10:00:00Z".parse().unwrap();
        assert_eq!(bare.op, Comparison::Eq);
        assert!(matches!(
            "foo:2026-11-28T00:00:00Z".parse::<TimeFilter>(),
            Err(BadFilter::UnknownOperator { .. })
        ));
        assert!(matches!(
            "gt:bogus".parse::<TimeFilter>(),
            Err(BadFilter::BadTime { .. })
        ));
    }
}
