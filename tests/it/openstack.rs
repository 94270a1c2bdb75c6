//! Real Keystone 30 and Barbican 23 (issue 9): token validation, client
//! authentication, and `verify --key-manager barbican` / `sign
//! --store-certificate` through the real binary.
//!
//! The servers are started once for the whole run by `.ci/openstack.sh up`
//! (which .ci/run calls); the fixture file it writes is named by
//! `PORTCULLIS_TEST_OPENSTACK`. Tests that stop a server hold the
//! exclusive side of [`SERVERS`] and restart it on drop; every other test
//! holds the shared side.

// Helpers outside #[test] functions unwrap too: a failure is the test's.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Value, json};
use time::OffsetDateTime;

use portcullis::clock::{Clock, SystemClock};
use portcullis::openstack::{
    Barbican, BarbicanOptions, Caller, ClientSettings, Interface, KeystoneUnavailable, RawSettings,
    Secret, Session, TokenRejected, TokenValidator, ValidateError, ValidatorOptions,
};
use portcullis::verify::{CertificateId, CertificateSource, SourceError};

use crate::support::{self, testdata};

/// Shared by tests that use the servers, exclusive for tests that stop one
/// (tokio's lock: async tests hold it across awaits, sync tests block on it).
static SERVERS: RwLock<()> = RwLock::const_new(());

pub(crate) async fn shared() -> RwLockReadGuard<'static, ()> {
    SERVERS.read().await
}

pub(crate) async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERVERS.write().await
}

pub(crate) fn shared_blocking() -> RwLockReadGuard<'static, ()> {
    SERVERS.blocking_read()
}

/// The fixture file `.ci/openstack.sh provision` writes.
pub(crate) struct Fixture(Value);

impl Fixture {
    pub(crate) fn str(&self, pointer: &str) -> String {
        self.0
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("fixture has no {pointer}"))
            .to_owned()
    }

    pub(crate) fn auth_url(&self) -> String {
        self.str("/auth_url")
    }

    pub(crate) fn certificate_uuid(&self) -> String {
        let href = self.str("/certificate_href");
        href.rsplit('/').next().unwrap_or_default().to_owned()
    }

    /// `OS_*` variables for a user of the fixture (`alice`, `bob`, `service`).
    pub(crate) fn os_env(&self, user: &str) -> Vec<(String, String)> {
        vec![
            ("OS_AUTH_URL".into(), self.auth_url()),
            ("OS_USERNAME".into(), self.str(&format!("/{user}/username"))),
            ("OS_PASSWORD".into(), self.str(&format!("/{user}/password"))),
            (
                "OS_PROJECT_NAME".into(),
                self.str(&format!("/{user}/project_name")),
            ),
            ("OS_USER_DOMAIN_NAME".into(), "Default".into()),
            ("OS_PROJECT_DOMAIN_NAME".into(), "Default".into()),
            ("OS_REGION_NAME".into(), self.str("/region")),
            ("OS_INTERFACE".into(), "public".into()),
        ]
    }

    fn settings(&self, user: &str) -> ClientSettings {
        let raw = RawSettings {
            auth_url: Some(self.auth_url()),
            username: Some(self.str(&format!("/{user}/username"))),
            password: Some(Secret::new(self.str(&format!("/{user}/password")))),
            project_name: Some(self.str(&format!("/{user}/project_name"))),
            user_domain_name: Some("Default".into()),
            project_domain_name: Some("Default".into()),
            region_name: Some(self.str("/region")),
            ..RawSettings::default()
        };
        ClientSettings::resolve(raw, format!("test user {user}")).expect("fixture settings")
    }

    pub(crate) fn session(&self, user: &str) -> Arc<Session> {
        Arc::new(Session::new(self.settings(user)).expect("session"))
    }

    fn control(&self, action: &str, service: &str) {
        let control = self.0["control"][0].as_str().expect("control script");
        let mut command = Command::new(control);
        command.args([action, service]);
        for (name, value) in self.0["control_env"].as_object().expect("control_env") {
            command.env(name, value.as_str().unwrap_or_default());
        }
        let output = command.output().expect("run the control script");
        assert!(
            output.status.success(),
            "{control} {action} {service} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops `service` until the guard drops (then starts it again, also
    /// when the test fails part-way).
    pub(crate) fn stopped(&self, service: &'static str) -> Stopped<'_> {
        self.control("stop", service);
        Stopped {
            fixture: self,
            service,
        }
    }
}

pub(crate) struct Stopped<'a> {
    fixture: &'a Fixture,
    service: &'static str,
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.fixture.control("start", self.service);
    }
}

/// The fixture, or `None` when the developer opted out with
/// `PORTCULLIS_SKIP_SERVER_TESTS=1`; otherwise a missing fixture fails.
pub(crate) fn fixture() -> Option<Fixture> {
    match std::env::var("PORTCULLIS_TEST_OPENSTACK") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("PORTCULLIS_TEST_OPENSTACK={path}: {err}"));
            Some(Fixture(serde_json::from_str(&text).expect("fixture JSON")))
        }
        Err(_) if std::env::var("PORTCULLIS_SKIP_SERVER_TESTS").as_deref() == Ok("1") => {
            eprintln!("skipped: no Keystone/Barbican (PORTCULLIS_SKIP_SERVER_TESTS=1)");
            None
        }
        Err(_) => panic!(
            "this test needs the real Keystone and Barbican: run `.ci/openstack.sh up` \
             (about 2 minutes the first time) and export the PORTCULLIS_TEST_OPENSTACK=... \
             line it prints, or set PORTCULLIS_SKIP_SERVER_TESTS=1 to skip server tests"
        ),
    }
}

/// Now, shifted by an offset the test can change.
struct ShiftedClock(Mutex<time::Duration>);

impl ShiftedClock {
    fn new() -> Arc<ShiftedClock> {
        Arc::new(ShiftedClock(Mutex::new(time::Duration::ZERO)))
    }

    fn set(&self, offset: time::Duration) {
        *self.0.lock().unwrap() = offset;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *self.0.lock().unwrap()
    }
}

fn validator(fixture: &Fixture, clock: Arc<dyn Clock>) -> TokenValidator {
    TokenValidator::new(
        fixture.session("service"),
        ValidatorOptions::default(),
        clock,
    )
}

pub(crate) async fn token_of(session: &Session) -> Secret {
    session
        .token()
        .await
        .expect("authenticate")
        .secret()
        .clone()
}

/// `DELETE /v3/auth/tokens`: Keystone revokes `token` (its owner may).
pub(crate) async fn revoke(fixture: &Fixture, token: &Secret) {
    let status = reqwest::Client::new()
        .delete(format!("{}/auth/tokens", fixture.auth_url()))
        .header("X-Auth-Token", token.expose())
        .header("X-Subject-Token", token.expose())
        .send()
        .await
        .expect("revoke")
        .status();
    assert_eq!(status.as_u16(), 204, "token revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_token_validates_with_project_and_roles() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    let alice = fixture.session("alice");
    let token = token_of(&alice).await;
    let validator = validator(&fixture, Arc::new(SystemClock));
    let identity = validator
        .validate(token.expose())
        .await
        .expect("alice's token validates");
    assert_eq!(identity.user_name, "alice");
    assert_eq!(
        identity.project_id.as_deref(),
        Some(fixture.str("/alice/project_id").as_str())
    );
    assert_eq!(identity.project_name.as_deref(), Some("demo"));
    assert!(
        identity.roles.iter().any(|role| role == "member"),
        "{:?}",
        identity.roles
    );
    assert!(
        identity.roles.iter().any(|role| role == "reader"),
        "{:?}",
        identity.roles
    );
    assert!(!identity.roles.iter().any(|role| role == "admin"));
    assert!(identity.expires_at > OffsetDateTime::now_utc());
    assert_eq!(
        identity
            .catalog
            .endpoint("key-manager", Interface::Public, Some("RegionOne"))
            .unwrap(),
        fixture.str("/barbican_url")
    );
    let context = identity.request_context();
    assert_eq!(context.project_id, identity.project_id);
    assert!(context.has_role("member") && !context.is_admin());
    // The project's domain (demo lives in Default, whose id is "default").
    assert_eq!(context.domain_id.as_deref(), Some("default"));
    assert!(
        context.keystone.is_none(),
        "an identity alone carries no token"
    );
    assert_eq!(
        validator.www_authenticate(),
        format!("Keystone uri=\"{}\"", fixture.str("/www_authenticate_uri"))
    );
    // bob's token: his own project, not alice's.
    let bob = token_of(&fixture.session("bob")).await;
    let identity = validator
        .validate(bob.expose())
        .await
        .expect("bob's token validates");
    assert_eq!(
        identity.project_id.as_deref(),
        Some(fixture.str("/bob/project_id").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_revoked_and_expired_tokens_are_rejected() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    let validator = validator(&fixture, Arc::new(SystemClock));
    let rejected = |result: Result<_, ValidateError>| match result {
        Err(ValidateError::Rejected(reason)) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(
        rejected(validator.validate("").await),
        TokenRejected::Missing
    );
    assert!(matches!(
        rejected(validator.validate("two words").await),
        TokenRejected::Malformed { .. }
    ));
    assert!(matches!(
        rejected(validator.validate("gAAAAABgarbage-garbage-garbage").await),
        TokenRejected::NotRecognized { .. }
    ));

    // Revoked in Keystone: 404 from Keystone, a rejection here.
    let doomed = token_of(&fixture.session("alice")).await;
    revoke(&fixture, &doomed).await;
    assert!(matches!(
        rejected(validator.validate(doomed.expose()).await),
        TokenRejected::NotRecognized { .. }
    ));

    // Past its expires_at (a clock two hours ahead): expired, whatever Keystone says.
    let fresh = Session::new(fixture.settings("alice")).unwrap();
    let token = token_of(&fresh).await;
    let ahead = ShiftedClock::new();
    ahead.set(time::Duration::hours(2));
    let later = validator_with(&fixture, ahead);
    assert!(matches!(
        rejected(later.validate(token.expose()).await),
        TokenRejected::Expired { .. }
    ));
    // ...and the same token is fine for a validator on the real clock.
    validator.validate(token.expose()).await.expect("valid now");

    // Really expired: a token made from an application credential that
    // expires in a few seconds expires with it (Keystone caps it).
    let alice = fixture.session("alice");
    let owner = alice.token().await.unwrap();
    let expires = OffsetDateTime::now_utc() + time::Duration::seconds(12);
    let expires_text = expires
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let reply: Value = reqwest::Client::new()
        .post(format!(
            "{}/users/{}/application_credentials",
            fixture.auth_url(),
            owner.identity().user_id
        ))
        .header("X-Auth-Token", owner.secret().expose())
        .json(&json!({"application_credential": {
            "name": format!("short-{}", uuid::Uuid::new_v4()), "expires_at": expires_text}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = RawSettings {
        auth_url: Some(fixture.auth_url()),
        application_credential_id: Some(
            reply["application_credential"]["id"]
                .as_str()
                .unwrap()
                .into(),
        ),
        application_credential_secret: Some(Secret::new(
            reply["application_credential"]["secret"].as_str().unwrap(),
        )),
        ..RawSettings::default()
    };
    let short = Session::new(ClientSettings::resolve(raw, "test".into()).unwrap()).unwrap();
    let short_token = short
        .token()
        .await
        .expect("application credential authenticates");
    assert!(
        short_token
            .identity()
            .methods
            .iter()
            .any(|m| m == "application_credential")
    );
    assert!(short_token.identity().expires_at <= expires + time::Duration::seconds(1));
    let identity = validator
        .validate(short_token.secret().expose())
        .await
        .expect("valid now");
    assert_eq!(identity.project_name.as_deref(), Some("demo"));
    let wait = identity.expires_at - OffsetDateTime::now_utc() + time::Duration::seconds(2);
    tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
    // The cached validation ends with the token: Keystone is asked and says no.
    let reason = rejected(validator.validate(short_token.secret().expose()).await);
    assert!(
        matches!(
            reason,
            TokenRejected::NotRecognized { .. } | TokenRejected::Expired { .. }
        ),
        "{reason:?}"
    );
}

fn validator_with(fixture: &Fixture, clock: Arc<dyn Clock>) -> TokenValidator {
    TokenValidator::new(
        Arc::new(Session::with_clock(fixture.settings("service"), clock.clone()).unwrap()),
        ValidatorOptions::default(),
        clock,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_token_is_renewed_before_expiry_and_after_rejection() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    // Expiry: two minutes before the service token expires, a new one is made.
    let clock = ShiftedClock::new();
    let service =
        Arc::new(Session::with_clock(fixture.settings("service"), clock.clone()).unwrap());
    let first = service.token().await.unwrap();
    assert_eq!(
        service.token().await.unwrap().secret(),
        first.secret(),
        "reused while fresh"
    );
    let to_expiry = first.identity().expires_at - OffsetDateTime::now_utc();
    clock.set(to_expiry - time::Duration::seconds(60));
    let second = service.token().await.unwrap();
    assert_ne!(second.secret(), first.secret(), "renewed near expiry");
    clock.set(time::Duration::ZERO);

    // Rejection: the service token is revoked behind the validator's back;
    // the next validation re-authenticates the service and succeeds.
    let validator = TokenValidator::new(service.clone(), ValidatorOptions::default(), clock);
    let alice = token_of(&fixture.session("alice")).await;
    validator.validate(alice.expose()).await.expect("validates");
    let service_token = service.token().await.unwrap();
    revoke(&fixture, service_token.secret()).await;
    let bob = token_of(&fixture.session("bob")).await;
    let identity = validator
        .validate(bob.expose())
        .await
        .expect("validates after re-authentication");
    assert_eq!(identity.user_name, "bob");
    assert_ne!(
        service.token().await.unwrap().secret(),
        service_token.secret()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_down_is_unavailable_not_a_rejection() {
    let Some(fixture) = fixture() else { return };
    let _servers = exclusive().await;
    let validator = validator(&fixture, Arc::new(SystemClock));
    let alice = token_of(&fixture.session("alice")).await;
    validator.validate(alice.expose()).await.expect("validates");
    let signed = SignedImage::new(&fixture);
    {
        let _down = fixture.stopped("keystone");
        // Not known: Keystone cannot be asked, so 503, not 401.
        match validator.validate("gAAAAABgarbage-while-down").await {
            Err(ValidateError::Unavailable(KeystoneUnavailable::Unreachable { .. })) => {}
            other => panic!("expected Keystone unreachable, got {other:?}"),
        }
        // A validator whose service has no token yet cannot authenticate.
        match TokenValidator::new(
            fixture.session("service"),
            ValidatorOptions::default(),
            Arc::new(SystemClock),
        )
        .validate(alice.expose())
        .await
        {
            Err(error @ ValidateError::Unavailable(KeystoneUnavailable::ServiceAuth { .. })) => {
                assert_eq!(error.kind(), "service_auth_failed");
            }
            other => panic!("expected the service's authentication to fail, got {other:?}"),
        }
        // Validated before: served from the cache, as keystonemiddleware does.
        validator
            .validate(alice.expose())
            .await
            .expect("cached validation");
        // The command line cannot authenticate: exit 2, Keystone named.
        let output = signed.verify(&fixture.os_env("alice"), &["--format", "json"]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["error"]["kind"], "keystone_unavailable", "{report}");
        assert!(
            report["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot reach Keystone")
        );
    }
    match validator.validate("gAAAAABgarbage-after").await {
        Err(ValidateError::Rejected(TokenRejected::NotRecognized { .. })) => {}
        other => panic!("expected a rejection once Keystone is back, got {other:?}"),
    }
}

/// A random image signed with the fixture's key (openssl, RSA-PSS
/// SHA-256, maximum salt, as Glance users sign), and its properties.
pub(crate) struct SignedImage {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) image: PathBuf,
    pub(crate) properties: PathBuf,
}

impl SignedImage {
    pub(crate) fn new(fixture: &Fixture) -> SignedImage {
        SignedImage::with_id(fixture, &fixture.certificate_uuid())
    }

    pub(crate) fn with_id(fixture: &Fixture, certificate_id: &str) -> SignedImage {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image.raw");
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&image, data).unwrap();
        let signature = dir.path().join("image.sig");
        let status = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:-1",
                "-sign",
            ])
            .arg(fixture.str("/key_path"))
            .arg("-out")
            .arg(&signature)
            .arg(&image)
            .status()
            .expect("openssl");
        assert!(status.success());
        let properties = dir.path().join("properties.json");
        let b64 = portcullis::verify::base64::encode(&std::fs::read(&signature).unwrap());
        std::fs::write(
            &properties,
            json!({
                "img_signature": b64,
                "img_signature_hash_method": "SHA-256",
                "img_signature_key_type": "RSA-PSS",
                "img_signature_certificate_uuid": certificate_id,
            })
            .to_string(),
        )
        .unwrap();
        SignedImage {
            dir,
            image,
            properties,
        }
    }

    fn verify(&self, env: &[(String, String)], extra: &[&str]) -> std::process::Output {
        let mut command = cli(self.dir.path(), env);
        command
            .arg("verify")
            .arg(&self.image)
            .arg("--properties")
            .arg(&self.properties)
            .args(["--key-manager", "barbican"])
            .args(extra);
        command.output().unwrap()
    }
}

impl SignedImage {
    /// `verify --compat cursive --format json` against certificate `id`,
    /// which must be rejected (exit 1); the JSON error.
    fn cursive_rejection(&self, env: &[(String, String)], id: &str) -> Value {
        let output = self.verify(
            env,
            &["--cert-uuid", id, "--compat", "cursive", "--format", "json"],
        );
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        report["error"].clone()
    }
}

/// The real binary with nothing from this process's environment but PATH:
/// no OS_*, and HOME and the working directory in `dir`, so no
/// clouds.yaml of the developer's is read.
pub(crate) fn cli(dir: &Path, env: &[(String, String)]) -> assert_cmd::Command {
    let mut command = support::portcullis();
    command.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command.env("HOME", dir.join("home")).current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

pub(crate) fn text(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn env_with(base: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = base;
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

#[test]
fn verify_reads_a_certificate_the_openstack_cli_stored_with_os_variables() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let signed = SignedImage::new(&fixture);
    let output = signed.verify(&fixture.os_env("alice"), &["--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verified"], true);
    let subject = report["signer"]["subject"].as_str().unwrap();
    assert!(subject.contains("CN=alice signing"), "{subject}");
    // The certificate id may be the secret's full href, as Barbican prints it.
    let by_href = SignedImage::with_id(&fixture, &fixture.str("/certificate_href"));
    let output = by_href.verify(&fixture.os_env("alice"), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("verified: "));
    // Flags as openstackclient names them override OS_* (a wrong password in the environment).
    let env = env_with(
        fixture.os_env("alice"),
        &[("OS_PASSWORD", "wrong-password")],
    );
    let password = fixture.str("/alice/password");
    let output = signed.verify(&env, &["--os-password", &password]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn verify_with_os_cloud_and_clouds_yaml() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let signed = SignedImage::new(&fixture);
    let clouds = format!(
        "clouds:\n  alice:\n    auth:\n      auth_url: {}\n      username: alice\n      password: {}\n      \
         project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: {}\n    interface: public\n    identity_api_version: 3\n",
        fixture.auth_url(),
        fixture.str("/alice/password"),
        fixture.str("/region")
    );
    // OS_CLIENT_CONFIG_FILE names the file.
    let elsewhere = signed.dir.path().join("elsewhere.yaml");
    std::fs::write(&elsewhere, &clouds).unwrap();
    let env = vec![
        ("OS_CLOUD".to_owned(), "alice".to_owned()),
        (
            "OS_CLIENT_CONFIG_FILE".to_owned(),
            elsewhere.display().to_string(),
        ),
    ];
    let output = signed.verify(&env, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // ~/.config/openstack/clouds.yaml, with --os-cloud.
    let user_dir = signed.dir.path().join("home/.config/openstack");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(user_dir.join("clouds.yaml"), &clouds).unwrap();
    let output = signed.verify(&[], &["--os-cloud", "alice"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // A cloud that is not there: exit 2, the clouds it has named.
    let output = signed.verify(&[("OS_CLOUD".into(), "carol".into())], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"carol\"") && stderr.contains("alice"),
        "{stderr}"
    );
}

#[test]
fn a_user_without_access_is_refused_naming_the_certificate() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let signed = SignedImage::new(&fixture);
    let output = signed.verify(&fixture.os_env("bob"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("rejected: certificate "), "{stderr}");
    assert!(stderr.contains(&fixture.certificate_uuid()), "{stderr}");
    assert!(stderr.contains("[certificate_forbidden]"), "{stderr}");
    assert!(
        stderr.contains("not allowed"),
        "Barbican's reason: {stderr}"
    );
    // cursive (castellan's KeyManagerError) reports it as unretrievable.
    let output = signed.verify(&fixture.os_env("bob"), &["--compat", "cursive"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "Unable to retrieve certificate with ID: {}",
            fixture.certificate_uuid()
        )),
        "{}",
        text(&output)
    );
}

#[test]
fn secrets_that_are_not_certificates_or_not_there_are_refused_as_cursive_refuses_them() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let signed = SignedImage::new(&fixture);
    let private = fixture.str("/private_key_href");
    let error = signed.cursive_rejection(&fixture.os_env("alice"), &private);
    assert_eq!(error["kind"], "invalid_certificate", "{error}");
    assert_eq!(
        error["cursive_message"],
        "Signature verification for the image failed: Invalid certificate format: PKCS8."
    );
    assert!(
        error["message"].as_str().unwrap().contains("\"private\""),
        "{error}"
    );

    let missing = uuid::Uuid::new_v4().to_string();
    let error = signed.cursive_rejection(&fixture.os_env("alice"), &missing);
    assert_eq!(error["kind"], "certificate_not_found", "{error}");
    assert_eq!(
        error["cursive_message"],
        format!(
            "Signature verification for the image failed: Certificate not found with ID: {missing}."
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barbican_stopped_fails_closed_and_recovers() {
    let Some(fixture) = fixture() else { return };
    let _servers = exclusive().await;
    let signed = SignedImage::new(&fixture);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let barbican = Barbican::new(&Default::default(), BarbicanOptions::default(), clock).unwrap();
    let alice = fixture.session("alice");
    let bob = fixture.session("bob");
    let id = fixture.certificate_uuid();
    // Fetched once: cached for alice (her user and project), not for bob.
    let fetched = barbican
        .fetch_certificates(&Caller::Session(&alice), &[&id])
        .await
        .unwrap();
    let parsed = CertificateId::parse(&id).unwrap();
    assert!(fetched.certificate(&parsed).is_ok());
    let refused = barbican
        .fetch_certificates(&Caller::Session(&bob), &[&id])
        .await
        .unwrap();
    assert!(matches!(
        refused.certificate(&parsed),
        Err(SourceError::Forbidden { .. })
    ));
    bob.token().await.unwrap();
    {
        let _down = fixture.stopped("barbican");
        let output = signed.verify(&fixture.os_env("alice"), &["--format", "json"]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["verified"], false);
        assert_eq!(
            report["error"]["kind"], "certificate_unavailable",
            "{report}"
        );
        let message = report["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&id) && message.contains("cannot reach Barbican"),
            "{message}"
        );
        let output = signed.verify(&fixture.os_env("alice"), &[]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).starts_with("error: "),
            "{}",
            text(&output)
        );
        // The cache answers for alice; bob, never cached, cannot be answered.
        let cached = barbican
            .fetch_certificates(&Caller::Session(&alice), &[&id])
            .await
            .unwrap();
        assert!(cached.certificate(&parsed).is_ok());
        match barbican
            .fetch_certificates(&Caller::Session(&bob), &[&id])
            .await
        {
            Err(error) => assert_eq!(error.kind(), "certificate_unavailable"),
            Ok(_) => panic!("bob's fetch succeeded with Barbican down"),
        }
    }
    let output = signed.verify(&fixture.os_env("alice"), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "after the restart: {}",
        text(&output)
    );
}

#[test]
fn sign_store_certificate_then_verify_round_trip() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ec.key");
    let cert = dir.path().join("ec.crt");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-sha384",
            "-days",
            "30",
        ])
        .args(["-subj", "/CN=round trip"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let image = dir.path().join("image.raw");
    std::fs::write(&image, vec![7u8; 123_457]).unwrap();
    let output = cli(dir.path(), &fixture.os_env("alice"))
        .arg("sign")
        .arg(&image)
        .arg("--key")
        .arg(&key)
        .arg("--store-certificate")
        .arg(&cert)
        .args(["--secret-name", "round-trip", "--hash-method", "SHA-384"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let properties: Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = properties["img_signature_certificate_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(properties["img_signature_key_type"], "ECC_SECP384R1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("/v1/secrets/{id}")), "{stderr}");
    let props = dir.path().join("properties.json");
    std::fs::write(&props, properties.to_string()).unwrap();
    let verify = |user: &str| {
        cli(dir.path(), &fixture.os_env(user))
            .arg("verify")
            .arg(&image)
            .arg("--properties")
            .arg(&props)
            .args(["--key-manager", "barbican"])
            .output()
            .unwrap()
    };
    let output = verify("alice");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(verify("bob").status.code(), Some(1));
    // What was stored is what the openstack CLI stores: a certificate
    // secret whose payload is the PEM.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = fixture.session("alice");
    let token = runtime.block_on(token_of(&session));
    let base = format!("{}/v1/secrets/{id}", fixture.str("/barbican_url"));
    let client = reqwest::Client::new();
    let metadata: Value = runtime
        .block_on(async {
            client
                .get(&base)
                .header("X-Auth-Token", token.expose())
                .send()
                .await?
                .json()
                .await
        })
        .unwrap();
    assert_eq!(metadata["secret_type"], "certificate");
    assert_eq!(metadata["name"], "round-trip");
    assert_eq!(
        metadata["content_types"]["default"],
        "application/octet-stream"
    );
    let payload = runtime
        .block_on(async {
            client
                .get(format!("{base}/payload"))
                .header("X-Auth-Token", token.expose())
                .header("Accept", "application/octet-stream")
                .send()
                .await?
                .text()
                .await
        })
        .unwrap();
    assert!(
        payload.starts_with("-----BEGIN CERTIFICATE-----\n"),
        "{payload}"
    );
    let der = |pem: &str| {
        let output = Command::new("openssl")
            .args(["x509", "-outform", "DER"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(pem.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        output.stdout
    };
    assert_eq!(der(&payload), der(&std::fs::read_to_string(&cert).unwrap()));

    // A certificate that does not hold the key's public key is not stored.
    let other = dir.path().join("other.crt");
    std::fs::copy(fixture.str("/certificate_path"), &other).unwrap();
    let output = cli(dir.path(), &fixture.os_env("alice"))
        .arg("sign")
        .arg(&image)
        .arg("--key")
        .arg(&key)
        .arg("--store-certificate")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    // JSON, sign's default format: the failure is one document on stdout.
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "key_mismatch", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not fit the key"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_certificates_of_a_chain_may_be_barbican_secrets() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared().await;
    let alice = fixture.session("alice");
    let barbican = Barbican::new(
        &Default::default(),
        BarbicanOptions::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let mut ids = Vec::new();
    for name in ["root-ca", "inter-ca", "chain-leaf"] {
        let pem = std::fs::read(testdata().join(format!("certs/{}.pem", support::cert_id(name))))
            .unwrap();
        let der = pem_der(&pem);
        let stored = barbican
            .store_certificate(&Caller::Session(&alice), &format!("chain {name}"), &der)
            .await
            .expect("store");
        ids.push(stored.uuid.hyphenated().to_string());
    }
    let signature = support::signature_b64("chainleaf.sha256");
    let run = |trusted: &[&str]| {
        let mut command = cli(Path::new("/"), &fixture.os_env("alice"));
        command
            .env("PORTCULLIS_NOW", support::FIXTURE_NOW)
            .arg("verify")
            .arg(testdata().join("signatures/data.bin"))
            .args(["--key-manager", "barbican", "--signature", &signature])
            .args([
                "--hash-method",
                "SHA-256",
                "--key-type",
                "RSA-PSS",
                "--cert-uuid",
                &ids[2],
            ]);
        for id in trusted {
            command.args(["--trusted-cert", id]);
        }
        command.output().unwrap()
    };
    let output = run(&[&ids[0], &ids[1]]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("chain: "),
        "{}",
        text(&output)
    );
    // Only the intermediate trusted: no anchor, rejected.
    let output = run(&[&ids[1]]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("untrusted_chain"),
        "{}",
        text(&output)
    );
}

/// The DER of the first PEM block of `pem` (the fixtures are PEM files).
fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    base64_decode(&body)
}

fn base64_decode(text: &str) -> Vec<u8> {
    portcullis::verify::base64::decode_strict(text).expect("base64")
}

#[test]
fn wrong_credentials_are_a_clear_error_and_no_secret_is_ever_printed() {
    let Some(fixture) = fixture() else { return };
    let _servers = shared_blocking();
    let signed = SignedImage::new(&fixture);
    let alice_password = fixture.str("/alice/password");
    let bob_password = fixture.str("/bob/password");
    let mut outputs = Vec::new();
    // Wrong password: exit 2, Keystone's refusal, never the password.
    let env = env_with(
        fixture.os_env("alice"),
        &[("OS_PASSWORD", "Wr0ng-Pa55-zz9")],
    );
    let output = signed.verify(&env, &["-vvv"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refused the credentials") && stderr.contains("[keystone_auth_failed]"),
        "{stderr}"
    );
    outputs.push(text(&output));
    outputs.push(text(&signed.verify(&fixture.os_env("alice"), &["-vvv"])));
    outputs.push(text(
        &signed.verify(&fixture.os_env("bob"), &["-vvv", "--format", "json"]),
    ));
    outputs.push(text(&signed.verify(
        &fixture.os_env("alice"),
        &["-vvv", "--os-password", &alice_password],
    )));
    let token = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(token_of(&fixture.session("alice")))
    };
    let token_env = vec![
        ("OS_AUTH_URL".to_owned(), fixture.auth_url()),
        ("OS_TOKEN".to_owned(), token.expose().to_owned()),
        ("OS_PROJECT_NAME".to_owned(), "demo".to_owned()),
        ("OS_PROJECT_DOMAIN_NAME".to_owned(), "Default".to_owned()),
    ];
    let output = signed.verify(&token_env, &["-vvv"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "token auth: {}",
        text(&output)
    );
    outputs.push(text(&output));
    let output = cli(signed.dir.path(), &fixture.os_env("alice"))
        .args(["-vvv", "sign"])
        .arg(&signed.image)
        .arg("--key")
        .arg(fixture.str("/key_path"))
        .arg("--store-certificate")
        .arg(fixture.str("/certificate_path"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    outputs.push(text(&output));
    let all = outputs.join("\n");
    assert!(
        all.contains("DEBUG") || all.contains("TRACE"),
        "-vvv logs: {all}"
    );
    for secret in [
        alice_password.as_str(),
        bob_password.as_str(),
        "Wr0ng-Pa55-zz9",
        token.expose(),
    ] {
        assert!(
            !all.contains(secret),
            "a secret appears in the output:\n{all}"
        );
    }
    // Fernet tokens start with gAAAAA: none may appear, whoever's.
    assert!(
        !all.contains("gAAAAA"),
        "a token appears in the output:\n{all}"
    );
}

#[test]
fn verify_without_a_key_manager_says_what_to_give() {
    // verify without --cert-dir or --key-manager: a usage error saying what to give.
    let output = support::portcullis()
        .arg("verify")
        .arg(testdata().join("sample/sample.qcow2"))
        .arg("--properties")
        .arg(testdata().join("sample/properties.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--key-manager barbican"));
}

#[test]
fn bad_properties_are_judged_before_anyone_is_asked() {
    // No server needed: Keystone at port 1 would fail the run if asked.
    let dir = tempfile::tempdir().unwrap();
    let nowhere = vec![
        ("OS_AUTH_URL".to_owned(), "http://127.0.0.1:1/v3".to_owned()),
        ("OS_USERNAME".to_owned(), "alice".to_owned()),
        ("OS_PASSWORD".to_owned(), "irrelevant".to_owned()),
    ];
    let run = |extra: &[&str]| {
        cli(dir.path(), &nowhere)
            .arg("verify")
            .arg(testdata().join("signatures/data.bin"))
            .args(["--key-manager", "barbican", "--format", "json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let signature = support::signature_b64("rsa2048.sha256");
    let output = run(&[
        "--signature",
        &signature,
        "--hash-method",
        "SHA-256",
        "--key-type",
        "RSA-PSS",
        "--cert-uuid",
        "not-a-uuid",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["error"]["kind"], "invalid_certificate_id",
        "{report}"
    );
    let output = run(&["--signature", &signature]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "missing_property", "{report}");
    // Settings are checked first of all: no Keystone URL anywhere.
    let output = cli(dir.path(), &[])
        .arg("verify")
        .arg(testdata().join("signatures/data.bin"))
        .args(["--key-manager", "barbican", "--signature", &signature])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OS_AUTH_URL") && stderr.contains("[openstack_settings]"),
        "{stderr}"
    );
}
