//! `update`: a change set ([`PatchOp`]s, as Glance's JSON-patch) applied to
//! an image with Glance's rules, then saved once.
//!
//! The rules, in the order Glance applies them (glance/api/v2/images.py):
//! 1. names no request may set, for every op: read-only attributes (`id`,
//!    `status`, `checksum`, `size`, `virtual_size`, `os_hash_*`,
//!    `created_at`, `updated_at`, `direct_url`, `self`, `file`, `schema`,
//!    `stores`) and reserved names (`locations`, `deleted`, `os_glance*`) →
//!    forbidden, naming the attribute;
//! 2. values: the image schema's types and the 255-character limits (also
//!    for changes built without JSON);
//! 3. `add` sets an attribute or a property whether or not it exists
//!    (openstackclient sends `add` for everything); `replace` of a property
//!    the image lacks → `no_such_property` (409); `remove` of a base
//!    attribute → `not_removable` (403), of a missing property →
//!    `no_such_property` (409); `tags` is one whole set;
//! 4. `disk_format` and `container_format` change only while the image is
//!    `queued`; only administrators change `owner`;
//! 5. the changes apply in order to a copy; nothing is saved unless all
//!    apply; then one save (a compare-and-swap on the status read), where
//!    the repository layers apply property protection (also: the
//!    `img_signature*` properties are read-only once the image has data),
//!    authorization and policy.
//!
//! This module must not change `status` or image data.

use crate::context::RequestContext;
use crate::image::{Image, ImageId, Status};
use crate::repo::ImageRepo;
use crate::wire::{self, Attribute, BASE_ATTRIBUTES, PatchOp};

use super::{App, Error};

impl App {
    /// Applies `patch` to image `id` with Glance's rules and saves the
    /// result once; an empty patch saves the image unchanged (as Glance,
    /// with a new `updated_at`).
    ///
    /// Fails, changing nothing, with [`Error::Request`] (read-only or
    /// reserved names, schema), [`Error::NoSuchProperty`],
    /// [`Error::NotRemovable`], [`Error::QueuedOnly`],
    /// [`Error::OwnerAdminOnly`], or the repository's refusals
    /// (`not_found`, `forbidden`, `read_only` for protected properties,
    /// `conflict` when an upload or status change raced it).
    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: ImageId,
        patch: &[PatchOp],
    ) -> Result<Image, Error> {
        let image = self.repo().get(ctx, id).await?;
        let changed = apply(&image, patch, ctx)?;
        self.store_change(ctx, &image, changed).await
    }
}

/// `image` with `patch` applied, or the first rule it breaks.
pub(crate) fn apply(
    image: &Image,
    patch: &[PatchOp],
    ctx: &RequestContext,
) -> Result<Image, Error> {
    let mut changed = image.clone();
    for op in patch {
        match op {
            PatchOp::Add(attribute) => set(&mut changed, attribute, ctx, Missing::Create)?,
            PatchOp::Replace(attribute) => set(&mut changed, attribute, ctx, Missing::Refuse)?,
            PatchOp::Remove(name) => remove(&mut changed, name)?,
        }
    }
    Ok(changed)
}

/// What `add` and `replace` do with a property the image lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Create,
    Refuse,
}

fn set(
    image: &mut Image,
    attribute: &Attribute,
    ctx: &RequestContext,
    missing: Missing,
) -> Result<(), Error> {
    // 1–2. Names and values, also for changes built without JSON.
    wire::check_attribute(attribute)?;
    let id = image.id;
    match attribute {
        Attribute::Name(name) => image.name = name.clone(),
        Attribute::DiskFormat(format) => {
            queued_only(image, "disk_format")?;
            image.disk_format = *format;
        }
        Attribute::ContainerFormat(format) => {
            queued_only(image, "container_format")?;
            image.container_format = *format;
        }
        Attribute::Visibility(visibility) => image.visibility = *visibility,
        Attribute::Protected(protected) => image.protected = *protected,
        Attribute::OsHidden(hidden) => image.os_hidden = *hidden,
        Attribute::MinDisk(gib) => image.min_disk = *gib,
        Attribute::MinRam(mib) => image.min_ram = *mib,
        Attribute::Owner(owner) => {
            if !ctx.is_admin() {
                return Err(Error::OwnerAdminOnly { id });
            }
            image.owner = owner.clone();
        }
        Attribute::Tags(tags) => image.tags = tags.clone(),
        Attribute::Property { name, value } => {
            if missing == Missing::Refuse && !image.properties.contains_key(name) {
                return Err(Error::NoSuchProperty {
                    id,
                    property: name.clone(),
                });
            }
            image.properties.insert(name.clone(), value.clone());
        }
    }
    Ok(())
}

fn remove(image: &mut Image, name: &str) -> Result<(), Error> {
    // Read-only and reserved names are refused as such first (Glance:
    // `remove /status` is "read-only", `remove /name` "may not be removed").
    wire::check_name(name)?;
    if BASE_ATTRIBUTES.contains(&name) {
        return Err(Error::NotRemovable {
            id: image.id,
            attribute: name.to_owned(),
        });
    }
    match image.properties.remove(name) {
        Some(_) => Ok(()),
        None => Err(Error::NoSuchProperty {
            id: image.id,
            property: name.to_owned(),
        }),
    }
}

fn queued_only(image: &Image, attribute: &'static str) -> Result<(), Error> {
    if image.status == Status::Queued {
        return Ok(());
    }
    Err(Error::QueuedOnly {
        id: image.id,
        attribute,
        status: image.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{DiskFormat, Visibility};

    fn image(status: Status) -> Image {
        let at = crate::clock::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let mut image = Image::new_queued(ImageId::new_random(), Some("p1".into()), at);
        image.status = status;
        image.name = Some("before".into());
        image.properties.insert("os_distro".into(), "cirros".into());
        image.tags.insert("t0".into());
        image
    }

    /// Applies `body` (a PATCH body, parsed by `wire`) to an image in `status`
    /// as `ctx`; `Ok(check)` runs `check` on the result, `Err(kind)` names the
    /// error kind, which must also leave the input untouched.
    fn check(status: Status, ctx: &RequestContext, body: &str, expect: Result<fn(&Image), &str>) {
        let before = image(status);
        let result = wire::parse_patch(body.as_bytes())
            .map_err(Error::from)
            .and_then(|ops| apply(&before, &ops, ctx));
        match (result, expect) {
            (Ok(after), Ok(check)) => {
                assert_eq!(after.id, before.id);
                assert_eq!(after.status, before.status, "a patch never changes status");
                check(&after);
            }
            (Err(err), Err(kind)) => {
                assert_eq!(err.kind(), kind, "{body}: {err}");
                // Everything but a schema violation is a refusal (exit 1).
                assert_eq!(err.is_rejection(), kind != "schema", "{body}: {err}");
            }
            (Ok(after), Err(kind)) => panic!("{body}: applied ({after:?}), expected {kind}"),
            (Err(err), Ok(_)) => panic!("{body}: {err}"),
        }
    }

    #[test]
    fn glance_rules_for_change_sets() {
        let admin = RequestContext::local_admin();
        let member = RequestContext::for_project("p1", &["member"]);
        let queued = Status::Queued;
        let active = Status::Active;

        // glanceclient: add for new properties, replace for existing ones and attributes.
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/foo","value":"bar"},{"op":"replace","path":"/os_distro","value":"debian"},{"op":"replace","path":"/name","value":"after"},{"op":"replace","path":"/min_disk","value":2}]"#,
            Ok(|image| {
                assert_eq!(image.properties["foo"], "bar");
                assert_eq!(image.properties["os_distro"], "debian");
                assert_eq!(image.name.as_deref(), Some("after"));
                assert_eq!(image.min_disk, 2);
            }),
        );
        // openstackclient: add on existing attributes and properties; tags as a whole list.
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/os_distro","value":"x"},{"op":"add","path":"/name","value":"o"},{"op":"add","path":"/tags","value":["t1","t2"]},{"op":"add","path":"/visibility","value":"private"}]"#,
            Ok(|image| {
                assert_eq!(image.properties["os_distro"], "x");
                assert_eq!(image.tags.iter().collect::<Vec<_>>(), ["t1", "t2"]);
                assert_eq!(image.visibility, Visibility::Private);
            }),
        );
        check(
            active,
            &member,
            r#"[{"op":"remove","path":"/os_distro"}]"#,
            Ok(|image| assert!(image.properties.is_empty())),
        );
        check(
            active,
            &member,
            r#"[{"op":"replace","path":"/name","value":null}]"#,
            Ok(|image| assert_eq!(image.name, None)),
        );
        check(active, &member, "[]", Ok(|_| {}));

        // Missing properties: replace and remove are conflicts; add creates.
        check(
            active,
            &member,
            r#"[{"op":"replace","path":"/nope","value":"x"}]"#,
            Err("no_such_property"),
        );
        check(
            active,
            &member,
            r#"[{"op":"remove","path":"/nope"}]"#,
            Err("no_such_property"),
        );
        // Base attributes cannot be removed; read-only ones are read-only first.
        check(
            active,
            &member,
            r#"[{"op":"remove","path":"/name"}]"#,
            Err("not_removable"),
        );
        check(
            active,
            &member,
            r#"[{"op":"remove","path":"/tags"}]"#,
            Err("not_removable"),
        );
        check(
            active,
            &member,
            r#"[{"op":"remove","path":"/status"}]"#,
            Err("read_only"),
        );
        check(
            active,
            &member,
            r#"[{"op":"replace","path":"/status","value":"active"}]"#,
            Err("read_only"),
        );
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/checksum","value":"deadbeef"}]"#,
            Err("read_only"),
        );
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/os_glance_import_task","value":"x"}]"#,
            Err("reserved"),
        );
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/min_ram","value":-5}]"#,
            Err("schema"),
        );
        // Formats only while queued.
        check(
            queued,
            &member,
            r#"[{"op":"replace","path":"/disk_format","value":"qcow2"}]"#,
            Ok(|image| assert_eq!(image.disk_format, Some(DiskFormat::Qcow2))),
        );
        check(
            active,
            &member,
            r#"[{"op":"replace","path":"/disk_format","value":"qcow2"}]"#,
            Err("queued_only"),
        );
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/container_format","value":"ova"}]"#,
            Err("queued_only"),
        );
        // Owner: administrators only.
        check(
            active,
            &member,
            r#"[{"op":"replace","path":"/owner","value":"p2"}]"#,
            Err("forbidden"),
        );
        check(
            active,
            &admin,
            r#"[{"op":"replace","path":"/owner","value":"p2"}]"#,
            Ok(|image| assert_eq!(image.owner.as_deref(), Some("p2"))),
        );
        // A later bad op refuses the whole change set.
        check(
            active,
            &member,
            r#"[{"op":"add","path":"/foo","value":"bar"},{"op":"remove","path":"/missing"}]"#,
            Err("no_such_property"),
        );
    }

    #[test]
    fn changes_built_without_json_get_the_same_rules() {
        let member = RequestContext::for_project("p1", &["member"]);
        let before = image(Status::Active);
        let long = "x".repeat(wire::MAX_STRING + 1);
        let cases: Vec<(PatchOp, &str)> = vec![
            (
                PatchOp::Add(Attribute::Property {
                    name: "status".into(),
                    value: "active".into(),
                }),
                "read_only",
            ),
            (
                PatchOp::Add(Attribute::Property {
                    name: "owner".into(),
                    value: "p2".into(),
                }),
                "base_attribute",
            ),
            (
                PatchOp::Add(Attribute::Property {
                    name: "os_glance_x".into(),
                    value: "v".into(),
                }),
                "reserved",
            ),
            (
                PatchOp::Replace(Attribute::Name(Some(long.clone()))),
                "schema",
            ),
            (
                PatchOp::Add(Attribute::Tags([long].into_iter().collect())),
                "schema",
            ),
            (PatchOp::Remove("checksum".into()), "read_only"),
            (PatchOp::Remove("deleted".into()), "reserved"),
        ];
        for (op, kind) in cases {
            let err = apply(&before, std::slice::from_ref(&op), &member).unwrap_err();
            assert_eq!(err.kind(), kind, "{op:?}: {err}");
        }
    }
}
