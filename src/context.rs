//! Who is asking: the request context every repository call carries.
//!
//! Glance builds this from Keystone's headers; the CLI builds a local admin
//! context unless `--project`/`--roles` say otherwise; the server builds it
//! per request (`api::auth`: headers, a token file, or a Keystone token).
//! Layers read it; nothing here does IO.

use std::sync::Arc;

use crate::openstack::AuthToken;

/// The caller of a repository operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The caller's project (Glance's `project_id`); images it creates are owned by it.
    pub project_id: Option<String>,
    /// The caller's user id, for notifications and logs.
    pub user_id: Option<String>,
    /// Role names, lower-case (`admin`, `member`, `reader`, ...).
    pub roles: Vec<String>,
    /// The domain the caller acts in (oslo.context's `domain_id`): a
    /// domain-scoped token's domain, else its project's domain.
    pub domain_id: Option<String>,
    /// The Keystone token the caller authenticated with, and its document
    /// (catalog included), so that services called on the caller's behalf
    /// (Barbican, for certificates) see the caller's own token, never the
    /// server's. `None` outside Keystone authentication. Its `Debug`
    /// redacts the token.
    pub keystone: Option<Arc<AuthToken>>,
}

impl RequestContext {
    /// The context the CLI uses by default: a local administrator without a project.
    pub fn local_admin() -> RequestContext {
        RequestContext {
            roles: vec!["admin".to_owned()],
            ..RequestContext::default()
        }
    }

    /// A context for `project_id` with the given roles.
    pub fn for_project(project_id: impl Into<String>, roles: &[&str]) -> RequestContext {
        RequestContext {
            project_id: Some(project_id.into()),
            roles: roles.iter().map(|role| role.to_ascii_lowercase()).collect(),
            ..RequestContext::default()
        }
    }

    /// Whether the caller holds `role` (case-insensitive).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|held| held.eq_ignore_ascii_case(role))
    }

    /// Glance's `context_is_admin`: the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_is_a_role() {
        assert!(RequestContext::local_admin().is_admin());
        let member = RequestContext::for_project("p1", &["Member"]);
        assert!(member.has_role("member"));
        assert!(!member.is_admin());
    }
}
