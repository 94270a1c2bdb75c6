//! `clouds.yaml` (and `secure.yaml`) as openstacksdk reads them: the search
//! path, the cloud by name (`OS_CLOUD`, `--os-cloud`), the lone cloud as
//! default, and the secure file merged over it.
//!
//! Search order, first file found wins: `OS_CLIENT_CONFIG_FILE`,
//! `./clouds.yaml`, `$XDG_CONFIG_HOME/openstack/clouds.yaml` (default
//! `~/.config/openstack/`), `/etc/openstack/clouds.yaml`; `.yml` and
//! `.json` are tried beside each `.yaml`. `secure.yaml` is found the same
//! way (`OS_CLIENT_SECURE_FILE` first) and its cloud entry is merged over
//! the clouds.yaml one, key by key.
//!
//! This module owns the file format. It must not do network IO, and its
//! errors never quote values from the files (passwords live there).

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::env::{Environment, parse_bool};
use super::secret::Secret;
use super::settings::{RawSettings, SettingsError};

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// The files looked for, in order, for `stem` (`clouds` or `secure`).
fn candidates(stem: &str, override_var: &str, env: &Environment) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(path) = env.var(override_var) {
        files.push(PathBuf::from(path));
    }
    let user_dir = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|home| Path::new(&home).join(".config")))
        .map(|dir| dir.join("openstack"));
    let dirs = [
        Some(env.cwd().to_owned()),
        user_dir,
        Some(env.site_config_dir().to_owned()),
    ];
    for dir in dirs.into_iter().flatten() {
        for extension in EXTENSIONS {
            files.push(dir.join(format!("{stem}.{extension}")));
        }
    }
    files
}

fn first_existing(files: &[PathBuf]) -> Option<&PathBuf> {
    files.iter().find(|path| path.exists())
}

fn read_yaml(path: &Path) -> Result<Mapping, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::CloudsFileRead {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| SettingsError::CloudsFileInvalid {
        path: path.to_owned(),
        reason,
    };
    // Only the parser's position and description: never a value.
    let value: Value = serde_yaml_ng::from_str(&text).map_err(|err| {
        invalid(match err.location() {
            Some(at) => format!(
                "YAML syntax error at line {} column {}",
                at.line(),
                at.column()
            ),
            None => "YAML syntax error".to_owned(),
        })
    })?;
    match value {
        Value::Mapping(map) => Ok(map),
        Value::Null => Ok(Mapping::new()),
        _ => Err(invalid("the top level is not a mapping".to_owned())),
    }
}

fn clouds_of(file: &Mapping, path: &Path) -> Result<Mapping, SettingsError> {
    match file.get("clouds") {
        Some(Value::Mapping(clouds)) => Ok(clouds.clone()),
        None | Some(Value::Null) => Ok(Mapping::new()),
        Some(_) => Err(SettingsError::CloudsFileInvalid {
            path: path.to_owned(),
            reason: "`clouds` is not a mapping of cloud names".to_owned(),
        }),
    }
}

fn names(clouds: &Mapping) -> Vec<String> {
    clouds.keys().filter_map(scalar).collect()
}

/// The settings of cloud `name`, with secure.yaml merged in, and the file
/// it came from.
///
/// Fails when no clouds.yaml exists, the cloud is not in it, or a file is invalid.
pub(crate) fn load_cloud(
    name: &str,
    env: &Environment,
) -> Result<(RawSettings, PathBuf), SettingsError> {
    let files = candidates("clouds", "OS_CLIENT_CONFIG_FILE", env);
    let Some(path) = first_existing(&files) else {
        return Err(SettingsError::NoCloudsFile {
            cloud: name.to_owned(),
            searched: files
                .iter()
                .map(|path| path.display().to_string())
                .collect(),
        });
    };
    let clouds = clouds_of(&read_yaml(path)?, path)?;
    let Some(cloud) = clouds.get(name) else {
        return Err(SettingsError::CloudNotFound {
            cloud: name.to_owned(),
            path: path.clone(),
            available: names(&clouds),
        });
    };
    let merged = merge_secure(name, cloud.clone(), env)?;
    Ok((cloud_settings(&merged, path)?, path.clone()))
}

/// openstacksdk's default when nothing names a cloud or credentials: the
/// only cloud of the first clouds.yaml, if it has exactly one.
///
/// Fails when the file found is invalid.
pub(crate) fn load_only_cloud(
    env: &Environment,
) -> Result<Option<(String, RawSettings, PathBuf)>, SettingsError> {
    let files = candidates("clouds", "OS_CLIENT_CONFIG_FILE", env);
    let Some(path) = first_existing(&files) else {
        return Ok(None);
    };
    let clouds = clouds_of(&read_yaml(path)?, path)?;
    let available = names(&clouds);
    let [only] = available.as_slice() else {
        return Ok(None);
    };
    let (raw, path) = load_cloud(only, env)?;
    Ok(Some((only.clone(), raw, path)))
}

fn merge_secure(name: &str, cloud: Value, env: &Environment) -> Result<Value, SettingsError> {
    let files = candidates("secure", "OS_CLIENT_SECURE_FILE", env);
    let Some(path) = first_existing(&files) else {
        return Ok(cloud);
    };
    let secure = clouds_of(&read_yaml(path)?, path)?;
    Ok(match secure.get(name) {
        Some(extra) => deep_merge(cloud, extra.clone()),
        None => cloud,
    })
}

/// `upper` over `lower`: mappings merge key by key, anything else replaces.
fn deep_merge(lower: Value, upper: Value) -> Value {
    match (lower, upper) {
        (Value::Mapping(mut lower), Value::Mapping(upper)) => {
            for (key, value) in upper {
                let merged = match lower.remove(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => value,
                };
                lower.insert(key, merged);
            }
            Value::Mapping(lower)
        }
        (_, upper) => upper,
    }
}

/// A scalar as text (YAML lets `project_id: 123` or `password: 1234` be numbers).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

fn cloud_settings(cloud: &Value, path: &Path) -> Result<RawSettings, SettingsError> {
    let invalid = |reason: &str| SettingsError::CloudsFileInvalid {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let Value::Mapping(cloud) = cloud else {
        return Err(invalid("the cloud entry is not a mapping"));
    };
    let auth = match cloud.get("auth") {
        Some(Value::Mapping(auth)) => auth.clone(),
        None | Some(Value::Null) => Mapping::new(),
        Some(_) => return Err(invalid("`auth` is not a mapping")),
    };
    if cloud.contains_key("profile") {
        return Err(invalid(
            "vendor profiles (`profile:`) are not supported; write the cloud's auth_url and region out",
        ));
    }
    if let Some(version) = cloud.get("identity_api_version").and_then(scalar)
        && version != "3"
        && version != "3.0"
    {
        return Err(invalid(
            "identity_api_version must be 3 (Keystone's v2 API is gone)",
        ));
    }
    // Auth keys live under `auth`; openstacksdk also takes them at the top.
    let get = |key: &str| {
        auth.get(key)
            .and_then(scalar)
            .or_else(|| cloud.get(key).and_then(scalar))
            .filter(|value| !value.is_empty())
    };
    let top = |key: &str| {
        cloud
            .get(key)
            .and_then(scalar)
            .filter(|value| !value.is_empty())
    };
    let region_name = top("region_name").or_else(|| match cloud.get("regions") {
        Some(Value::Sequence(regions)) => regions.first().and_then(|region| match region {
            Value::Mapping(region) => region.get("name").and_then(scalar),
            other => scalar(other),
        }),
        _ => None,
    });
    let insecure = match (top("insecure"), top("verify")) {
        (Some(insecure), _) => Some(parse_bool("insecure", &insecure)?),
        (None, Some(verify)) => Some(!parse_bool("verify", &verify)?),
        (None, None) => None,
    };
    Ok(RawSettings {
        auth_type: top("auth_type"),
        auth_url: get("auth_url"),
        username: get("username"),
        user_id: get("user_id"),
        password: get("password").map(Secret::new),
        user_domain_name: get("user_domain_name"),
        user_domain_id: get("user_domain_id"),
        project_name: get("project_name").or_else(|| get("tenant_name")),
        project_id: get("project_id").or_else(|| get("tenant_id")),
        project_domain_name: get("project_domain_name"),
        project_domain_id: get("project_domain_id"),
        domain_name: get("domain_name"),
        domain_id: get("domain_id"),
        default_domain: get("default_domain"),
        application_credential_id: get("application_credential_id"),
        application_credential_name: get("application_credential_name"),
        application_credential_secret: get("application_credential_secret").map(Secret::new),
        token: get("token").map(Secret::new),
        region_name,
        interface: top("interface").or_else(|| top("endpoint_type")),
        cacert: top("cacert").map(PathBuf::from),
        insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUDS: &str = "clouds:
  alice:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: alice
      password: yaml-password
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
    identity_api_version: 3
    verify: false
  other:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://k
      application_credential_id: ac1
    regions:
      - name: R2
      - R3
";

    fn env_in(dir: &Path, vars: &[(&str, &str)]) -> Environment {
        let mut all: Vec<(String, String)> =
            vec![("HOME".to_owned(), dir.join("home").display().to_string())];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Environment::new(all, dir.join("cwd")).with_site_config_dir(dir.join("etc"))
    }

    #[test]
    fn search_path_order_and_override() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cwd", "home/.config/openstack", "etc", "custom"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let write = |sub: &str, region: &str| {
            std::fs::write(dir.path().join(sub), CLOUDS.replace("RegionOne", region)).unwrap();
        };
        write("etc/clouds.yaml", "from-etc");
        let env = env_in(dir.path(), &[]);
        assert_eq!(
            load_cloud("alice", &env).unwrap().0.region_name.as_deref(),
            Some("from-etc")
        );
        write("home/.config/openstack/clouds.yml", "from-home");
        assert_eq!(
            load_cloud("alice", &env).unwrap().0.region_name.as_deref(),
            Some("from-home")
        );
        write("cwd/clouds.yaml", "from-cwd");
        assert_eq!(
            load_cloud("alice", &env).unwrap().0.region_name.as_deref(),
            Some("from-cwd")
        );
        write("custom/my.yaml", "from-override");
        let custom = dir.path().join("custom/my.yaml").display().to_string();
        let env = env_in(dir.path(), &[("OS_CLIENT_CONFIG_FILE", &custom)]);
        assert_eq!(
            load_cloud("alice", &env).unwrap().0.region_name.as_deref(),
            Some("from-override")
        );
    }

    #[test]
    fn cloud_keys_become_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cwd")).unwrap();
        std::fs::write(dir.path().join("cwd/clouds.yaml"), CLOUDS).unwrap();
        let env = env_in(dir.path(), &[]);
        let (raw, _) = load_cloud("alice", &env).unwrap();
        assert_eq!(raw.auth_url.as_deref(), Some("http://127.0.0.1:5000/v3"));
        assert_eq!(raw.password, Some(Secret::new("yaml-password")));
        assert_eq!(raw.interface.as_deref(), Some("internal"));
        assert_eq!(raw.insecure, Some(true));
        let (raw, _) = load_cloud("other", &env).unwrap();
        assert_eq!(raw.auth_type.as_deref(), Some("v3applicationcredential"));
        assert_eq!(raw.region_name.as_deref(), Some("R2"));

        let err = load_cloud("nobody", &env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"nobody\"") && text.contains("alice, other"),
            "{text}"
        );
        assert!(!text.contains("yaml-password"));
        // Two clouds: no default.
        assert!(load_only_cloud(&env).unwrap().is_none());
    }

    #[test]
    fn secure_yaml_is_merged_and_a_lone_cloud_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cwd")).unwrap();
        std::fs::write(
            dir.path().join("cwd/clouds.yaml"),
            "clouds:\n  solo:\n    auth:\n      auth_url: http://k/v3\n      username: u\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("cwd/secure.yaml"),
            "clouds:\n  solo:\n    auth:\n      password: from-secure\n",
        )
        .unwrap();
        let env = env_in(dir.path(), &[]);
        let (name, raw, _) = load_only_cloud(&env).unwrap().unwrap();
        assert_eq!(name, "solo");
        assert_eq!(raw.username.as_deref(), Some("u"));
        assert_eq!(raw.password, Some(Secret::new("from-secure")));
    }

    #[test]
    fn bad_files_say_where_without_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cwd")).unwrap();
        let env = env_in(dir.path(), &[]);
        let err = load_cloud("alice", &env).unwrap_err();
        assert!(matches!(err, SettingsError::NoCloudsFile { .. }), "{err}");
        assert!(err.to_string().contains("clouds.yaml"), "{err}");
        std::fs::write(
            dir.path().join("cwd/clouds.yaml"),
            "clouds:\n  alice:\n    auth: {password: leaked-value\n",
        )
        .unwrap();
        let err = load_cloud("alice", &env).unwrap_err();
        assert!(
            matches!(err, SettingsError::CloudsFileInvalid { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("leaked-value"), "{err}");
        std::fs::write(
            dir.path().join("cwd/clouds.yaml"),
            "clouds:\n  alice:\n    profile: vexxhost\n",
        )
        .unwrap();
        assert!(
            load_cloud("alice", &env)
                .unwrap_err()
                .to_string()
                .contains("profile")
        );
    }
}
