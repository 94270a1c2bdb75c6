//! The policy layer: role-based rules, in oslo.policy's check-string syntax,
//! with Glance's modern defaults (glance/policies/image.py, base.py).
//!
//! It owns the rule language (a subset of oslo.policy: `@`, `!`,
//! `role:NAME`, `rule:NAME`, generic `KEY:VALUE` / `'literal':%(attr)s`
//! checks, `and`, `or`, `not`, parentheses), the defaults, and the mapping of
//! repository operations to Glance's rule names (add_image, get_image,
//! get_images, modify_image, publicize_image, communitize_image,
//! delete_image, upload_image, download_image, deactivate, reactivate,
//! add_member, get_member, get_members, modify_member, delete_member).
//! It must not decide visibility or ownership (the authorization layer does)
//! nor look at properties (property protection does).
//!
//! Differences from oslo.policy, all failing closed: an unknown rule name is
//! false; a generic check where either side is missing (no project, no
//! owner) is false rather than comparing the text "None" to "None"; a check
//! string that does not parse is a configuration error, not a silent false;
//! rules that refer to each other in a cycle deny the whole decision (a
//! `not` above the cycle cannot turn it into an allow).
//! Roles imply each other as in Keystone's default role hierarchy
//! (admin ⇒ member ⇒ reader), because Keystone puts implied roles in the
//! token and the CLI's `--roles` does not.

use std::collections::BTreeMap;

use super::{
    Change, ChangeKind, Error, ImageRepo, ListQuery, MemberRepo, NewImage, NewMember,
    UploadAllowance, delegate_stored,
};
use crate::context::RequestContext;
use crate::image::{Image, ImageId, Member, MemberStatus, Status, Visibility};

/// Glance's default rules (modern, secure-RBAC defaults).
const GLANCE_DEFAULTS: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("default", ""),
    (
        "add_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
    ),
    (
        "delete_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "get_image",
        "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
    ),
    (
        "get_images",
        "rule:context_is_admin or (role:reader and project_id:%(project_id)s)",
    ),
    (
        "modify_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    ("publicize_image", "rule:context_is_admin"),
    (
        "communitize_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "download_image",
        "rule:context_is_admin or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))",
    ),
    (
        "upload_image",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "deactivate",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "reactivate",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "add_member",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "delete_member",
        "rule:context_is_admin or (role:member and project_id:%(project_id)s)",
    ),
    (
        "get_member",
        "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    ),
    (
        "get_members",
        "rule:context_is_admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)",
    ),
    (
        "modify_member",
        "rule:context_is_admin or (role:member and project_id:%(member_id)s)",
    ),
];

/// How deeply checks may nest (rule references, `and`/`or`/`not`) before
/// a check is undecidable and denies: a cycle of rules must not recurse forever.
const MAX_RULE_DEPTH: usize = 32;

/// Keystone's default implied roles: holding the key grants the values.
const IMPLIED_ROLES: &[(&str, &[&str])] =
    &[("admin", &["member", "reader"]), ("member", &["reader"])];

/// A parsed rule set: rule name → check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    rules: BTreeMap<String, Check>,
}

impl Rules {
    /// Glance's default rules.
    pub fn glance_defaults() -> Rules {
        let mut rules = Rules {
            rules: BTreeMap::new(),
        };
        for (name, check) in GLANCE_DEFAULTS {
            // The defaults are constants covered by a unit test; a parse
            // failure here would be a bug, so it denies rather than panics.
            let parsed = parse(check).unwrap_or(Check::False);
            rules.rules.insert((*name).to_owned(), parsed);
        }
        rules
    }

    /// Sets (or replaces) rule `name` to the check string `check`.
    ///
    /// Fails when `check` does not parse.
    pub fn set(&mut self, name: &str, check: &str) -> Result<(), ParseError> {
        let parsed = parse(check)?;
        self.rules.insert(name.to_owned(), parsed);
        Ok(())
    }

    /// Whether `ctx` may perform `action` on `target`. An action without a
    /// rule falls back to the `default` rule, as oslo.policy does.
    pub fn allows(&self, action: &str, target: &Target, ctx: &RequestContext) -> bool {
        let credentials = Credentials::from(ctx);
        match self.rules.get(action).or_else(|| self.rules.get("default")) {
            // An undecidable check (rules referring to each other in a cycle)
            // denies as a whole: deciding it inside would let a `not` turn
            // the cut-off into an allow.
            Some(check) => self.eval(check, target, &credentials, 0).unwrap_or(false),
            None => false,
        }
    }

    /// `allows`, as a `Result` naming the refused action.
    ///
    /// Fails with [`Error::Forbidden`] when the rule denies.
    pub fn enforce(
        &self,
        action: &str,
        target: &Target,
        ctx: &RequestContext,
        image: Option<ImageId>,
    ) -> Result<(), Error> {
        if self.allows(action, target, ctx) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("complete {action} action"), image))
        }
    }

    /// Evaluates `check`; `None` when it cannot be decided because rule
    /// references nest deeper than [`MAX_RULE_DEPTH`] (a cycle).
    fn eval(
        &self,
        check: &Check,
        target: &Target,
        creds: &Credentials,
        depth: usize,
    ) -> Option<bool> {
        if depth > MAX_RULE_DEPTH {
            return None;
        }
        let next = depth + 1;
        match check {
            Check::True => Some(true),
            Check::False => Some(false),
            Check::Rule(name) => match self.rules.get(name) {
                Some(inner) => self.eval(inner, target, creds, next),
                // An unknown rule is false, as in oslo.policy.
                None => Some(false),
            },
            Check::Role(role) => Some(match substitute(role, target) {
                Some(role) => creds
                    .roles
                    .iter()
                    .any(|held| held.eq_ignore_ascii_case(&role)),
                None => false,
            }),
            Check::Generic { kind, value } => {
                let Some(wanted) = substitute(value, target) else {
                    return Some(false);
                };
                Some(match kind {
                    Kind::Literal(literal) => *literal == wanted,
                    Kind::Credential(key) => creds.get(key).is_some_and(|held| held == wanted),
                })
            }
            Check::And(all) => {
                for inner in all {
                    if !self.eval(inner, target, creds, next)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Check::Or(any) => {
                for inner in any {
                    if self.eval(inner, target, creds, next)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Check::Not(inner) => self.eval(inner, target, creds, next).map(|value| !value),
        }
    }
}

/// The attributes of the thing a rule is checked against (Glance's
/// `ImageTarget`: `project_id` and `owner` are the image's owner; `member_id`
/// is the caller's project when the image is `shared` and the caller does
/// not own it, as glance/db/__init__.py sets the image's `member`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    values: BTreeMap<String, String>,
}

impl Target {
    /// The target for an operation on `image` (without `member_id`).
    pub fn image(image: &Image) -> Target {
        let mut target = Target::default();
        target.set("id", image.id.to_string());
        if let Some(owner) = &image.owner {
            target.set("project_id", owner.clone());
            target.set("owner", owner.clone());
        }
        target.set("visibility", image.visibility.as_str());
        target.set("status", image.status.as_str());
        if let Some(name) = &image.name {
            target.set("name", name.clone());
        }
        target
    }

    /// The target for an operation by `ctx` on `image`: [`Target::image`]
    /// plus `member_id`.
    pub fn image_for(image: &Image, ctx: &RequestContext) -> Target {
        let mut target = Target::image(image);
        if let Some(project) = &ctx.project_id
            && image.visibility == Visibility::Shared
            && image.owner.as_ref() != Some(project)
        {
            target.set("member_id", project.clone());
        }
        target
    }

    /// The target for listing: the caller's own project.
    pub fn project(ctx: &RequestContext) -> Target {
        let mut target = Target::default();
        if let Some(project) = &ctx.project_id {
            target.set("project_id", project.clone());
            target.set("owner", project.clone());
        }
        target
    }

    /// Sets one attribute.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_owned(), value.into());
    }
}

/// What the caller holds: project, user, roles (with implied roles added).
struct Credentials {
    project_id: Option<String>,
    user_id: Option<String>,
    roles: Vec<String>,
    is_admin: bool,
}

impl From<&RequestContext> for Credentials {
    fn from(ctx: &RequestContext) -> Self {
        let mut roles: Vec<String> = ctx
            .roles
            .iter()
            .map(|role| role.to_ascii_lowercase())
            .collect();
        let mut index = 0;
        while index < roles.len() {
            for (holder, implied) in IMPLIED_ROLES {
                if roles[index] == *holder {
                    for role in *implied {
                        if !roles.iter().any(|held| held == role) {
                            roles.push((*role).to_owned());
                        }
                    }
                }
            }
            index += 1;
        }
        Credentials {
            project_id: ctx.project_id.clone(),
            user_id: ctx.user_id.clone(),
            is_admin: ctx.is_admin(),
            roles,
        }
    }
}

impl Credentials {
    fn get(&self, key: &str) -> Option<String> {
        match key {
            "project_id" | "tenant" | "project" => self.project_id.clone(),
            "user_id" | "user" => self.user_id.clone(),
            "is_admin" => Some(if self.is_admin { "True" } else { "False" }.to_owned()),
            _ => None,
        }
    }
}

/// Replaces `%(name)s` with the target's attribute; `None` when one is missing.
fn substitute(template: &str, target: &Target) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(")s")?;
        out.push_str(target.values.get(&after[..end])?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// A parsed check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    True,
    False,
    Rule(String),
    Role(String),
    Generic { kind: Kind, value: String },
    And(Vec<Check>),
    Or(Vec<Check>),
    Not(Box<Check>),
}

/// The left side of a generic check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A quoted literal (`'public'`) or number/boolean, compared as text.
    Literal(String),
    /// A credential key (`project_id`, `user_id`, `is_admin`).
    Credential(String),
}

/// A check string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A token that is neither a keyword, a parenthesis, `@`, `!` nor `kind:match`.
    #[error("{token:?} is not a check (expected @, !, role:NAME, rule:NAME or KEY:VALUE)")]
    BadCheck {
        /// The token.
        token: String,
    },
    /// Unbalanced parentheses or a dangling `and`/`or`/`not`.
    #[error("check string {text:?} is malformed: {reason}")]
    Malformed {
        /// The whole check string.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A credential key this implementation does not know.
    #[error(
        "{kind:?} is not a known credential (expected project_id, user_id, is_admin or a quoted literal)"
    )]
    UnknownCredential {
        /// The key.
        kind: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(Check),
}

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        let trimmed = word.trim_start_matches('(');
        for _ in 0..(word.len() - trimmed.len()) {
            tokens.push(Token::Open);
        }
        if trimmed.is_empty() {
            continue;
        }
        let core = trimmed.trim_end_matches(')');
        let closing = trimmed.len() - core.len();
        if !core.is_empty() {
            tokens.push(match core.to_ascii_lowercase().as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Check(parse_check(core)?),
            });
        }
        for _ in 0..closing {
            tokens.push(Token::Close);
        }
    }
    Ok(tokens)
}

fn parse_check(token: &str) -> Result<Check, ParseError> {
    match token {
        "@" => return Ok(Check::True),
        "!" => return Ok(Check::False),
        _ => {}
    }
    let Some((kind, value)) = token.split_once(':') else {
        return Err(ParseError::BadCheck {
            token: token.to_owned(),
        });
    };
    if value.is_empty() {
        return Err(ParseError::BadCheck {
            token: token.to_owned(),
        });
    }
    Ok(match kind {
        "rule" => Check::Rule(value.to_owned()),
        "role" => Check::Role(value.to_owned()),
        _ => Check::Generic {
            kind: parse_kind(kind)?,
            value: value.to_owned(),
        },
    })
}

fn parse_kind(kind: &str) -> Result<Kind, ParseError> {
    let quoted = |quote: char| kind.len() >= 2 && kind.starts_with(quote) && kind.ends_with(quote);
    if quoted('\'') || quoted('"') {
        return Ok(Kind::Literal(kind[1..kind.len() - 1].to_owned()));
    }
    if kind.parse::<i64>().is_ok() || kind == "True" || kind == "False" {
        return Ok(Kind::Literal(kind.to_owned()));
    }
    match kind {
        "project_id" | "tenant" | "project" | "user_id" | "user" | "is_admin" => {
            Ok(Kind::Credential(kind.to_owned()))
        }
        _ => Err(ParseError::UnknownCredential {
            kind: kind.to_owned(),
        }),
    }
}

/// Parses a check string; the empty string is "always".
fn parse(text: &str) -> Result<Check, ParseError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Ok(Check::True);
    }
    let mut parser = Parser {
        tokens: &tokens,
        position: 0,
        nesting: 0,
        text,
    };
    let check = parser.or()?;
    if parser.position != tokens.len() {
        return Err(parser.malformed("unexpected token after a complete expression"));
    }
    Ok(check)
}

struct Parser<'a> {
    tokens: &'a [Token],
    position: usize,
    /// Open parentheses and `not`s around the current position: bounded so
    /// that a hostile or broken policy file cannot overflow the stack.
    nesting: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn malformed(&self, reason: &'static str) -> ParseError {
        ParseError::Malformed {
            text: self.text.to_owned(),
            reason,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn or(&mut self) -> Result<Check, ParseError> {
        let mut any = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.position += 1;
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Check::Or(any)
        })
    }

    fn and(&mut self) -> Result<Check, ParseError> {
        let mut all = vec![self.not()?];
        while self.peek() == Some(&Token::And) {
            self.position += 1;
            all.push(self.not()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Check::And(all)
        })
    }

    /// Enters one level of nesting; fails past [`MAX_RULE_DEPTH`] (deeper
    /// checks could never be evaluated anyway).
    fn descend(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_RULE_DEPTH {
            return Err(self.malformed("parentheses and 'not' nest too deeply"));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Check, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.position += 1;
            self.descend()?;
            let inner = self.not()?;
            self.nesting -= 1;
            return Ok(Check::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Check, ParseError> {
        match self.tokens.get(self.position).cloned() {
            Some(Token::Open) => {
                self.position += 1;
                self.descend()?;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(self.malformed("missing closing parenthesis"));
                }
                self.position += 1;
                self.nesting -= 1;
                Ok(inner)
            }
            Some(Token::Check(check)) => {
                self.position += 1;
                Ok(check)
            }
            Some(Token::Close) => Err(self.malformed("unexpected closing parenthesis")),
            Some(Token::And | Token::Or | Token::Not) => {
                Err(self.malformed("an operator is missing its operand"))
            }
            None => Err(self.malformed("the expression ends early")),
        }
    }
}

/// The policy layer: enforces the rules before delegating.
#[derive(Debug, Clone)]
pub struct PolicyRepo<R> {
    inner: R,
    rules: Rules,
}

impl<R> PolicyRepo<R> {
    /// Wraps `inner`, enforcing `rules`.
    pub fn new(inner: R, rules: Rules) -> PolicyRepo<R> {
        PolicyRepo { inner, rules }
    }

    /// The wrapped repository.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The extra rule a visibility requires (Glance: publicize_image,
    /// communitize_image).
    fn visibility_rule(visibility: Visibility) -> Option<&'static str> {
        match visibility {
            Visibility::Public => Some("publicize_image"),
            Visibility::Community => Some("communitize_image"),
            Visibility::Private | Visibility::Shared => None,
        }
    }
}

/// The rule a change needs besides those its visibility needs.
fn change_rule(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Update => "modify_image",
        ChangeKind::ClaimUpload | ChangeKind::CommitUpload | ChangeKind::RollbackUpload => {
            "upload_image"
        }
        ChangeKind::Deactivate => "deactivate",
        ChangeKind::Reactivate => "reactivate",
    }
}

impl<R> PolicyRepo<R> {
    /// `get_image` first, as Glance looks an image up before acting on it;
    /// its refusal hides the image ([`Error::NotFound`]).
    fn require_readable(&self, ctx: &RequestContext, image: &Image) -> Result<Target, Error> {
        let target = Target::image_for(image, ctx);
        if self.rules.allows("get_image", &target, ctx) {
            Ok(target)
        } else {
            Err(Error::NotFound { id: image.id })
        }
    }

    /// `get_image`, then each of `rules` on `image`.
    fn enforce_on(&self, ctx: &RequestContext, image: &Image, rules: &[&str]) -> Result<(), Error> {
        let target = self.require_readable(ctx, image)?;
        for rule in rules {
            self.rules.enforce(rule, &target, ctx, Some(image.id))?;
        }
        Ok(())
    }
}

delegate_stored!(PolicyRepo);

impl<R: ImageRepo> ImageRepo for PolicyRepo<R> {
    async fn get(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.get(ctx, id).await?;
        self.rules
            .enforce("get_image", &Target::image_for(&image, ctx), ctx, Some(id))?;
        Ok(image)
    }

    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<Vec<Image>, Error> {
        self.rules
            .enforce("get_images", &Target::project(ctx), ctx, None)?;
        self.inner.list(ctx, query).await
    }

    async fn add(&self, ctx: &RequestContext, new: &NewImage) -> Result<Image, Error> {
        let image = &new.image;
        let target = Target::image(image);
        self.rules
            .enforce("add_image", &target, ctx, Some(image.id))?;
        if let Some(rule) = Self::visibility_rule(image.visibility) {
            self.rules.enforce(rule, &target, ctx, Some(image.id))?;
        }
        self.inner.add(ctx, new).await
    }

    async fn save(&self, ctx: &RequestContext, change: &Change) -> Result<Image, Error> {
        // Rules are checked against the stored record (`before`): the caller
        // must not gain rights by editing the owner it sends.
        let before = &change.before;
        self.enforce_on(ctx, before, &[change_rule(change.kind)])?;
        if change.after.visibility != before.visibility
            && let Some(rule) = Self::visibility_rule(change.after.visibility)
        {
            self.rules
                .enforce(rule, &Target::image_for(before, ctx), ctx, Some(before.id))?;
        }
        self.inner.save(ctx, change).await
    }

    async fn remove(&self, ctx: &RequestContext, image: &Image) -> Result<Image, Error> {
        self.enforce_on(ctx, image, &["delete_image"])?;
        self.inner.remove(ctx, image).await
    }

    async fn prepare_upload(
        &self,
        ctx: &RequestContext,
        image: &Image,
    ) -> Result<UploadAllowance, Error> {
        self.enforce_on(ctx, image, &["upload_image"])?;
        self.inner.prepare_upload(ctx, image).await
    }

    async fn prepare_download(&self, ctx: &RequestContext, id: ImageId) -> Result<Image, Error> {
        let image = self.inner.prepare_download(ctx, id).await?;
        self.enforce_on(ctx, &image, &["download_image"])?;
        // Glance: "The requested image has been deactivated. Image data
        // download is prohibited." for everyone but administrators.
        if image.status == Status::Deactivated && !ctx.is_admin() {
            return Err(Error::forbidden(
                "download the data of a deactivated image",
                Some(id),
            ));
        }
        Ok(image)
    }
}

impl<R: MemberRepo> MemberRepo for PolicyRepo<R> {
    async fn members(&self, ctx: &RequestContext, image: &Image) -> Result<Vec<Member>, Error> {
        self.enforce_on(ctx, image, &["get_members"])?;
        self.inner.members(ctx, image).await
    }

    async fn member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        // Glance's show answers 404 for every refusal.
        self.enforce_on(ctx, image, &["get_member"])
            .map_err(|err| match err {
                Error::Forbidden { .. } => Error::MemberNotFound {
                    id: image.id,
                    member_id: member_id.to_owned(),
                },
                other => other,
            })?;
        self.inner.member(ctx, image, member_id).await
    }

    async fn add_member(&self, ctx: &RequestContext, new: &NewMember) -> Result<Member, Error> {
        self.enforce_on(ctx, &new.image, &["add_member"])?;
        self.inner.add_member(ctx, new).await
    }

    async fn update_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
        status: MemberStatus,
    ) -> Result<Member, Error> {
        self.enforce_on(ctx, image, &["get_member", "modify_member"])?;
        self.inner
            .update_member(ctx, image, member_id, status)
            .await
    }

    async fn remove_member(
        &self,
        ctx: &RequestContext,
        image: &Image,
        member_id: &str,
    ) -> Result<Member, Error> {
        self.enforce_on(ctx, image, &["get_member", "delete_member"])?;
        self.inner.remove_member(ctx, image, member_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::test_support::*;

    fn rules() -> Rules {
        Rules::glance_defaults()
    }

    #[test]
    fn every_default_parses() {
        for (name, check) in GLANCE_DEFAULTS {
            assert!(parse(check).is_ok(), "{name}: {check}");
        }
    }

    #[test]
    fn check_strings_parse_with_precedence_and_parentheses() {
        assert_eq!(parse("").unwrap(), Check::True);
        assert_eq!(parse("@").unwrap(), Check::True);
        assert_eq!(parse("!").unwrap(), Check::False);
        assert_eq!(
            parse("role:a or role:b and not role:c").unwrap(),
            Check::Or(vec![
                Check::Role("a".into()),
                Check::And(vec![
                    Check::Role("b".into()),
                    Check::Not(Box::new(Check::Role("c".into())))
                ])
            ])
        );
        assert_eq!(
            parse("((role:a or role:b)) and role:c").unwrap(),
            Check::And(vec![
                Check::Or(vec![Check::Role("a".into()), Check::Role("b".into())]),
                Check::Role("c".into())
            ])
        );
        for bad in [
            "role:a or",
            "(role:a",
            "role:a)",
            "and role:a",
            "admin",
            "role:",
            "http:example.com",
            "role:a role:b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn only_admin_may_publicize_and_members_act_on_their_own_project() {
        let mut image = queued(Some("p1"));
        image.visibility = Visibility::Public;
        let target = Target::image(&image);
        let rules = rules();
        assert!(rules.allows("publicize_image", &target, &admin()));
        assert!(!rules.allows("publicize_image", &target, &member("p1")));
        assert!(rules.allows("communitize_image", &target, &member("p1")));
        assert!(!rules.allows("communitize_image", &target, &member("p2")));
        assert!(rules.allows("modify_image", &target, &member("p1")));
        assert!(!rules.allows("modify_image", &target, &member("p2")));
        // A reader may look but not change.
        let reader = RequestContext::for_project("p1", &["reader"]);
        assert!(rules.allows("get_image", &target, &reader));
        assert!(!rules.allows("modify_image", &target, &reader));
        assert!(!rules.allows("upload_image", &target, &reader));
        // Public images can be read and downloaded by members of other projects.
        assert!(rules.allows("get_image", &target, &member("p2")));
        assert!(rules.allows("download_image", &target, &member("p2")));
        // A private image of p1 cannot be read by p2 through policy either.
        image.visibility = Visibility::Private;
        assert!(!rules.allows("get_image", &Target::image(&image), &member("p2")));
    }

    #[test]
    fn missing_attributes_fail_closed() {
        // No owner on either side: oslo.policy would compare "None" to "None".
        let image = queued(None);
        let nobody = RequestContext {
            roles: vec!["member".into()],
            ..RequestContext::default()
        };
        assert!(!rules().allows("modify_image", &Target::image(&image), &nobody));
        assert!(!rules().allows("upload_image", &Target::image(&image), &nobody));
    }

    #[test]
    fn literals_credentials_and_overrides() {
        let mut rules = rules();
        rules
            .set("publicize_image", "role:admin or role:image_manager")
            .unwrap();
        let manager = RequestContext::for_project("p1", &["image_manager"]);
        assert!(rules.allows("publicize_image", &Target::default(), &manager));
        rules.set("x", "'public':%(visibility)s").unwrap();
        let mut target = Target::default();
        target.set("visibility", "public");
        assert!(rules.allows("x", &target, &manager));
        target.set("visibility", "private");
        assert!(!rules.allows("x", &target, &manager));
        rules.set("y", "is_admin:True").unwrap();
        assert!(rules.allows("y", &target, &admin()));
        assert!(!rules.allows("y", &target, &manager));
        rules.set("loop", "rule:loop").unwrap();
        assert!(!rules.allows("loop", &target, &admin()));
        rules.set("nobody", "!").unwrap();
        assert!(!rules.allows("nobody", &target, &admin()));
        // An unknown rule falls back to `default` (empty: allowed), as oslo.
        assert!(rules.allows("unknown_rule", &target, &manager));
        rules.set("default", "!").unwrap();
        assert!(!rules.allows("unknown_rule", &target, &manager));
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        let depth = 200_000;
        let parens = format!("{}role:a{}", "(".repeat(depth), ")".repeat(depth));
        assert!(matches!(parse(&parens), Err(ParseError::Malformed { .. })));
        let nots = format!("{}role:a", "not ".repeat(depth));
        assert!(matches!(parse(&nots), Err(ParseError::Malformed { .. })));
        // Ordinary nesting still parses.
        let ten = format!("{}role:a{}", "(".repeat(10), ")".repeat(10));
        assert_eq!(parse(&ten).unwrap(), Check::Role("a".into()));
        assert!(parse("not not (role:a and (not role:b or role:c))").is_ok());
    }

    #[test]
    fn a_cycle_of_rules_denies_even_under_not() {
        // A cycle cut off at the depth limit used to read as "false" at the
        // cut, which a `not` above it turned into an allow.
        let mut rules = rules();
        for (name, check) in [
            ("flip", "not rule:flip"),
            ("flop", "not not rule:flop"),
            ("a", "not rule:b"),
            ("b", "rule:a"),
            ("either", "role:nobody or not rule:either"),
        ] {
            rules.set(name, check).unwrap();
        }
        for action in ["flip", "flop", "a", "b", "either"] {
            assert!(
                !rules.allows(action, &Target::default(), &admin()),
                "{action} must deny"
            );
        }
        // A missing rule is still plain false, so `not` of it is true (oslo).
        rules.set("not_missing", "not rule:missing").unwrap();
        assert!(rules.allows("not_missing", &Target::default(), &admin()));
    }

    #[tokio::test]
    async fn the_layer_enforces_rules_around_a_real_database() {
        let repo = temp_repo().await;
        let policy = PolicyRepo::new(repo.sql.clone(), rules());
        let p1 = member("p1");

        // Creating a public image needs publicize_image: only admins.
        let mut public = queued(Some("p1"));
        public.visibility = Visibility::Public;
        let err = policy.add(&p1, &public.clone().into()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Forbidden { action, .. } if action.contains("publicize_image")),
            "{err}"
        );
        assert!(matches!(
            repo.sql.get(&admin(), public.id).await,
            Err(Error::NotFound { .. })
        ));

        // Members may create images for their own project only.
        let own = policy.add(&p1, &queued(Some("p1")).into()).await.unwrap();
        let err = policy
            .add(&p1, &queued(Some("p2")).into())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "forbidden");

        // Members may not publicize their image afterwards either.
        let mut changed = own.clone();
        changed.visibility = Visibility::Public;
        let err = policy
            .save(&p1, &Change::update(own.clone(), changed.clone()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("publicize_image"), "{err}");
        changed.visibility = Visibility::Community;
        let saved = policy
            .save(&p1, &Change::update(own.clone(), changed))
            .await
            .unwrap();
        assert_eq!(saved.visibility, Visibility::Community);

        // A reader may list and read but not upload or delete.
        let reader = RequestContext::for_project("p1", &["reader"]);
        let all = ListQuery {
            visibility: Some(crate::repo::VisibilityFilter::All),
            ..ListQuery::default()
        };
        assert_eq!(policy.list(&reader, &all).await.unwrap().len(), 1);
        assert!(policy.get(&reader, own.id).await.is_ok());
        assert_eq!(
            policy
                .prepare_upload(&reader, &saved)
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        assert_eq!(
            policy.remove(&reader, &saved).await.unwrap_err().kind(),
            "forbidden"
        );
        assert_eq!(
            policy
                .save(&reader, &Change::claim_upload(saved.clone()))
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        // Another project's member sees a community image but may not
        // delete it; a private one it cannot even see through policy
        // (get_image refuses, which reads as not found).
        assert_eq!(
            policy
                .remove(&member("p2"), &saved)
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        let mut private = queued(Some("p1"));
        private.visibility = Visibility::Private;
        let private = added(&repo.sql, private).await;
        assert_eq!(
            policy
                .remove(&member("p2"), &private)
                .await
                .unwrap_err()
                .kind(),
            "not_found"
        );
        // The member may.
        assert!(policy.prepare_upload(&p1, &saved).await.is_ok());
        assert!(policy.remove(&p1, &saved).await.is_ok());
    }

    #[tokio::test]
    async fn deactivated_images_download_only_for_admins() {
        let repo = temp_repo().await;
        let policy = PolicyRepo::new(repo.sql.clone(), rules());
        let image = added(&repo.sql, queued(Some("p1"))).await;
        let image = activated(&repo.sql, &image, 4).await;
        let image = repo
            .sql
            .save(&admin(), &Change::deactivate(image))
            .await
            .unwrap();
        let err = policy
            .prepare_download(&member("p1"), image.id)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("deactivated"), "{err}");
        assert!(policy.prepare_download(&admin(), image.id).await.is_ok());
        // Reactivating is the owner's right (reactivate rule), not a reader's.
        let reader = RequestContext::for_project("p1", &["reader"]);
        assert_eq!(
            policy
                .save(&reader, &Change::reactivate(image.clone()))
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
        let image = policy
            .save(&member("p1"), &Change::reactivate(image))
            .await
            .unwrap();
        assert_eq!(image.status, Status::Active);
        assert!(
            policy
                .prepare_download(&member("p1"), image.id)
                .await
                .is_ok()
        );
        assert_eq!(
            policy
                .prepare_download(&reader, image.id)
                .await
                .unwrap_err()
                .kind(),
            "forbidden"
        );
    }

    #[test]
    fn member_rules_are_glances() {
        let mut image = queued(Some("p1"));
        image.visibility = Visibility::Shared;
        let rules = rules();
        let allows = |rule: &str, ctx: &RequestContext| {
            rules.allows(rule, &Target::image_for(&image, ctx), ctx)
        };
        let (owner, other) = (member("p1"), member("p2"));
        let reader = RequestContext::for_project("p2", &["reader"]);
        // The owner adds, lists and removes, but never answers for a member.
        for rule in ["add_member", "delete_member", "get_member", "get_members"] {
            assert!(allows(rule, &owner), "{rule}");
            assert!(allows(rule, &admin()), "{rule}");
        }
        assert!(!allows("modify_member", &owner));
        // Another project (a member, once the authorization layer has let it
        // see the image) reads and answers, but does not add or remove.
        assert!(allows("get_member", &other));
        assert!(allows("get_members", &other));
        assert!(allows("modify_member", &other));
        assert!(!allows("add_member", &other));
        assert!(!allows("delete_member", &other));
        // A reader reads but does not answer.
        assert!(allows("get_members", &reader));
        assert!(!allows("modify_member", &reader));
        // Without sharing there is no member_id, so nobody but the owner.
        image.visibility = Visibility::Private;
        let allows = |rule: &str, ctx: &RequestContext| {
            rules.allows(rule, &Target::image_for(&image, ctx), ctx)
        };
        assert!(!allows("get_members", &other));
        assert!(!allows("modify_member", &other));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Check strings built from the language's own pieces never panic
        /// the parser or the evaluator.
        #[test]
        fn any_check_string_parses_or_fails_cleanly(
            text in "((\\(|\\)|and|or|not|@|!|role:[a-z%()]{0,4}|rule:[a-z]{0,2}|'[a-z]{0,2}':%\\([a-z_]{0,10}\\)s|project_id:%\\(owner\\)s|is_admin:True|[a-z:'\"%()]{0,6}) ){0,12}"
        ) {
            if let Ok(check) = parse(&text) {
                let mut rules = rules();
                rules.rules.insert("x".to_owned(), check.clone());
                rules.rules.insert("a".to_owned(), check);
                let mut target = Target::image(&queued(Some("p1")));
                target.set("owner", "p1");
                let _ = rules.allows("x", &target, &member("p1"));
                let _ = rules.allows("x", &Target::default(), &admin());
            }
        }

        #[test]
        fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,64}") {
            let _ = parse(&text);
        }
    }
}
