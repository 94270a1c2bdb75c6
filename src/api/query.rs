//! `GET /v2/images` query strings: every parameter Glance 33 accepts, parsed
//! and checked with Glance's messages into [`ListParams`], then lowered to
//! the repository's [`ListQuery`].
//!
//! This module owns the query syntax (glance/api/v2/images.py
//! `RequestDeserializer.index`, glance/db/sqlalchemy/api.py
//! `_make_conditions_from_filters`, glance/common/utils.py operators). It
//! must not run the query, and it must not silently drop a filter the
//! repository cannot apply: [`ListParams::to_list_query`] refuses it by name
//! (a filter ignored would list images the caller asked to exclude).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::image;
use crate::image::{ContainerFormat, DiskFormat, ImageId, Properties, Status};
use crate::repo::{
    AnyOf, BadSort, Comparison, ListQuery, MemberStatusFilter, SortBy, SortDir, SortKey,
    VisibilityFilter, parse_sort,
};

use super::options::ServerOptions;

/// A parsed `GET /v2/images` query: every filter Glance knows, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    /// The query as sent (decoded pairs, in order): what the page's `first`
    /// and `next` links repeat ([`crate::wire::ImagesPage::new`]).
    pub pairs: Vec<(String, String)>,
    /// The page size: `limit`, else `limit_param_default`, capped at `api_limit_max`.
    pub limit: u32,
    /// Start after this image.
    pub marker: Option<ImageId>,
    /// Sort keys and directions, most significant first (never empty:
    /// Glance's default is `created_at` desc).
    pub sort: Vec<SortBy>,
    /// The direction of the tie-breakers the repository appends (Glance's
    /// one `sort_dir`, `desc` when the request gave none or several).
    pub tie_break_dir: SortDir,
    /// `member_status` (default `accepted`): which shared images of other
    /// projects are listed, by the caller's membership status.
    pub member_status: MemberStatus,
    /// `visibility`.
    pub visibility: Option<VisibilityFilter>,
    /// `os_hidden`; absent: Glance's default, hidden images excluded.
    pub os_hidden: Option<bool>,
    /// `protected`.
    pub protected: Option<bool>,
    /// `tag` (repeated): images carrying all of them.
    pub tags: Vec<String>,
    /// `id` (`eq:`/`in:` operators).
    pub id: Option<Match<String>>,
    /// `name` (`eq:`/`in:` operators).
    pub name: Option<Match<String>>,
    /// `status` (`eq:`/`in:` operators).
    pub status: Option<Match<Status>>,
    /// `disk_format` (`eq:`/`in:` operators).
    pub disk_format: Option<Match<DiskFormat>>,
    /// `container_format` (`eq:`/`in:` operators).
    pub container_format: Option<Match<ContainerFormat>>,
    /// Exact matches on other base columns (`owner`, `checksum`, `size`, ...).
    pub columns: Vec<(Column, String)>,
    /// `size_min`, `size_max`, `virtual_size_min`, ... (inclusive bounds).
    pub ranges: Vec<RangeFilter>,
    /// `created_at` / `updated_at` with an operator.
    pub times: Vec<TimeFilter>,
    /// Every other key: an additional property that must equal the value.
    pub properties: Properties,
}

/// An `eq:` or `in:` filter value (Glance's `split_filter_op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<T> {
    /// Exactly this value (`name=x` or `name=eq:x`).
    Eq(T),
    /// Any of these values (`name=in:a,"b,c"`).
    In(Vec<T>),
}

/// Glance's `member_status` list parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberStatus {
    /// Shared images the caller has not accepted or rejected yet.
    Pending,
    /// Shared images the caller accepted (Glance's default).
    #[default]
    Accepted,
    /// Shared images the caller rejected.
    Rejected,
    /// All shared images, whatever the caller's status.
    All,
}

/// Base columns Glance filters by plain equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `owner`
    Owner,
    /// `checksum`
    Checksum,
    /// `os_hash_algo`
    OsHashAlgo,
    /// `os_hash_value`
    OsHashValue,
    /// `size`
    Size,
    /// `virtual_size`
    VirtualSize,
    /// `min_disk`
    MinDisk,
    /// `min_ram`
    MinRam,
}

impl Column {
    const ALL: &'static [(Column, &'static str)] = &[
        (Column::Owner, "owner"),
        (Column::Checksum, "checksum"),
        (Column::OsHashAlgo, "os_hash_algo"),
        (Column::OsHashValue, "os_hash_value"),
        (Column::Size, "size"),
        (Column::VirtualSize, "virtual_size"),
        (Column::MinDisk, "min_disk"),
        (Column::MinRam, "min_ram"),
    ];

    fn parse(name: &str) -> Option<Column> {
        Column::ALL
            .iter()
            .find(|(_, text)| *text == name)
            .map(|(column, _)| *column)
    }

    /// Glance's name.
    pub fn as_str(self) -> &'static str {
        Column::ALL
            .iter()
            .find(|(column, _)| *column == self)
            .map_or("owner", |(_, text)| text)
    }

    /// Whether `<name>_min`/`<name>_max` make a range filter on it.
    fn is_numeric(self) -> bool {
        matches!(
            self,
            Column::Size | Column::VirtualSize | Column::MinDisk | Column::MinRam
        )
    }
}

/// `<column>_min=<n>` or `<column>_max=<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeFilter {
    /// A numeric column (size, virtual_size, min_disk, min_ram).
    pub column: Column,
    /// Lower (`_min`) or upper (`_max`) bound, inclusive.
    pub bound: Bound,
    /// The bound.
    pub value: i64,
}

/// Which end of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `_min`: value ≥ bound.
    Min,
    /// `_max`: value ≤ bound.
    Max,
}

/// `created_at=<op>:<ISO 8601>` or `updated_at=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFilter {
    /// Which timestamp.
    pub column: TimeColumn,
    /// The comparison.
    pub op: CompareOp,
    /// The threshold, normalized to UTC.
    pub at: OffsetDateTime,
}

/// The two filterable timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeColumn {
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
}

/// Glance's comparison operators (`evaluate_filter_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `eq` (also without an operator)
    Eq,
    /// `neq`
    Neq,
}

/// A list query Glance refuses (400), or one portcullis cannot run yet (501).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `limit` is not an integer.
    #[error("limit {value:?} is not an integer")]
    LimitNotInteger {
        /// The value.
        value: String,
    },
    /// `limit` is negative.
    #[error("limit {value} is negative")]
    LimitNegative {
        /// The value.
        value: i64,
    },
    /// `marker` is not an image id (Glance looks it up and finds nothing).
    #[error("marker {value:?} is not an image id")]
    Marker {
        /// The value.
        value: String,
    },
    /// A sort key Glance does not sort by.
    #[error(
        "{key:?} is not a sort key (name, status, container_format, disk_format, size, id, created_at, updated_at)"
    )]
    SortKey {
        /// The key.
        key: String,
    },
    /// A sort direction other than asc/desc.
    #[error("{dir:?} is not a sort direction (asc or desc)")]
    SortDir {
        /// The direction.
        dir: String,
    },
    /// `sort=` together with `sort_key`/`sort_dir`.
    #[error("sort cannot be combined with sort_key or sort_dir")]
    SortSyntaxMixed,
    /// Several `sort_dir` values, but not one per `sort_key`.
    #[error("{dirs} sort_dir values for {keys} sort_key values (give one, or one per key)")]
    SortDirCount {
        /// Number of keys.
        keys: usize,
        /// Number of directions.
        dirs: usize,
    },
    /// `visibility` outside Glance's set.
    #[error("visibility {value:?} is not one of community, public, private, shared, all")]
    Visibility {
        /// The value.
        value: String,
    },
    /// `member_status` outside Glance's set.
    #[error("member_status {value:?} is not one of pending, accepted, rejected, all")]
    MemberStatus {
        /// The value.
        value: String,
    },
    /// `os_hidden` or `protected` is not true/false.
    #[error("{key} {value:?} is not true or false")]
    Boolean {
        /// The parameter.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// A `_min`/`_max` bound that is not an integer.
    #[error("{key} {value:?} is not an integer")]
    RangeValue {
        /// The parameter.
        key: String,
        /// The value.
        value: String,
    },
    /// `created_at`/`updated_at` with a time that is not ISO 8601.
    #[error("{key} {value:?} is not an ISO 8601 time (for example gte:2026-01-31T00:00:00Z)")]
    Timestamp {
        /// The parameter.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// `created_at`/`updated_at` with an unknown operator.
    #[error("{key}: {op:?} is not an operator (gt, gte, lt, lte, eq, neq)")]
    TimeOperator {
        /// The parameter.
        key: &'static str,
        /// The operator.
        op: String,
    },
    /// `name`, `id`, `status`, ... with an operator other than eq/in.
    #[error(
        "{key}: {op:?} is not an operator (eq or in); write eq:{op}:... to match a value containing ':'"
    )]
    Operator {
        /// The parameter.
        key: &'static str,
        /// The operator.
        op: String,
    },
    /// An `in:` list with misplaced or unclosed quotes.
    #[error("{key} value {value:?}: {problem}")]
    Quotes {
        /// The parameter.
        key: &'static str,
        /// The whole list.
        value: String,
        /// What is wrong.
        problem: QuoteProblem,
    },
    /// `status`, `disk_format` or `container_format` outside Glance's set
    /// (Glance answers an empty list; portcullis names the valid values).
    #[error("{key} {value:?} is not one of {expected}")]
    Enum {
        /// The parameter.
        key: &'static str,
        /// The value.
        value: String,
        /// The valid values, comma separated.
        expected: String,
    },
    /// `changes-since`, which v2 dropped.
    #[error("the changes-since filter does not exist in image API v2 (use updated_at=gt:<time>)")]
    ChangesSince,
    /// A valid Glance filter the repository cannot apply yet (501).
    #[error("filtering images by {filter} is not supported by this server yet")]
    Unsupported {
        /// The filter as written (`size_min`, `status=in:`, ...).
        filter: String,
    },
}

/// What is wrong with the quotes of an `in:` list (Glance's `validate_quotes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuoteProblem {
    /// `a"b"`.
    #[error("no comma before an opening quotation mark")]
    NoCommaBefore,
    /// `"a"b`.
    #[error("no comma after a closing quotation mark")]
    NoCommaAfter,
    /// `"a`.
    #[error("a quotation mark is not closed")]
    NotClosed,
}

impl QueryError {
    /// Whether Glance itself would run this query (the repository cannot yet).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, QueryError::Unsupported { .. })
    }

    /// Glance's message for this error, as its API returns it.
    pub fn glance_message(&self) -> String {
        match self {
            QueryError::LimitNotInteger { .. } => "limit param must be an integer".to_owned(),
            QueryError::LimitNegative { .. } => "limit param must be positive".to_owned(),
            QueryError::Marker { value } => format!("No image found with ID {value}"),
            QueryError::SortKey { key } => format!(
                "Invalid sort key: {key}. It must be one of the following: {}.",
                SortKey::ALL
                    .iter()
                    .map(|(_, name)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            QueryError::SortDir { dir } => format!("Invalid sort direction: {dir}"),
            QueryError::SortSyntaxMixed => {
                "Old and new sorting syntax cannot be combined".to_owned()
            }
            QueryError::SortDirCount { .. } => {
                "Number of sort dirs does not match the number of sort keys".to_owned()
            }
            QueryError::Visibility { value } => format!("Invalid visibility value: {value}"),
            QueryError::MemberStatus { value } => format!("Invalid status: {value}"),
            QueryError::Boolean { key, value } => format!(
                "Invalid value '{value}' for '{key}' filter. Valid values are 'true' or 'false'."
            ),
            QueryError::RangeValue { .. } => {
                "Unable to filter on a range with a non-numeric value.".to_owned()
            }
            QueryError::Timestamp { key, .. } => {
                format!("Bad \"{key}\" query filter format. Use ISO 8601 DateTime notation.")
            }
            QueryError::TimeOperator { .. } => "Unable to filter on a unknown operator.".to_owned(),
            QueryError::Operator { op, .. } => {
                format!("Unable to filter by unknown operator '{op}'.")
            }
            QueryError::Quotes { value, problem, .. } => match problem {
                QuoteProblem::NoCommaBefore => format!(
                    "Invalid filter value {value}. There is no comma before opening quotation mark."
                ),
                QuoteProblem::NoCommaAfter => format!(
                    "Invalid filter value {value}. There is no comma after closing quotation mark."
                ),
                QuoteProblem::NotClosed => {
                    format!("Invalid filter value {value}. The quote is not closed.")
                }
            },
            QueryError::Enum {
                key,
                value,
                expected,
            } => format!(
                "Invalid {key} value: {value}. It must be one of the following: {expected}."
            ),
            QueryError::ChangesSince => {
                "The \"changes-since\" filter is no longer available on v2.".to_owned()
            }
            QueryError::Unsupported { filter } => {
                format!("Filtering images by {filter} is not supported by this server yet.")
            }
        }
    }
}

impl ListParams {
    /// Parses the raw query string of a `GET /v2/images` request (`None`:
    /// no query), with the page limits of `options`.
    ///
    /// As Glance, a parameter given twice takes its last value, except `tag`,
    /// `sort_key` and `sort_dir`, which repeat.
    ///
    /// Fails with Glance's 400 for every value Glance refuses.
    pub fn parse(query: Option<&str>, options: &ServerOptions) -> Result<ListParams, QueryError> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
        let mut params = ListParams {
            pairs: Vec::new(),
            limit: options.limit_param_default.min(options.api_limit_max),
            marker: None,
            sort: Vec::new(),
            tie_break_dir: SortDir::Desc,
            member_status: MemberStatus::Accepted,
            visibility: None,
            os_hidden: None,
            protected: None,
            tags: Vec::new(),
            id: None,
            name: None,
            status: None,
            disk_format: None,
            container_format: None,
            columns: Vec::new(),
            ranges: Vec::new(),
            times: Vec::new(),
            properties: Properties::new(),
        };
        let mut sort_keys = Vec::new();
        let mut sort_dirs = Vec::new();
        let mut sort_new = None;
        // The last value of each single-valued key wins (Glance's dict()).
        let mut last: Vec<(&str, &str)> = Vec::new();
        for (key, value) in &pairs {
            match key.as_str() {
                "tag" => params.tags.push(value.trim().to_owned()),
                "sort_key" => sort_keys.push(value.trim().to_owned()),
                "sort_dir" => sort_dirs.push(value.trim().to_owned()),
                "sort" => sort_new = Some(value.as_str()),
                _ => match last.iter_mut().find(|(seen, _)| *seen == key) {
                    Some(entry) => entry.1 = value,
                    None => last.push((key, value)),
                },
            }
        }
        for (key, value) in last {
            params.take(key, value, options)?;
        }
        (params.sort, params.tie_break_dir) = sorting(sort_new, &sort_keys, &sort_dirs)?;
        params.pairs = pairs;
        Ok(params)
    }

    fn take(&mut self, key: &str, value: &str, options: &ServerOptions) -> Result<(), QueryError> {
        match key {
            "limit" => {
                let limit = parse_int(value).ok_or_else(|| QueryError::LimitNotInteger {
                    value: value.to_owned(),
                })?;
                if limit < 0 {
                    return Err(QueryError::LimitNegative { value: limit });
                }
                let cap = i64::from(options.api_limit_max);
                self.limit = u32::try_from(limit.min(cap)).unwrap_or(options.api_limit_max);
            }
            "marker" => {
                self.marker = Some(value.parse().map_err(|_| QueryError::Marker {
                    value: value.to_owned(),
                })?);
            }
            "member_status" => {
                self.member_status = match value {
                    "pending" => MemberStatus::Pending,
                    "accepted" => MemberStatus::Accepted,
                    "rejected" => MemberStatus::Rejected,
                    "all" => MemberStatus::All,
                    other => {
                        return Err(QueryError::MemberStatus {
                            value: other.to_owned(),
                        });
                    }
                };
            }
            "visibility" => {
                self.visibility = Some(value.parse().map_err(|_| QueryError::Visibility {
                    value: value.to_owned(),
                })?);
            }
            "os_hidden" => {
                // Glance lower-cases os_hidden (but not protected).
                self.os_hidden = Some(match value.to_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(QueryError::Boolean {
                            key: "os_hidden",
                            value: value.to_lowercase(),
                        });
                    }
                });
            }
            "protected" => {
                self.protected = Some(match value {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(QueryError::Boolean {
                            key: "protected",
                            value: other.to_owned(),
                        });
                    }
                });
            }
            "changes-since" => return Err(QueryError::ChangesSince),
            // Glance forces deleted=false whatever the query says.
            "deleted" => {}
            "id" => self.id = Some(matching("id", value, |text| Ok(text.to_owned()))?),
            "name" => self.name = Some(matching("name", value, |text| Ok(text.to_owned()))?),
            "status" => self.status = Some(matching("status", value, closed_set("status"))?),
            "disk_format" => {
                self.disk_format = Some(matching("disk_format", value, closed_set("disk_format"))?);
            }
            "container_format" => {
                self.container_format = Some(matching(
                    "container_format",
                    value,
                    closed_set("container_format"),
                )?);
            }
            "created_at" => self.times.push(time_filter(TimeColumn::CreatedAt, value)?),
            "updated_at" => self.times.push(time_filter(TimeColumn::UpdatedAt, value)?),
            other => {
                let range = other
                    .strip_suffix("_min")
                    .map(|column| (column, Bound::Min))
                    .or_else(|| {
                        other
                            .strip_suffix("_max")
                            .map(|column| (column, Bound::Max))
                    })
                    .and_then(|(column, bound)| Some((Column::parse(column)?, bound)))
                    .filter(|(column, _)| column.is_numeric());
                if let Some((column, bound)) = range {
                    let bound_value = parse_int(value).ok_or_else(|| QueryError::RangeValue {
                        key: other.to_owned(),
                        value: value.to_owned(),
                    })?;
                    self.ranges.push(RangeFilter {
                        column,
                        bound,
                        value: bound_value,
                    });
                } else if let Some(column) = Column::parse(other) {
                    self.columns.push((column, value.to_owned()));
                } else {
                    // Glance makes any other `<x>_min`/`_max` a range on a column
                    // that does not exist (500); here it is a property like any other.
                    self.properties.insert(other.to_owned(), value.to_owned());
                }
            }
        }
        Ok(())
    }

    /// The repository query for these parameters: the seam between Glance's
    /// query language and what [`ListQuery`] can express.
    ///
    /// Fails with [`QueryError::Unsupported`] naming the first filter the
    /// repository cannot apply (`os_hash_algo`, `virtual_size`, `min_disk`,
    /// `min_ram`, as exact matches or ranges): refused by name rather than
    /// dropped, since a filter ignored would list images the caller asked
    /// to exclude.
    pub fn to_list_query(&self) -> Result<ListQuery, QueryError> {
        let unsupported = |filter: &str| QueryError::Unsupported {
            filter: filter.to_owned(),
        };
        let mut query = ListQuery {
            id: any_of(self.id.as_ref()),
            name: any_of(self.name.as_ref()),
            status: any_of(self.status.as_ref()),
            disk_format: any_of(self.disk_format.as_ref()),
            container_format: any_of(self.container_format.as_ref()),
            visibility: self.visibility,
            member_status: match self.member_status {
                MemberStatus::Pending => MemberStatusFilter::Only(image::MemberStatus::Pending),
                MemberStatus::Accepted => MemberStatusFilter::Only(image::MemberStatus::Accepted),
                MemberStatus::Rejected => MemberStatusFilter::Only(image::MemberStatus::Rejected),
                MemberStatus::All => MemberStatusFilter::All,
            },
            tags: self.tags.clone(),
            os_hidden: self.os_hidden,
            protected: self.protected,
            properties: self.properties.clone(),
            limit: Some(self.limit),
            marker: self.marker,
            sort: self.sort.clone(),
            tie_break_dir: self.tie_break_dir,
            ..ListQuery::default()
        };
        // Glance compares `size` as text against an integer column: a value
        // that is not an integer, or a bound no size can meet, matches nothing.
        let mut matches_nothing = false;
        for (column, value) in &self.columns {
            match column {
                Column::Owner => query.owner = Some(value.clone()),
                Column::Checksum => query.checksum = Some(value.clone()),
                Column::OsHashValue => query.os_hash_value = Some(value.clone()),
                Column::Size => match parse_int(value).and_then(|size| u64::try_from(size).ok()) {
                    Some(size) => {
                        query.size_min = Some(size);
                        query.size_max = Some(size);
                    }
                    None => matches_nothing = true,
                },
                Column::OsHashAlgo | Column::VirtualSize | Column::MinDisk | Column::MinRam => {
                    return Err(unsupported(column.as_str()));
                }
            }
        }
        for range in &self.ranges {
            let suffix = match range.bound {
                Bound::Min => "_min",
                Bound::Max => "_max",
            };
            match range.column {
                Column::Size => {
                    let bound = u64::try_from(range.value).ok();
                    match range.bound {
                        Bound::Min => query.size_min = bound.or(Some(0)),
                        Bound::Max => match bound {
                            Some(bound) => query.size_max = Some(bound),
                            None => matches_nothing = true,
                        },
                    }
                }
                Column::Owner
                | Column::Checksum
                | Column::OsHashAlgo
                | Column::OsHashValue
                | Column::VirtualSize
                | Column::MinDisk
                | Column::MinRam => {
                    return Err(unsupported(&format!("{}{suffix}", range.column.as_str())));
                }
            }
        }
        for time in &self.times {
            let filter = crate::repo::TimeFilter {
                op: match time.op {
                    CompareOp::Gt => Comparison::Gt,
                    CompareOp::Gte => Comparison::Gte,
                    CompareOp::Lt => Comparison::Lt,
                    CompareOp::Lte => Comparison::Lte,
                    CompareOp::Eq => Comparison::Eq,
                    CompareOp::Neq => Comparison::Neq,
                },
                at: time.at,
            };
            match time.column {
                TimeColumn::CreatedAt => query.created_at = Some(filter),
                TimeColumn::UpdatedAt => query.updated_at = Some(filter),
            }
        }
        if matches_nothing {
            query.match_nothing();
        }
        Ok(query)
    }
}

/// An `eq:`/`in:` filter as the repository's [`AnyOf`], compared as text.
fn any_of<T: std::fmt::Display>(filter: Option<&Match<T>>) -> Option<AnyOf> {
    filter.map(|filter| match filter {
        Match::Eq(value) => AnyOf::one(value.to_string()),
        Match::In(values) => AnyOf(values.iter().map(ToString::to_string).collect()),
    })
}

/// Python's `int()` on a query value: surrounding whitespace and a sign
/// are fine, and digits beyond `i64` saturate (Python's ints are unbounded,
/// and every use caps or compares them).
fn parse_int(value: &str) -> Option<i64> {
    let trimmed = value.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<i64>() {
        Ok(number) if negative => -number,
        Ok(number) => number,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

/// Glance's sorting parameters (`_get_sorting_params`), lowered to
/// repository sort keys.
fn sorting(
    sort: Option<&str>,
    keys: &[String],
    dirs: &[String],
) -> Result<(Vec<SortBy>, SortDir), QueryError> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    // The repository's parser is Glance's (the same validation order:
    // every key and direction before the count); only the messages are
    // the API's.
    parse_sort(sort, &keys, &dirs).map_err(|err| match err {
        BadSort::Key(key) => QueryError::SortKey { key },
        BadSort::Dir(dir) => QueryError::SortDir { dir },
        BadSort::Combined => QueryError::SortSyntaxMixed,
        BadSort::CountMismatch { keys, dirs } => QueryError::SortDirCount { keys, dirs },
    })
}

/// A parser for one of Glance's closed sets, with Glance's set in the error.
fn closed_set<T>(key: &'static str) -> impl Fn(&str) -> Result<T, QueryError>
where
    T: std::str::FromStr<Err = crate::image::UnknownName>,
{
    move |text| {
        text.parse()
            .map_err(|err: crate::image::UnknownName| QueryError::Enum {
                key,
                value: text.to_owned(),
                expected: err.expected,
            })
    }
}

/// Glance's `split_filter_op` for `name`, `id`, `status`, `disk_format`,
/// `container_format`: `in:a,"b,c"`, `eq:x`, or a plain value. A value that
/// is an ISO 8601 time is taken whole even though it contains `:`.
fn matching<T>(
    key: &'static str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, QueryError>,
) -> Result<Match<T>, QueryError> {
    let (op, threshold) = split_filter_op(value);
    match op {
        "eq" => Ok(Match::Eq(parse(threshold)?)),
        "in" => split_quoted_list(key, threshold)?
            .iter()
            .map(|item| parse(item))
            .collect::<Result<Vec<T>, QueryError>>()
            .map(Match::In),
        other => Err(QueryError::Operator {
            key,
            op: other.to_owned(),
        }),
    }
}

fn split_filter_op(expression: &str) -> (&str, &str) {
    match expression.split_once(':') {
        Some(_) if parse_iso8601(expression).is_some() => ("eq", expression),
        Some((op, threshold)) => (op, threshold),
        None => ("eq", expression),
    }
}

/// Glance's `validate_quotes` + `split_filter_value_for_quotes`.
fn split_quoted_list(key: &'static str, value: &str) -> Result<Vec<String>, QueryError> {
    let problem = |problem| QueryError::Quotes {
        key,
        value: value.to_owned(),
        problem,
    };
    let bytes = value.as_bytes();
    let mut open = true;
    for (index, byte) in bytes.iter().enumerate() {
        if *byte != b'"' || (index > 0 && bytes[index - 1] == b'\\') {
            continue;
        }
        if open {
            if index > 0 && bytes[index - 1] != b',' {
                return Err(problem(QuoteProblem::NoCommaBefore));
            }
        } else if index + 1 != bytes.len() && bytes[index + 1] != b',' {
            return Err(problem(QuoteProblem::NoCommaAfter));
        }
        open = !open;
    }
    if !open {
        return Err(problem(QuoteProblem::NotClosed));
    }
    // The regex alternatives in order: a quoted item (backslash escapes kept
    // as written) with an optional comma, an unquoted run with an optional
    // comma, or a lone comma (an empty item).
    let mut items = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (index, character) in quoted.char_indices() {
                if escaped {
                    escaped = false;
                } else if character == '\\' {
                    escaped = true;
                } else if character == '"' {
                    end = Some(index);
                    break;
                }
            }
            let end = end.ok_or_else(|| problem(QuoteProblem::NotClosed))?;
            items.push(quoted[..end].to_owned());
            rest = &quoted[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        } else if let Some(after) = rest.strip_prefix(',') {
            items.push(String::new());
            rest = after;
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            items.push(rest[..end].to_owned());
            rest = &rest[end..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    Ok(items)
}

fn time_filter(column: TimeColumn, value: &str) -> Result<TimeFilter, QueryError> {
    let key = match column {
        TimeColumn::CreatedAt => "created_at",
        TimeColumn::UpdatedAt => "updated_at",
    };
    let (op, threshold) = split_filter_op(value);
    let at = parse_iso8601(threshold).ok_or_else(|| QueryError::Timestamp {
        key,
        value: value.to_owned(),
    })?;
    let op = match op {
        "gt" => CompareOp::Gt,
        "gte" => CompareOp::Gte,
        "lt" => CompareOp::Lt,
        "lte" => CompareOp::Lte,
        "eq" => CompareOp::Eq,
        "neq" => CompareOp::Neq,
        other => {
            return Err(QueryError::TimeOperator {
                key,
                op: other.to_owned(),
            });
        }
    };
    Ok(TimeFilter { column, op, at })
}

/// The ISO 8601 forms oslo's `parse_isotime` takes in practice:
/// `YYYY-MM-DD`, optionally `THH:MM[:SS[.fraction]]` (`T`, `t` or a space),
/// optionally `Z` or `±HH[:MM]` / `±HHMM`; no zone means UTC. The result is
/// in UTC.
pub(crate) fn parse_iso8601(text: &str) -> Option<OffsetDateTime> {
    fn number(text: &str) -> Option<u32> {
        (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    }
    let date_part = text.get(..10)?;
    let mut fields = date_part.split('-');
    let (year, month, day) = (fields.next()?, fields.next()?, fields.next()?);
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let date = Date::from_calendar_date(
        i32::try_from(number(year)?).ok()?,
        Month::try_from(u8::try_from(number(month)?).ok()?).ok()?,
        u8::try_from(number(day)?).ok()?,
    )
    .ok()?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = clock.split(':');
    let hour = parts
        .next()
        .filter(|part| part.len() == 2)
        .and_then(number)?;
    let minute = parts
        .next()
        .filter(|part| part.len() == 2)
        .and_then(number)?;
    let second = match parts.next() {
        Some(part) if part.len() == 2 => number(part)?,
        Some(_) => return None,
        None if fraction.is_empty() => 0,
        None => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits = fraction.get(..fraction.len().min(9))?;
        number(fraction)?;
        number(&format!("{digits:0<9}"))?
    };
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let offset = match zone {
        "" | "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = if zone.starts_with('-') { -1 } else { 1 };
            let body = &zone[1..];
            if !body.is_ascii() {
                return None;
            }
            let (hours, minutes) = match body.len() {
                2 => (body, "00"),
                4 => (&body[..2], &body[2..]),
                5 if body.as_bytes()[2] == b':' => (&body[..2], &body[3..]),
                _ => return None,
            };
            UtcOffset::from_hms(
                sign * i8::try_from(number(hours)?).ok()?,
                sign * i8::try_from(number(minutes)?).ok()?,
                0,
            )
            .ok()?
        }
    };
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn parse(query: &str) -> Result<ListParams, QueryError> {
        ListParams::parse(Some(query), &ServerOptions::default())
    }

    fn message(query: &str) -> String {
        parse(query).unwrap_err().glance_message()
    }

    /// Each message was recorded from real Glance 33 with the same query.
    #[test]
    fn glance_messages_for_bad_values() {
        let cases = [
            ("limit=abc", "limit param must be an integer"),
            ("limit=", "limit param must be an integer"),
            ("limit=1.5", "limit param must be an integer"),
            ("limit=-1", "limit param must be positive"),
            ("marker=abc", "No image found with ID abc"),
            ("marker=", "No image found with ID "),
            (
                "sort_key=foo",
                "Invalid sort key: foo. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
            ),
            (
                "sort_key=",
                "Invalid sort key: . It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
            ),
            (
                "sort=",
                "Invalid sort key: . It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
            ),
            ("sort_dir=up", "Invalid sort direction: up"),
            ("sort=name:up", "Invalid sort direction: up"),
            (
                "sort=name,foo",
                "Invalid sort key: foo. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
            ),
            (
                "sort=name&sort_key=name",
                "Old and new sorting syntax cannot be combined",
            ),
            (
                "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc",
                "Number of sort dirs does not match the number of sort keys",
            ),
            ("visibility=foo", "Invalid visibility value: foo"),
            ("member_status=foo", "Invalid status: foo"),
            (
                "os_hidden=yes",
                "Invalid value 'yes' for 'os_hidden' filter. Valid values are 'true' or 'false'.",
            ),
            (
                "protected=yes",
                "Invalid value 'yes' for 'protected' filter. Valid values are 'true' or 'false'.",
            ),
            (
                "size_min=abc",
                "Unable to filter on a range with a non-numeric value.",
            ),
            (
                "size_max=1.5",
                "Unable to filter on a range with a non-numeric value.",
            ),
            (
                "created_at=gt:abc",
                "Bad \"created_at\" query filter format. Use ISO 8601 DateTime notation.",
            ),
            (
                "updated_at=lte:2030-01-01T00:00:00+02:00",
                "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation.",
            ),
            (
                "created_at=foo:2020-01-01T00:00:00Z",
                "Unable to filter on a unknown operator.",
            ),
            (
                "name=in:a,\"b",
                "Invalid filter value a,\"b. The quote is not closed.",
            ),
            (
                "name=in:a\"b\"",
                "Invalid filter value a\"b\". There is no comma before opening quotation mark.",
            ),
            (
                "name=in:\"a\"b",
                "Invalid filter value \"a\"b. There is no comma after closing quotation mark.",
            ),
            (
                "name=foo:bar",
                "Unable to filter by unknown operator 'foo'.",
            ),
            (
                "changes-since=2020",
                "The \"changes-since\" filter is no longer available on v2.",
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(message(query), expected, "{query}");
        }
    }

    #[test]
    fn glances_defaults() {
        let params = parse("").unwrap();
        assert_eq!(params.limit, 25);
        assert_eq!(
            params.sort,
            vec![SortBy {
                key: SortKey::CreatedAt,
                dir: SortDir::Desc
            }]
        );
        assert_eq!(params.member_status, MemberStatus::Accepted);
        let query = params.to_list_query().unwrap();
        assert_eq!(query.limit, Some(25));
        assert_eq!(query.os_hidden, None);
        assert_eq!(
            ListParams::parse(None, &ServerOptions::default())
                .unwrap()
                .limit,
            25
        );
    }

    #[test]
    fn limit_is_capped_at_api_limit_max() {
        assert_eq!(parse("limit=5000").unwrap().limit, 1000);
        assert_eq!(parse("limit=0").unwrap().limit, 0);
        assert_eq!(parse("limit= 7 ").unwrap().limit, 7);
        assert_eq!(parse("limit=99999999999999999999").unwrap().limit, 1000);
        let options = ServerOptions {
            limit_param_default: 5,
            api_limit_max: 3,
            ..ServerOptions::default()
        };
        assert_eq!(ListParams::parse(None, &options).unwrap().limit, 3);
    }

    #[test]
    fn glanceclient_and_osc_queries() {
        // glance image-list --property-filter os_distro=cirros --tag t1 --visibility shared
        let params =
            parse("visibility=shared&os_distro=cirros&limit=200&tag=t1&sort_key=name&sort_dir=asc")
                .unwrap();
        let query = params.to_list_query().unwrap();
        assert_eq!(
            query.visibility,
            Some(VisibilityFilter::Only(crate::image::Visibility::Shared))
        );
        assert_eq!(
            query.properties.get("os_distro").map(String::as_str),
            Some("cirros")
        );
        assert_eq!(query.tags, vec!["t1".to_owned()]);
        assert_eq!(query.limit, Some(200));
        assert_eq!(
            query.sort,
            vec![SortBy {
                key: SortKey::Name,
                dir: SortDir::Asc
            }]
        );
        assert_eq!(
            params.pairs[0],
            ("visibility".to_owned(), "shared".to_owned())
        );
        // openstack image list --limit 1 --status active
        let query = parse("limit=1&status=active")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(query.status, Some(AnyOf::one("active")));
        let marker = "6f1b3c2e-9d5a-4c47-8f0e-2b7d1a9c3e55";
        let query = parse(&format!("limit=1&marker={marker}"))
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(
            query.marker.map(|id| id.to_string()).as_deref(),
            Some(marker)
        );
    }

    #[test]
    fn sort_forms() {
        let sort = |query: &str| parse(query).unwrap().sort;
        let by = |key, dir| SortBy { key, dir };
        assert_eq!(
            sort("sort=name:asc,size"),
            vec![
                by(SortKey::Name, SortDir::Asc),
                by(SortKey::Size, SortDir::Desc)
            ]
        );
        assert_eq!(
            sort("sort_key=name&sort_key=size&sort_dir=asc"),
            vec![
                by(SortKey::Name, SortDir::Asc),
                by(SortKey::Size, SortDir::Asc)
            ]
        );
        assert_eq!(
            sort("sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc"),
            vec![
                by(SortKey::Name, SortDir::Asc),
                by(SortKey::Size, SortDir::Desc)
            ]
        );
        assert_eq!(
            sort("sort_dir=asc"),
            vec![by(SortKey::CreatedAt, SortDir::Asc)]
        );
        // The repository sorts by more keys than Glance's API accepts.
        assert!(matches!(
            parse("sort_key=owner").unwrap_err(),
            QueryError::SortKey { .. }
        ));
    }

    #[test]
    fn operators_and_lists() {
        let params = parse("name=in:t1,\"t,2\",,x&status=eq:active&id=in:a").unwrap();
        assert_eq!(
            params.name,
            Some(Match::In(vec![
                "t1".into(),
                "t,2".into(),
                String::new(),
                "x".into()
            ]))
        );
        assert_eq!(params.status, Some(Match::Eq(Status::Active)));
        assert_eq!(
            parse("name=eq:a:b").unwrap().name,
            Some(Match::Eq("a:b".into()))
        );
        // A time-looking name is taken whole, as Glance's split_filter_op does.
        assert_eq!(
            parse("name=2020-01-01T10:00:00").unwrap().name,
            Some(Match::Eq("2020-01-01T10:00:00".into()))
        );
        let query = parse("status=in:queued,active&name=eq:x")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(
            (query.status, query.name),
            (
                Some(AnyOf(vec!["queued".into(), "active".into()])),
                Some(AnyOf::one("x"))
            )
        );
    }

    #[test]
    fn closed_sets_are_named() {
        let err = parse("status=bogus").unwrap_err();
        assert_eq!(
            err.glance_message(),
            "Invalid status value: bogus. It must be one of the following: queued, saving, active, killed, deleted, uploading, importing, pending_delete, deactivated."
        );
        assert!(matches!(
            parse("disk_format=qcow3").unwrap_err(),
            QueryError::Enum {
                key: "disk_format",
                ..
            }
        ));
        assert!(matches!(
            parse("container_format=in:bare,box").unwrap_err(),
            QueryError::Enum { .. }
        ));
    }

    #[test]
    fn typed_filters_the_repository_cannot_run_are_refused_by_name() {
        let cases = [
            ("virtual_size_max=10", "virtual_size_max"),
            ("min_disk=1", "min_disk"),
            ("min_ram_min=1", "min_ram_min"),
            ("os_hash_algo=sha512", "os_hash_algo"),
        ];
        for (query, filter) in cases {
            let err = parse(query).unwrap().to_list_query().unwrap_err();
            assert_eq!(
                err,
                QueryError::Unsupported {
                    filter: filter.to_owned()
                },
                "{query}"
            );
        }
        let params =
            parse("size_min=10&created_at=lt:2026-01-02T03:04:05%2B01:00&member_status=pending")
                .unwrap();
        assert_eq!(
            params.ranges,
            vec![RangeFilter {
                column: Column::Size,
                bound: Bound::Min,
                value: 10
            }]
        );
        assert_eq!(
            params.times,
            vec![TimeFilter {
                column: TimeColumn::CreatedAt,
                op: CompareOp::Lt,
                at: datetime!(2026-01-02 02:04:05 UTC)
            }]
        );
        assert_eq!(params.member_status, MemberStatus::Pending);
        let query = params.to_list_query().unwrap();
        assert_eq!((query.size_min, query.size_max), (Some(10), None));
        assert_eq!(
            query.created_at,
            Some(crate::repo::TimeFilter {
                op: Comparison::Lt,
                at: datetime!(2026-01-02 02:04:05 UTC)
            })
        );
        assert_eq!(
            query.member_status,
            MemberStatusFilter::Only(image::MemberStatus::Pending)
        );
        // `size` is exact; a size no image can have matches nothing.
        let exact = parse("size=5&protected=true")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(
            (exact.size_min, exact.size_max, exact.protected),
            (Some(5), Some(5), Some(true))
        );
        let none = parse("size_max=-1").unwrap().to_list_query().unwrap();
        assert_eq!(none.id, Some(AnyOf(Vec::new())));
        // One sort direction given: the tie-breakers follow it.
        let sorted = parse("sort_key=name&sort_dir=asc")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(sorted.tie_break_dir, SortDir::Asc);
        let sorted = parse("sort=name:asc,size:desc")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(sorted.tie_break_dir, SortDir::Desc);
    }

    #[test]
    fn other_keys_are_property_filters_and_the_last_value_wins() {
        let query = parse("os_distro=a&os_distro=b&build_min=3&owner=p1&deleted=true")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(
            query.properties.get("os_distro").map(String::as_str),
            Some("b")
        );
        assert_eq!(
            query.properties.get("build_min").map(String::as_str),
            Some("3")
        );
        assert!(!query.properties.contains_key("deleted"));
        assert_eq!(query.owner.as_deref(), Some("p1"));
        let query = parse("tag=a&tag=%20b%20&os_hidden=TRUE")
            .unwrap()
            .to_list_query()
            .unwrap();
        assert_eq!(query.tags, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(query.os_hidden, Some(true));
    }

    #[test]
    fn iso8601_forms() {
        let at = |text| parse_iso8601(text);
        assert_eq!(at("2026-01-02"), Some(datetime!(2026-01-02 00:00 UTC)));
        assert_eq!(
            at("2026-01-02T03:04:05Z"),
            Some(datetime!(2026-01-02 03:04:05 UTC))
        );
        assert_eq!(
            at("2026-01-02T03:04"),
            Some(datetime!(2026-01-02 03:04 UTC))
        );
        assert_eq!(
            at("2026-01-02 03:04:05.5-0130"),
            Some(datetime!(2026-01-02 04:34:05.5 UTC))
        );
        assert_eq!(
            at("2026-01-02T03:04:05+02"),
            Some(datetime!(2026-01-02 01:04:05 UTC))
        );
        for bad in [
            "2026-13-01",
            "2026-1-01",
            "abc",
            "2026-01-02T3:04",
            "2026-01-02T03:04:05+2",
            "2026-01-02X",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }
}
