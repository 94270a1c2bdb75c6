//! `RepoOptions`: the repository's settings as they appear in the config file
//! (the `[repo]` table that `config` embeds), and the loading of the rule
//! files they name.
//!
//! This module owns the option names and their defaults; it must not apply
//! them (each layer does) and must not read anything but the files named here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{policy, property_protection};

/// Every repository setting. `#[serde(default)]`: an absent table means
/// Glance's defaults (default policy, no property-protection rules, no
/// quotas, no notifications).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepoOptions {
    /// Policy rules: Glance's defaults, then a rule file, then inline rules.
    pub policy: PolicyOptions,
    /// A Glance property-protections file (INI, roles format). Unset: no
    /// role rules; the built-in protections apply either way.
    pub property_protection_file: Option<PathBuf>,
    /// Per-project limits (Glance's unified limits).
    pub quota: QuotaOptions,
    /// Where notifications go.
    pub notifications: NotificationOptions,
}

impl RepoOptions {
    /// Reads and parses the property-protection file, if one is configured.
    ///
    /// Fails when the file cannot be read or a rule is malformed: a broken
    /// rule file never means "no rules".
    pub fn load_property_protection(
        &self,
    ) -> Result<Option<property_protection::Rules>, OptionsError> {
        let Some(path) = &self.property_protection_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| OptionsError::Read {
            what: "property protection",
            path: path.clone(),
            source,
        })?;
        property_protection::Rules::parse(&text)
            .map(Some)
            .map_err(|source| OptionsError::PropertyProtection {
                path: path.clone(),
                source,
            })
    }
}

/// Policy settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyOptions {
    /// A JSON policy file (`{"rule_name": "check string", ...}`, as
    /// oslo.policy's policy.json); its rules override the defaults.
    pub file: Option<PathBuf>,
    /// Inline rules (`rule name = "check string"`); they override the file.
    pub rules: BTreeMap<String, String>,
}

impl PolicyOptions {
    /// Glance's default rules, overridden by the file, then by the inline rules.
    ///
    /// Fails when the file cannot be read or is not a JSON object of strings,
    /// or when any check string does not parse.
    pub fn load(&self) -> Result<policy::Rules, OptionsError> {
        let mut rules = policy::Rules::glance_defaults();
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path).map_err(|source| OptionsError::Read {
                what: "policy",
                path: path.clone(),
                source,
            })?;
            let from_file: PolicyFile =
                serde_json::from_str(&text).map_err(|source| OptionsError::PolicyJson {
                    path: path.clone(),
                    source,
                })?;
            for (name, check) in &from_file.0 {
                rules
                    .set(name, check)
                    .map_err(|source| OptionsError::PolicyRule {
                        name: name.clone(),
                        origin: path.display().to_string(),
                        source,
                    })?;
            }
        }
        for (name, check) in &self.rules {
            rules
                .set(name, check)
                .map_err(|source| OptionsError::PolicyRule {
                    name: name.clone(),
                    origin: "[repo.policy.rules]".to_owned(),
                    source,
                })?;
        }
        Ok(rules)
    }
}

/// A policy file's rules in file order. A rule named twice is an error:
/// JSON parsers (Python's, serde_json's maps) keep the last one silently,
/// which would let a forgotten line at the end widen a rule.
struct PolicyFile(Vec<(String, String)>);

impl<'de> Deserialize<'de> for PolicyFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rules;
        impl<'de> serde::de::Visitor<'de> for Rules {
            type Value = PolicyFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object mapping rule names to check strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PolicyFile, A::Error> {
                let mut rules: Vec<(String, String)> = Vec::new();
                while let Some((name, check)) = map.next_entry::<String, String>()? {
                    if rules.iter().any(|(seen, _)| *seen == name) {
                        return Err(serde::de::Error::custom(format!(
                            "rule {name:?} appears twice"
                        )));
                    }
                    rules.push((name, check));
                }
                Ok(PolicyFile(rules))
            }
        }
        deserializer.deserialize_map(Rules)
    }
}

/// Quota settings: limits for every project, overridable per project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaOptions {
    /// Limits for projects without their own entry.
    pub default: ProjectLimits,
    /// Per-project limits, by project id; unset fields fall back to `default`.
    pub projects: BTreeMap<String, ProjectLimits>,
    /// How many members one image may have (Glance's `image_member_quota`;
    /// unset: Glance's 128, `-1`: unlimited).
    pub image_member_quota: Option<Limit>,
}

impl QuotaOptions {
    /// The effective limits of `project`.
    pub fn limits_for(&self, project: &str) -> EffectiveLimits {
        let own = self.projects.get(project);
        let pick = |field: fn(&ProjectLimits) -> Option<Limit>| {
            own.and_then(field)
                .or_else(|| field(&self.default))
                .unwrap_or(Limit::Unlimited)
        };
        EffectiveLimits {
            image_count_total: pick(|limits| limits.image_count_total),
            image_size_total_mib: pick(|limits| limits.image_size_total),
            image_count_uploading: pick(|limits| limits.image_count_uploading),
        }
    }
}

/// One project's limits, as Glance's unified limits name them. `-1` means
/// unlimited; an unset field inherits (from `default`, else unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectLimits {
    /// How many images the project may own.
    pub image_count_total: Option<Limit>,
    /// How many MiB its images may store in total.
    pub image_size_total: Option<Limit>,
    /// How many of its images may be uploading at once.
    pub image_count_uploading: Option<Limit>,
}

/// A resolved set of limits for one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// `image_count_total`.
    pub image_count_total: Limit,
    /// `image_size_total`, in MiB.
    pub image_size_total_mib: Limit,
    /// `image_count_uploading`.
    pub image_count_uploading: Limit,
}

/// One limit: a maximum, or none (`-1` in the config, as Keystone's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub enum Limit {
    /// No limit.
    Unlimited,
    /// At most this many.
    Max(u64),
}

impl TryFrom<i64> for Limit {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match value {
            -1 => Ok(Limit::Unlimited),
            0.. => Ok(Limit::Max(value.unsigned_abs())),
            _ => Err(format!(
                "quota limit {value} is invalid (expected -1 for unlimited, or 0 or more)"
            )),
        }
    }
}

/// Notification settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationOptions {
    /// A file that receives one JSON notification per line (appended).
    /// Unset: no notifications.
    pub sink: Option<PathBuf>,
    /// The `publisher_id` of every notification (Glance: `image.<host>`).
    pub publisher_id: String,
}

impl Default for NotificationOptions {
    fn default() -> Self {
        NotificationOptions {
            sink: None,
            publisher_id: "image.localhost".to_owned(),
        }
    }
}

/// A configured rule file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The file cannot be read.
    #[error("cannot read the {what} file {path}")]
    Read {
        /// Which file ("policy", "property protection").
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy file is not JSON of the expected shape.
    #[error(
        "policy file {path} is not a JSON object mapping rule names to check strings (YAML is not supported; convert it to JSON)"
    )]
    PolicyJson {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A policy check string does not parse.
    #[error("policy rule {name:?} from {origin} is invalid")]
    PolicyRule {
        /// The rule name.
        name: String,
        /// Where it came from (file path or the inline table).
        origin: String,
        /// The parse error.
        #[source]
        source: policy::ParseError,
    },
    /// The property-protection file is malformed.
    #[error("property protection file {path} is invalid")]
    PropertyProtection {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: property_protection::ParseError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_deserialize_from_toml_with_defaults() {
        let options: RepoOptions = toml::from_str(
            r#"
            property_protection_file = "/etc/portcullis/property-protections.conf"
            [policy]
            rules = { publicize_image = "role:admin or role:image_manager" }
            [quota.default]
            image_count_total = 10
            image_size_total = 1024
            [quota.projects.p1]
            image_count_total = -1
            [notifications]
            sink = "/var/log/portcullis/notifications.jsonl"
            "#,
        )
        .unwrap();
        assert_eq!(options.notifications.publisher_id, "image.localhost");
        let p1 = options.quota.limits_for("p1");
        assert_eq!(p1.image_count_total, Limit::Unlimited);
        assert_eq!(p1.image_size_total_mib, Limit::Max(1024));
        assert_eq!(p1.image_count_uploading, Limit::Unlimited);
        assert_eq!(
            options.quota.limits_for("other").image_count_total,
            Limit::Max(10)
        );
        assert_eq!(RepoOptions::default(), toml::from_str("").unwrap());
    }

    #[test]
    fn a_rule_named_twice_in_the_policy_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        std::fs::write(
            &path,
            r#"{"publicize_image": "rule:context_is_admin", "get_image": "role:admin", "publicize_image": ""}"#,
        )
        .unwrap();
        let options = PolicyOptions {
            file: Some(path.clone()),
            ..PolicyOptions::default()
        };
        let err = options.load().unwrap_err();
        assert!(matches!(err, OptionsError::PolicyJson { .. }), "{err}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            cause.contains("\"publicize_image\" appears twice"),
            "{cause}"
        );
        // Distinct rules still load, in file order.
        std::fs::write(&path, r#"{"publicize_image": "role:admin or role:x"}"#).unwrap();
        let rules = options.load().unwrap();
        let x = crate::context::RequestContext::for_project("p", &["x"]);
        assert!(rules.allows("publicize_image", &policy::Target::default(), &x));
    }

    #[test]
    fn bad_limits_and_unknown_keys_are_rejected() {
        let err =
            toml::from_str::<RepoOptions>("[quota.default]\nimage_count_total = -2\n").unwrap_err();
        assert!(err.to_string().contains("-2"), "{err}");
        let err = toml::from_str::<RepoOptions>("polcy = 1\n").unwrap_err();
        assert!(err.to_string().contains("polcy"), "{err}");
    }
}
