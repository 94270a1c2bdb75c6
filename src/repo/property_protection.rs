//! The property-protection layer: which roles may create, read, update and
//! delete which properties (Glance's property-protections file, roles
//! format), plus the protections portcullis always applies.
//!
//! Built in and always on, whatever the file says:
//! - the `img_signature*` properties are read-only once the image has data
//!   (any status but `queued`): a signature cannot be swapped under verified
//!   data (Glance allows it; we do not);
//! - `disk_format` and `container_format` change only while the image is
//!   `queued` (Glance: "Attribute disk_format can be only replaced for a
//!   queued image."): the upload's format inspection decided on them;
//! - `size`, `virtual_size`, `checksum`, `os_hash_algo`, `os_hash_value`
//!   and `locations` change only when an upload commits (`saving → active`)
//!   or rolls back (`saving → queued`, clearing them), and `status` only
//!   through a status transition, never in an attribute update or an add
//!   (each [`ChangeKind`]'s write set, see [`Change::stray_attribute`]).
//!
//! The properties of an update are judged as a diff between the stored
//! record (`before`, handed down by the outermost layer) and the caller's
//! `after`: properties the caller cannot read are kept, the others need
//! the create, update or delete right. The SQL backend's compare-and-swap
//! on `before` guarantees the diff is never applied over a concurrent change.
//!
//! It must not decide who owns an image (authorization) or which operations
//! a role may perform (policy).

use regex::Regex;

use super::change::data_fields;
use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, NewImage, UploadAllowance, delegate_members,
    delegate_stored,
};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Properties, Status};

/// The prefix of the signature properties (`img_signature`,
/// `img_signature_hash_method`, `img_signature_key_type`,
/// `img_signature_certificate_uuid`).
const SIGNATURE_PREFIX: &str = "img_signature";

/// A property operation a rule can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Add a property the image does not have.
    Create,
    /// See a property.
    Read,
    /// Change a property's value.
    Update,
    /// Remove a property.
    Delete,
}

impl Operation {
    const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// Who may perform one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// `@`
    Everyone,
    /// `!`, or the operation is missing from the section.
    Nobody,
    /// Any of these roles (lower-case).
    Roles(Vec<String>),
}

#[derive(Debug, Clone)]
struct Section {
    pattern: Regex,
    operations: [Allowed; 4],
}

/// Parsed property-protection rules: sections in file order, the first
/// section whose regular expression matches (anywhere in) a property name
/// decides, and a name no section matches is protected from everyone.
#[derive(Debug, Clone)]
pub struct Rules {
    sections: Vec<Section>,
}

/// A property-protection file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line that is not a section, a `key = value` pair or a comment.
    #[error("line {line}: {text:?} is not a [section], an operation = roles line or a comment")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// An operation outside the section list.
    #[error("line {line}: operation {text:?} appears before any [section]")]
    OutsideSection {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The section name is not a valid regular expression.
    #[error("line {line}: section [{pattern}] is not a valid regular expression: {reason}")]
    BadPattern {
        /// 1-based line number.
        line: usize,
        /// The section name.
        pattern: String,
        /// The regex error.
        reason: String,
    },
    /// The same section twice.
    #[error("line {line}: section [{pattern}] appears twice")]
    DuplicateSection {
        /// 1-based line number.
        line: usize,
        /// The section name.
        pattern: String,
    },
    /// An operation other than create, read, update, delete.
    #[error("line {line}: {key:?} is not an operation (expected create, read, update or delete)")]
    UnknownOperation {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// The same operation twice in one section (Python's configparser,
    /// which Glance reads the file with, refuses this too).
    #[error("line {line}: operation {key} appears twice in section [{pattern}]")]
    DuplicateOperation {
        /// 1-based line number of the second occurrence.
        line: usize,
        /// The operation.
        key: String,
        /// The section name.
        pattern: String,
    },
    /// `@` and `!` together.
    #[error("line {line}: '@' and '!' are mutually exclusive in {key} = {value}")]
    EveryoneAndNobody {
        /// 1-based line number.
        line: usize,
        /// The operation.
        key: String,
        /// The roles.
        value: String,
    },
}

impl Rules {
    /// Parses a property-protections file (INI; sections are regular
    /// expressions; `create`/`read`/`update`/`delete` = comma-separated
    /// roles, `@` for everyone, `!` for nobody).
    ///
    /// Fails on any malformed line, bad regular expression, duplicate section
    /// or operation, or `@` combined with `!`. An operation missing from a section allows
    /// nobody (as Glance, which logs a warning).
    pub fn parse(text: &str) -> Result<Rules, ParseError> {
        struct Pending {
            line: usize,
            pattern: String,
            operations: [Option<Allowed>; 4],
        }
        let mut pending: Vec<Pending> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.starts_with('[') && trimmed.ends_with(']') && trimmed.len() > 2 {
                let pattern = trimmed[1..trimmed.len() - 1].to_owned();
                if pending.iter().any(|section| section.pattern == pattern) {
                    return Err(ParseError::DuplicateSection { line, pattern });
                }
                pending.push(Pending {
                    line,
                    pattern,
                    operations: [None, None, None, None],
                });
                continue;
            }
            let Some((key, value)) = trimmed.split_once(['=', ':']) else {
                return Err(ParseError::Syntax {
                    line,
                    text: raw.to_owned(),
                });
            };
            let Some(section) = pending.last_mut() else {
                return Err(ParseError::OutsideSection {
                    line,
                    text: raw.to_owned(),
                });
            };
            let key = key.trim().to_ascii_lowercase();
            let Some(slot) = Operation::ALL.iter().position(|op| op.as_str() == key) else {
                return Err(ParseError::UnknownOperation { line, key });
            };
            // Taking the last value silently could widen a rule the first
            // line narrowed.
            if section.operations[slot].is_some() {
                return Err(ParseError::DuplicateOperation {
                    line,
                    key,
                    pattern: section.pattern.clone(),
                });
            }
            let roles: Vec<String> = value
                .split(',')
                .map(|role| role.trim().to_ascii_lowercase())
                .filter(|role| !role.is_empty())
                .collect();
            let everyone = roles.iter().any(|role| role == "@");
            let nobody = roles.iter().any(|role| role == "!");
            section.operations[slot] = Some(match (everyone, nobody) {
                (true, true) => {
                    return Err(ParseError::EveryoneAndNobody {
                        line,
                        key,
                        value: value.trim().to_owned(),
                    });
                }
                (true, false) => Allowed::Everyone,
                (false, true) => Allowed::Nobody,
                (false, false) if roles.is_empty() => Allowed::Nobody,
                (false, false) => Allowed::Roles(roles),
            });
        }
        let mut sections = Vec::new();
        for section in pending {
            let pattern = Regex::new(&section.pattern).map_err(|err| ParseError::BadPattern {
                line: section.line,
                pattern: section.pattern.clone(),
                reason: err.to_string(),
            })?;
            let operations = section.operations.map(|allowed| {
                allowed.unwrap_or_else(|| {
                    tracing::warn!(
                        section = %section.pattern,
                        "property protection section lacks an operation; nobody may perform it"
                    );
                    Allowed::Nobody
                })
            });
            sections.push(Section {
                pattern,
                operations,
            });
        }
        Ok(Rules { sections })
    }

    /// Whether `ctx` may perform `operation` on property `name`.
    pub fn allows(&self, name: &str, operation: Operation, ctx: &RequestContext) -> bool {
        if self.sections.is_empty() {
            return true;
        }
        let Some(section) = self
            .sections
            .iter()
            .find(|section| section.pattern.is_match(name))
        else {
            return false;
        };
        let slot = Operation::ALL
            .iter()
            .position(|op| *op == operation)
            .unwrap_or(0);
        match &section.operations[slot] {
            Allowed::Everyone => true,
            Allowed::Nobody => false,
            Allowed::Roles(roles) => roles.iter().any(|role| ctx.has_role(role)),
        }
    }
}

/// The property-protection layer.
#[derive(Debug, Clone)]
pub struct PropertyProtectionRepo<R> {
    inner: R,
    rules: Option<Rules>,
}

impl<R> PropertyProtectionRepo<R> {
    /// Wraps `inner`. `rules` are the configured role rules, if any; the
    /// built-in protections apply either way.
    pub fn new(inner: R, rules: Option<Rules>) -> PropertyProtectionRepo<R> {
        PropertyProtectionRepo { inner, rules }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn allows(&self, name: &str, operation: Operation, ctx: &RequestContext) -> bool {
        self.rules
            .as_ref()
            .is_none_or(|rules| rules.allows(name, operation, ctx))
    }

    /// `image` without the properties `ctx` may not read.
    fn readable(&self, ctx: &RequestContext, mut image: Image) -> Image {
        if self.rules.is_some() {
            image
                .properties
                .retain(|name, _| self.allows(name, Operation::Read, ctx));
        }
        image
    }

    fn require(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        name: &str,
        operation: Operation,
    ) -> Result<(), Error> {
        if self.allows(name, operation, ctx) {
            Ok(())
        } else {
            Err(Error::forbidden(
                format!("{} protected property {name:?}", operation.as_str()),
                Some(id),
            ))
        }
    }
}

/// The built-in protections for `change`.
fn check_built_in(change: &Change) -> Result<(), Error> {
    let (before, after) = (&change.before, &change.after);
    let id = before.id;
    let read_only = |attribute: &str| Error::ReadOnly {
        id,
        attribute: attribute.to_owned(),
    };
    // 1. Status, the upload's data fields and locations: each kind's write set.
    if let Some(attribute) = change.stray_attribute() {
        return Err(read_only(&attribute));
    }
    if change.kind != ChangeKind::Update {
        return Ok(());
    }
    // 2. The declared formats, once data may exist.
    if before.status != Status::Queued {
        if before.disk_format != after.disk_format {
            return Err(read_only("disk_format"));
        }
        if before.container_format != after.container_format {
            return Err(read_only("container_format"));
        }
    }
    // 3. The signature properties are frozen once data exists.
    if before.status != Status::Queued {
        let names = before.properties.keys().chain(after.properties.keys());
        for name in names.filter(|name| name.starts_with(SIGNATURE_PREFIX)) {
            if before.properties.get(name) != after.properties.get(name) {
                return Err(read_only(name));
            }
        }
    }
    Ok(())
}

delegate_stored!(PropertyProtectionRepo);

impl<R: ImageRepo> ImageRepo for PropertyProtectionRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.get(ctx, id).await?;
        Ok(self.readable(ctx, image))
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        // Filtering on a property the caller cannot read would reveal it.
        for name in query.properties.keys() {
            if !self.allows(name, Operation::Read, ctx) {
                return Ok(Vec::new());
            }
        }
        let images = self.inner.list(ctx, query).await?;
        Ok(images
            .into_iter()
            .map(|image| self.readable(ctx, image))
            .collect())
    }

    async fn add(&self, ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        let image = &new.image;
        for (name, value) in data_fields(image) {
            if value.is_some() {
                return Err(Error::ReadOnly {
                    id: image.id,
                    attribute: name.to_owned(),
                });
            }
        }
        if !image.locations.is_empty() {
            return Err(Error::ReadOnly {
                id: image.id,
                attribute: "locations".to_owned(),
            });
        }
        for name in image.properties.keys() {
            self.require(ctx, image.id, name, Operation::Create)?;
        }
        let stored = self.inner.add(ctx, new).await?;
        Ok(self.readable(ctx, stored))
    }

    async fn save(&self, ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        check_built_in(change)?;
        if change.kind != ChangeKind::Update {
            let saved = self.inner.save(ctx, change).await?;
            return Ok(self.readable(ctx, saved));
        }
        let (stored, wanted) = (&change.before, &change.after);
        let id = stored.id;
        let mut properties = Properties::new();
        for (name, value) in &stored.properties {
            match wanted.properties.get(name) {
                // Unreadable properties never reached the caller: keep them.
                None if !self.allows(name, Operation::Read, ctx) => {
                    properties.insert(name.clone(), value.clone());
                }
                None => self.require(ctx, id, name, Operation::Delete)?,
                Some(new) if new != value => {
                    self.require(ctx, id, name, Operation::Update)?;
                }
                Some(_) => {}
            }
        }
        for (name, value) in &wanted.properties {
            if !stored.properties.contains_key(name) {
                self.require(ctx, id, name, Operation::Create)?;
            }
            properties.insert(name.clone(), value.clone());
        }
        let mut merged = change.clone();
        merged.after.properties = properties;
        let saved = self.inner.save(ctx, &merged).await?;
        Ok(self.readable(ctx, saved))
    }

    async fn remove(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        let removed = self.inner.remove(ctx, image).await?;
        Ok(self.readable(ctx, removed))
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        self.inner.prepare_upload(ctx, image).await
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.prepare_download(ctx, id).await?;
        Ok(self.readable(ctx, image))
    }
}

// Members carry no properties: nothing to protect.
delegate_members!(PropertyProtectionRepo);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::test_support::*;

    const SAMPLE: &str = "
# Owners' properties
[^x_owner_.*]
create = admin,member
read = admin,member,reader
update = admin,member
delete = admin,member

[^x_billing_.*]
create = admin
read = @
update = admin
delete = !

; everything else: admins only
[.*]
create = admin
read = admin
update = admin
delete = admin
";

    fn user(roles: &[&str]) -> RequestContext {
        RequestContext::for_project("p1", roles)
    }

    #[test]
    fn rules_follow_glance_semantics() {
        let rules = Rules::parse(SAMPLE).unwrap();
        let member = user(&["member"]);
        let reader = user(&["reader"]);
        assert!(rules.allows("x_owner_foo", Operation::Create, &member));
        assert!(!rules.allows("x_owner_foo", Operation::Create, &reader));
        assert!(rules.allows("x_owner_foo", Operation::Read, &reader));
        assert!(rules.allows("x_billing_code", Operation::Read, &reader));
        assert!(!rules.allows("x_billing_code", Operation::Delete, &admin()));
        assert!(!rules.allows("anything", Operation::Read, &member));
        assert!(rules.allows("anything", Operation::Read, &admin()));
        // The first matching section wins; `search` semantics (anywhere).
        let rules = Rules::parse("[foo]\ncreate = @\nread = @\nupdate = @\ndelete = @\n").unwrap();
        assert!(rules.allows("a_foo_b", Operation::Update, &member));
        assert!(!rules.allows("bar", Operation::Read, &admin()));
        // Empty rules allow everything (Glance: protections off).
        assert!(
            Rules::parse("# nothing\n")
                .unwrap()
                .allows("x", Operation::Delete, &reader)
        );
    }

    #[test]
    fn missing_operations_allow_nobody_and_bad_files_fail() {
        let rules = Rules::parse("[^a]\nread = @\n").unwrap();
        assert!(!rules.allows("abc", Operation::Create, &admin()));
        for (text, expect) in [
            ("[(unclosed]\nread = @\n", "regular expression"),
            ("read = @\n", "before any"),
            ("[a]\nread = @,!\n", "mutually exclusive"),
            ("[a]\nwrite = @\n", "not an operation"),
            ("[a]\njunk\n", "not a [section]"),
            ("[a]\nread = @\n[a]\nread = @\n", "twice"),
            ("[(?=x)]\nread = @\n", "regular expression"),
            (
                "[a]\nread = admin\nRead = @\n",
                "appears twice in section [a]",
            ),
        ] {
            let err = Rules::parse(text).unwrap_err();
            assert!(err.to_string().contains(expect), "{text:?}: {err}");
        }
    }

    #[tokio::test]
    async fn roles_decide_create_read_update_delete_on_a_real_database() {
        let repo = temp_repo().await;
        let layer =
            PropertyProtectionRepo::new(repo.sql.clone(), Some(Rules::parse(SAMPLE).unwrap()));
        let member = user(&["member"]);
        // What the outermost layer would hand down: the stored record as `before`.
        let update = |edited: Image| {
            let sql = repo.sql.clone();
            async move {
                let stored = sql.get(&admin(), edited.id).await.unwrap();
                Change::update(edited.clone(), edited).on(stored)
            }
        };

        let mut image = queued(Some("p1"));
        image.properties.insert("x_owner_os".into(), "linux".into());
        image.properties.insert("secret".into(), "s3".into());
        // A member cannot create an admin-only property...
        let err = layer.add(&member, &image.clone().into()).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("create protected property \"secret\""),
            "{err}"
        );
        // ...an admin can, and the member does not see it.
        let stored = layer.add(&admin(), &image.clone().into()).await.unwrap();
        assert_eq!(stored.properties.len(), 2);
        let seen = layer.get(&member, image.id).await.unwrap();
        assert_eq!(seen.properties.keys().collect::<Vec<_>>(), ["x_owner_os"]);
        // Listing by an unreadable property reveals nothing.
        let mut query = ListQuery::default();
        query.properties.insert("secret".into(), "s3".into());
        assert!(layer.list(&member, &query).await.unwrap().is_empty());
        assert_eq!(layer.list(&admin(), &query).await.unwrap().len(), 1);

        // Saving what the member saw keeps the hidden property.
        let mut edited = seen.clone();
        edited.properties.insert("x_owner_os".into(), "bsd".into());
        edited.properties.insert("x_owner_new".into(), "1".into());
        layer.save(&member, &update(edited).await).await.unwrap();
        let all = repo.sql.get(&admin(), image.id).await.unwrap();
        assert_eq!(all.properties.get("secret").map(String::as_str), Some("s3"));
        assert_eq!(
            all.properties.get("x_owner_os").map(String::as_str),
            Some("bsd")
        );
        assert!(all.properties.contains_key("x_owner_new"));

        // Deleting needs the delete right.
        let mut edited = layer.get(&admin(), image.id).await.unwrap();
        edited
            .properties
            .insert("x_billing_code".into(), "42".into());
        let edited = layer.save(&admin(), &update(edited).await).await.unwrap();
        let mut without = edited.clone();
        without.properties.remove("x_billing_code");
        let err = layer
            .save(&admin(), &update(without).await)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("delete protected property"),
            "{err}"
        );
        let mut without = layer.get(&member, image.id).await.unwrap();
        without.properties.remove("x_owner_new");
        layer.save(&member, &update(without).await).await.unwrap();
        assert!(
            !repo
                .sql
                .get(&admin(), image.id)
                .await
                .unwrap()
                .properties
                .contains_key("x_owner_new")
        );
    }

    #[tokio::test]
    async fn built_in_protections_hold_without_a_rule_file() {
        let repo = temp_repo().await;
        let layer = PropertyProtectionRepo::new(repo.sql.clone(), None);
        let ctx = admin();

        // Hashes cannot be supplied at creation...
        let mut image = queued(Some("p1"));
        image.checksum = Some("d41d8cd98f00b204e9800998ecf8427e".into());
        let err = layer.add(&ctx, &image.into()).await.unwrap_err();
        assert!(
            matches!(&err, Error::ReadOnly { attribute, .. } if attribute == "checksum"),
            "{err}"
        );

        // ...nor set by an ordinary save.
        let mut image = queued(Some("p1"));
        image
            .properties
            .insert("img_signature".into(), "c2ln".into());
        let image = layer.add(&ctx, &image.into()).await.unwrap();
        for attribute in ["size", "os_hash_value", "status", "locations"] {
            let mut changed = image.clone();
            match attribute {
                "size" => changed.size = Some(1),
                "os_hash_value" => changed.os_hash_value = Some("ab".into()),
                "locations" => changed.locations = vec![uploaded(image.id, 1).location],
                _ => changed.status = Status::Saving,
            }
            let err = layer
                .save(&ctx, &Change::update(image.clone(), changed))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::ReadOnly { attribute: a, .. } if a == attribute),
                "{attribute}: {err}"
            );
        }

        // While queued the signature and the formats may still change.
        let mut resigned = image.clone();
        resigned
            .properties
            .insert("img_signature".into(), "bmV3".into());
        resigned.disk_format = Some(crate::image::DiskFormat::Qcow2);
        let image = layer
            .save(&ctx, &Change::update(image, resigned))
            .await
            .unwrap();

        // The upload's transitions set and clear the upload attributes.
        let saving = layer
            .save(&ctx, &Change::claim_upload(image.clone()))
            .await
            .unwrap();
        let active = layer
            .save(&ctx, &Change::commit_upload(saving, uploaded(image.id, 3)))
            .await
            .unwrap();
        assert_eq!(active.size, Some(3));

        // Once data exists, the signature properties and the formats are
        // frozen, others not.
        let refused = |edit: &dyn Fn(&mut Image)| {
            let mut edited = active.clone();
            edit(&mut edited);
            let change = Change::update(active.clone(), edited);
            let layer = &layer;
            async move { layer.save(&admin(), &change).await.unwrap_err() }
        };
        let err = refused(&|image| {
            image
                .properties
                .insert("img_signature".into(), "ZXZpbA==".into());
        })
        .await;
        assert!(
            matches!(&err, Error::ReadOnly { attribute, .. } if attribute == "img_signature"),
            "{err}"
        );
        assert!(err.to_string().contains("once it has data"), "{err}");
        let err = refused(&|image| {
            image
                .properties
                .insert("img_signature_key_type".into(), "RSA-PSS".into());
        })
        .await;
        assert_eq!(err.kind(), "read_only");
        assert_eq!(
            refused(&|image| image.properties.clear()).await.kind(),
            "read_only"
        );
        let err = refused(&|image| image.disk_format = Some(crate::image::DiskFormat::Raw)).await;
        assert!(
            matches!(&err, Error::ReadOnly { attribute, .. } if attribute == "disk_format"),
            "{err}"
        );
        let mut renamed = active.clone();
        renamed.name = Some("renamed".into());
        renamed
            .properties
            .insert("os_distro".into(), "cirros".into());
        assert!(
            layer
                .save(&ctx, &Change::update(active.clone(), renamed))
                .await
                .is_ok()
        );
        let stored = repo.sql.get(&ctx, active.id).await.unwrap();
        assert_eq!(
            stored.properties.get("img_signature").map(String::as_str),
            Some("bmV3")
        );
        assert_eq!(stored.checksum.as_deref(), Some(&*"0".repeat(32)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Files built from INI pieces, and arbitrary text, parse or fail
        /// with an error; parsed rules answer every question without panicking.
        #[test]
        fn any_file_parses_or_fails_cleanly(
            lines in proptest::collection::vec(
                "(\\[[a-z^.*()\\[\\]_]{0,6}\\]|(create|read|update|delete|junk) ?[=:] ?[a-z@!, ]{0,8}|# .{0,4}|;|\\PC{0,10})",
                0..8,
            ),
            name in "[a-z_]{0,8}",
        ) {
            if let Ok(rules) = Rules::parse(&lines.join("\n")) {
                for operation in Operation::ALL {
                    let _ = rules.allows(&name, operation, &admin());
                    let _ = rules.allows(&name, operation, &member("p1"));
                }
            }
        }
    }
}
