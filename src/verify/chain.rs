//! Certificate-chain validation (Nova's `trusted_image_certificates`): from
//! the signing certificate up to a trusted, self-signed root.
//!
//! Both modes: load the trusted list; keep as possible issuers only the
//! trusted certificates valid at the injected time with basicConstraints
//! CA=TRUE (and a keyUsage that allows issuing); check the signing
//! certificate's dates; find issuers by exact name and signature; the chain
//! must end at a trusted certificate that issued itself; pathLen is enforced;
//! loops are rejected.
//!
//! `--compat cursive` builds the chain first-match without backtracking,
//! requires keyUsage with keyCertSign on every CA, checks issuers the way
//! cursive does ([`IssuerPolicy::Cursive`]) and aborts on a trusted entry
//! cursive would crash on. Strict mode backtracks over candidate issuers,
//! lets a CA without keyUsage issue (RFC 5280), requires digitalSignature
//! on a signing certificate that has keyUsage, checks RSA-PSS and Ed25519
//! issuer signatures, rejects SHA-1 and MD5, and skips unreadable trusted
//! entries with a warning. This module must not read the clock.

use time::OffsetDateTime;

use super::cert::{Cert, CertificateSummary, Validity, names_equal};
use super::error::{ChainError, first_few, with_causes};
use super::issuer::{EdgeFailure, IssuerPolicy, check_issued_by};
use super::key::PublicKey;
use super::keystore::{CertificateId, CertificateSource, SourceError};
use super::{Mode, Warning, rfc3339};

/// How much work chain building may do before it gives up with
/// [`ChainError::SearchLimit`]: a trusted list of many same-named CAs must
/// not make the search explode (strict mode backtracks, so its work can grow
/// with the product of the candidates at each level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Issuer-signature checks (each one public-key operation, up to about
    /// a millisecond for P-521 or RSA-4096, so 1024 checks stay near a
    /// second at worst; a real chain needs one per level).
    max_edge_checks: usize,
    /// Certificates in a chain, signer included (real chains have 2 to 4).
    max_depth: usize,
}

pub(crate) const LIMITS: Limits = Limits {
    max_edge_checks: 1024,
    max_depth: 16,
};

/// A trusted certificate that passed loading, with why it may not issue (if so).
struct Trusted {
    cert: Cert,
    /// `Err(reason)` when it fails the issuer filter.
    usable: Result<(), String>,
    key: Option<Result<PublicKey, String>>,
}

impl Trusted {
    fn key(&mut self) -> &Result<PublicKey, String> {
        let cert = &self.cert;
        self.key
            .get_or_insert_with(|| cert.spki_der().and_then(|spki| PublicKey::from_spki(&spki)))
    }
}

/// Validates the chain of `signer` against the certificates listed in
/// `trusted_ids`, at `now`; returns the chain from the signer to the root.
///
/// Pushes warnings (skipped trusted entries in strict mode) onto `warnings`.
/// Fails with a [`ChainError`] saying where and why the chain breaks.
/// Gives up with [`ChainError::SearchLimit`] past `limits` ([`LIMITS`]
/// outside tests).
pub(crate) fn validate(
    signer: &Cert,
    trusted_ids: &[String],
    source: &dyn CertificateSource,
    mode: Mode,
    now: OffsetDateTime,
    warnings: &mut Vec<Warning>,
    limits: Limits,
) -> Result<Vec<CertificateSummary>, ChainError> {
    // 1. Load the trusted list in order, each certificate once: ids are
    //    compared as the UUIDs they name (`ABC…`, `{abc…}`, `urn:uuid:abc…`
    //    and a Barbican href are one certificate), and a certificate whose
    //    DER was already loaded under another id adds nothing. Keeping the
    //    first occurrence keeps cursive's first-match order.
    let mut trusted: Vec<Cert> = Vec::new();
    let mut seen_ids = std::collections::HashSet::new();
    for id in trusted_ids {
        let key = match CertificateId::parse(id) {
            Ok(parsed) => TrustedKey::Uuid(parsed.uuid()),
            Err(_) => TrustedKey::Text(id.trim()),
        };
        if !seen_ids.insert(key) {
            continue;
        }
        match load(id, source) {
            Ok(cert) if trusted.iter().any(|known| known.der() == cert.der()) => {
                tracing::debug!(id = %id, "trusted certificate already listed under another id");
            }
            Ok(cert) => trusted.push(cert),
            Err(failure) => match (mode, failure) {
                (Mode::CompatCursive, LoadFailure::Skippable(reason)) => {
                    tracing::debug!(id = %id, %reason, "trusted certificate skipped");
                }
                (Mode::CompatCursive, LoadFailure::Fatal(reason)) => {
                    return Err(ChainError::TrustedEntryUnreadable {
                        id: id.clone(),
                        reason,
                    });
                }
                (Mode::Strict, LoadFailure::Skippable(reason) | LoadFailure::Fatal(reason)) => {
                    warnings.push(Warning::TrustedCertificateSkipped {
                        id: id.clone(),
                        reason,
                    });
                }
            },
        }
    }

    // 2. Keep only certificates allowed to issue at `now`.
    let mut trusted: Vec<Trusted> = trusted
        .into_iter()
        .map(|cert| {
            let usable = usable_as_issuer(&cert, mode, now);
            if let Err(reason) = &usable {
                tracing::debug!(id = cert.id(), %reason, "trusted certificate cannot issue");
            }
            Trusted {
                cert,
                usable,
                key: None,
            }
        })
        .collect();

    // 3. The signing certificate's own checks.
    check_signer(signer, mode, now)?;
    if trusted.is_empty() {
        return Err(ChainError::NothingTrusted {
            id: signer.id().to_owned(),
            n_listed: trusted_ids.len(),
        });
    }

    // 4. Build the chain.
    match mode {
        Mode::CompatCursive => build_first_match(signer, &mut trusted, limits),
        Mode::Strict => build_with_backtracking(signer, &mut trusted, limits),
    }
}

/// How a trusted-list entry is recognised as a repeat.
#[derive(Debug, PartialEq, Eq, Hash)]
enum TrustedKey<'a> {
    /// A parseable id: the UUID it names.
    Uuid(uuid::Uuid),
    /// An id that does not parse (strict mode skips it with a warning,
    /// compat mode aborts on it): its text.
    Text(&'a str),
}

fn search_limit(signer: &Cert, edge_checks: usize, depth: usize, limits: Limits) -> ChainError {
    ChainError::SearchLimit {
        id: signer.id().to_owned(),
        edge_checks,
        depth,
        max_edge_checks: limits.max_edge_checks,
        max_depth: limits.max_depth,
    }
}

enum LoadFailure {
    /// cursive skips these silently (not found, wrong secret type, store error).
    Skippable(String),
    /// cursive crashes on these (non-UUID id, unparseable certificate).
    Fatal(String),
}

fn load(id: &str, source: &dyn CertificateSource) -> Result<Cert, LoadFailure> {
    let parsed = CertificateId::parse(id).map_err(|err| LoadFailure::Fatal(err.to_string()))?;
    let der = source.certificate(&parsed).map_err(|err| match err {
        SourceError::Unparseable { .. } => LoadFailure::Fatal(with_causes(&err)),
        SourceError::NotFound { .. }
        | SourceError::Forbidden { .. }
        | SourceError::Unavailable { .. }
        | SourceError::NotACertificate { .. } => LoadFailure::Skippable(with_causes(&err)),
    })?;
    Cert::parse(id, der)
        .map_err(|reason| LoadFailure::Fatal(format!("not a valid X.509 certificate: {reason}")))
}

/// The issuer filter; `Err` says why a trusted certificate may not issue.
fn usable_as_issuer(cert: &Cert, mode: Mode, now: OffsetDateTime) -> Result<(), String> {
    match cert.validity_at(now) {
        Validity::Valid => {}
        Validity::Expired => return Err(format!("expired at {}", rfc3339(cert.not_after()))),
        Validity::NotYetValid => {
            return Err(format!("not valid before {}", rfc3339(cert.not_before())));
        }
    }
    match cert.basic_constraints() {
        Err(reason) => return Err(format!("malformed basicConstraints ({reason})")),
        Ok(None) => return Err("no basicConstraints extension, so not a CA".to_owned()),
        Ok(Some(constraints)) if !constraints.ca => {
            return Err("basicConstraints CA=FALSE".to_owned());
        }
        Ok(Some(_)) => {}
    }
    match (cert.key_usage(), mode) {
        (Err(reason), _) => Err(format!("malformed keyUsage ({reason})")),
        (Ok(None), Mode::CompatCursive) => {
            Err("no keyUsage extension (cursive requires keyCertSign on every CA)".to_owned())
        }
        (Ok(None), Mode::Strict) => Ok(()),
        (Ok(Some(usage)), _) if !usage.key_cert_sign() => {
            Err("keyUsage without keyCertSign".to_owned())
        }
        (Ok(Some(_)), _) => Ok(()),
    }
}

fn check_signer(signer: &Cert, mode: Mode, now: OffsetDateTime) -> Result<(), ChainError> {
    match signer.validity_at(now) {
        Validity::Valid => {}
        Validity::Expired => {
            return Err(ChainError::SignerExpired {
                id: signer.id().to_owned(),
                not_after: signer.not_after(),
                at: now,
            });
        }
        Validity::NotYetValid => {
            return Err(ChainError::SignerNotYetValid {
                id: signer.id().to_owned(),
                not_before: signer.not_before(),
                at: now,
            });
        }
    }
    if mode == Mode::Strict {
        match signer.key_usage() {
            Err(reason) => {
                return Err(ChainError::BadExtension {
                    id: signer.id().to_owned(),
                    extension: "keyUsage",
                    reason,
                });
            }
            Ok(Some(usage)) if !usage.digital_signature() => {
                return Err(ChainError::SignerKeyUsage {
                    id: signer.id().to_owned(),
                });
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// A node of the chain being built: the signer or a trusted certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Signer,
    Trusted(usize),
}

fn cert_of<'a>(node: Node, signer: &'a Cert, trusted: &'a [Trusted]) -> &'a Cert {
    match node {
        Node::Signer => signer,
        Node::Trusted(index) => &trusted[index].cert,
    }
}

/// Describes trusted certificates that carry the wanted subject but failed
/// the issuer filter.
fn filtered_namesakes(current: &Cert, trusted: &[Trusted]) -> Vec<String> {
    trusted
        .iter()
        .filter(|t| names_equal(t.cert.subject(), current.issuer()))
        .filter_map(|t| {
            t.usable
                .as_ref()
                .err()
                .map(|reason| format!("{} cannot issue: {reason}", t.cert.id()))
        })
        .collect()
}

/// Checks one edge: does trusted certificate `candidate` verify `current`?
fn edge(current: &Cert, candidate: &mut Trusted, policy: IssuerPolicy) -> Result<(), EdgeFailure> {
    let key = match candidate.key() {
        Ok(key) => key.clone(),
        Err(reason) => {
            let why = format!("its public key cannot be read ({reason})");
            return Err(match policy {
                IssuerPolicy::Cursive => EdgeFailure::Crash(why),
                IssuerPolicy::Strict => EdgeFailure::Unsupported(why),
            });
        }
    };
    check_issued_by(current, &key, policy)
}

/// cursive's builder: first matching issuer in list order, no backtracking.
/// Unlike cursive it gives up after `limits.max_edge_checks` signature checks.
fn build_first_match(
    signer: &Cert,
    trusted: &mut [Trusted],
    limits: Limits,
) -> Result<Vec<CertificateSummary>, ChainError> {
    let mut chain = vec![Node::Signer];
    let mut edge_checks = 0;
    loop {
        let current_node = *chain.last().expect("the chain starts with the signer");
        let current = cert_of(current_node, signer, trusted).clone();
        let mut found = None;
        let mut rejected = filtered_namesakes(&current, trusted);
        for (index, candidate) in trusted.iter_mut().enumerate() {
            if candidate.usable.is_err() || !names_equal(candidate.cert.subject(), current.issuer())
            {
                continue;
            }
            if edge_checks >= limits.max_edge_checks {
                return Err(search_limit(signer, edge_checks, chain.len(), limits));
            }
            edge_checks += 1;
            match edge(&current, candidate, IssuerPolicy::Cursive) {
                Ok(()) => {
                    found = Some(index);
                    break;
                }
                Err(EdgeFailure::Crash(reason)) => {
                    return Err(ChainError::IssuerCrash {
                        id: signer.id().to_owned(),
                        ca_id: candidate.cert.id().to_owned(),
                        subject: candidate.cert.subject_text(),
                        reason,
                    });
                }
                Err(failure) => {
                    rejected.push(format!("{}: {failure}", candidate.cert.id()));
                }
            }
        }
        let Some(index) = found else {
            return Err(ChainError::NoIssuer {
                id: signer.id().to_owned(),
                subject: current.subject_text(),
                issuer: current.issuer_text(),
                at_signer: current_node == Node::Signer,
                stuck_id: current.id().to_owned(),
                rejected,
            });
        };
        if trusted[index].cert.der() == current.der() {
            break;
        }
        if chain.contains(&Node::Trusted(index)) {
            return Err(ChainError::Loop {
                id: signer.id().to_owned(),
                subject: trusted[index].cert.subject_text(),
            });
        }
        chain.push(Node::Trusted(index));
    }
    // pathLen, from the root down, after building (as cursive). The node at
    // `position` has `position + 1` certificates from it to the signer.
    for (position, node) in chain.iter().enumerate().rev() {
        if let Node::Trusted(index) = node {
            check_path_len(signer, &trusted[*index].cert, position + 1)?;
        }
    }
    Ok(chain
        .iter()
        .map(|node| cert_of(*node, signer, trusted).summary())
        .collect())
}

/// Enforces pathLenConstraint for a CA with `certs_to_signer` certificates
/// from it down to the signer, inclusive.
fn check_path_len(signer: &Cert, ca: &Cert, certs_to_signer: usize) -> Result<(), ChainError> {
    let needed = certs_to_signer.saturating_sub(2);
    match ca.basic_constraints() {
        Ok(Some(constraints)) => match constraints.path_len_constraint {
            Some(path_len) if usize::from(path_len) < needed => Err(ChainError::PathLength {
                id: signer.id().to_owned(),
                ca_id: ca.id().to_owned(),
                subject: ca.subject_text(),
                path_len,
                needed,
            }),
            _ => Ok(()),
        },
        // The issuer filter already required basicConstraints.
        Ok(None) | Err(_) => Err(ChainError::BadExtension {
            id: ca.id().to_owned(),
            extension: "basicConstraints",
            reason: "missing or malformed on a CA".to_owned(),
        }),
    }
}

/// Why one branch of the strict search ended.
enum DeadEnd {
    NoIssuer {
        subject: String,
        issuer: String,
        at_signer: bool,
        stuck_id: String,
        rejected: Vec<String>,
    },
    Loop {
        subject: String,
    },
    PathLength(ChainError),
}

impl DeadEnd {
    fn describe(&self) -> String {
        match self {
            DeadEnd::NoIssuer {
                subject, rejected, ..
            } => {
                if rejected.is_empty() {
                    format!("no trusted certificate issued {subject:?}")
                } else {
                    format!(
                        "no trusted certificate issued {subject:?} ({})",
                        first_few(rejected, ", ")
                    )
                }
            }
            DeadEnd::Loop { subject } => format!("the chain loops back to {subject:?}"),
            DeadEnd::PathLength(error) => error.to_string(),
        }
    }
}

struct Search<'a> {
    signer: &'a Cert,
    trusted: &'a mut [Trusted],
    path: Vec<Node>,
    dead_ends: Vec<DeadEnd>,
    edge_checks: usize,
    limits: Limits,
    /// Set when a limit stopped the search: (edge checks, depth) then.
    stopped: Option<(usize, usize)>,
}

impl Search<'_> {
    /// Depth-first search from the last node of `path`; true when a path
    /// to a trusted self-issued root was found (left in `path`).
    fn extend(&mut self) -> bool {
        let current_node = *self.path.last().expect("the path starts with the signer");
        let current = cert_of(current_node, self.signer, self.trusted).clone();
        if self.stopped.is_some() {
            return false;
        }
        if self.path.len() > self.limits.max_depth {
            self.stopped = Some((self.edge_checks, self.path.len()));
            return false;
        }
        let mut rejected = filtered_namesakes(&current, self.trusted);
        let mut any_edge = false;
        for index in 0..self.trusted.len() {
            if self.trusted[index].usable.is_err()
                || !names_equal(self.trusted[index].cert.subject(), current.issuer())
            {
                continue;
            }
            if self.edge_checks >= self.limits.max_edge_checks {
                self.stopped = Some((self.edge_checks, self.path.len()));
                return false;
            }
            self.edge_checks += 1;
            if let Err(failure) = edge(&current, &mut self.trusted[index], IssuerPolicy::Strict) {
                rejected.push(format!("{}: {failure}", self.trusted[index].cert.id()));
                continue;
            }
            any_edge = true;
            if self.trusted[index].cert.der() == current.der() {
                return true;
            }
            if self.path.contains(&Node::Trusted(index)) {
                self.dead_ends.push(DeadEnd::Loop {
                    subject: self.trusted[index].cert.subject_text(),
                });
                continue;
            }
            let certs_to_signer = self.path.len() + 1;
            if let Err(error) =
                check_path_len(self.signer, &self.trusted[index].cert, certs_to_signer)
            {
                self.dead_ends.push(DeadEnd::PathLength(error));
                continue;
            }
            self.path.push(Node::Trusted(index));
            if self.extend() {
                return true;
            }
            self.path.pop();
            if self.stopped.is_some() {
                return false;
            }
        }
        if !any_edge {
            self.dead_ends.push(DeadEnd::NoIssuer {
                subject: current.subject_text(),
                issuer: current.issuer_text(),
                at_signer: current_node == Node::Signer,
                stuck_id: current.id().to_owned(),
                rejected,
            });
        }
        false
    }
}

/// Strict builder: depth-first over every candidate issuer, in list order.
///
/// Fails with [`ChainError::SearchLimit`] when a limit stopped the search
/// (a path may exist beyond it: fail closed, and say so), with the one dead
/// end's own error when there was one, with [`ChainError::Loop`] when every
/// dead end was a loop, and with [`ChainError::NoPath`] otherwise.
fn build_with_backtracking(
    signer: &Cert,
    trusted: &mut [Trusted],
    limits: Limits,
) -> Result<Vec<CertificateSummary>, ChainError> {
    let mut search = Search {
        signer,
        trusted,
        path: vec![Node::Signer],
        dead_ends: Vec::new(),
        edge_checks: 0,
        limits,
        stopped: None,
    };
    if search.extend() {
        let path = std::mem::take(&mut search.path);
        return Ok(path
            .iter()
            .map(|node| cert_of(*node, signer, search.trusted).summary())
            .collect());
    }
    if let Some((edge_checks, depth)) = search.stopped {
        return Err(search_limit(signer, edge_checks, depth, limits));
    }
    let mut dead_ends = std::mem::take(&mut search.dead_ends);
    if let Some(DeadEnd::Loop { subject }) = dead_ends.first()
        && dead_ends
            .iter()
            .all(|dead_end| matches!(dead_end, DeadEnd::Loop { .. }))
    {
        return Err(ChainError::Loop {
            id: signer.id().to_owned(),
            subject: subject.clone(),
        });
    }
    if dead_ends.len() == 1 {
        match dead_ends.remove(0) {
            DeadEnd::NoIssuer {
                subject,
                issuer,
                at_signer,
                stuck_id,
                rejected,
            } => {
                return Err(ChainError::NoIssuer {
                    id: signer.id().to_owned(),
                    subject,
                    issuer,
                    at_signer,
                    stuck_id,
                    rejected,
                });
            }
            DeadEnd::Loop { subject } => {
                return Err(ChainError::Loop {
                    id: signer.id().to_owned(),
                    subject,
                });
            }
            DeadEnd::PathLength(error) => return Err(error),
        }
    }
    Err(ChainError::NoPath {
        id: signer.id().to_owned(),
        dead_ends: dead_ends.iter().map(DeadEnd::describe).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::keystore::DirKeyStore;

    fn store() -> DirKeyStore {
        DirKeyStore::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/certs"))
            .unwrap()
    }

    /// The id of a certificate fixture, by name (testdata/certs/INDEX).
    fn id(name: &str) -> String {
        let index = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/certs/INDEX"),
        )
        .unwrap();
        index
            .lines()
            .find_map(|line| {
                let (fixture, id) = line.split_once(' ')?;
                (fixture == name).then(|| id.to_owned())
            })
            .unwrap()
    }

    fn signer(name: &str) -> Cert {
        let id = id(name);
        let der = store()
            .certificate(&CertificateId::parse(&id).unwrap())
            .unwrap();
        Cert::parse(&id, der).unwrap()
    }

    fn now() -> OffsetDateTime {
        crate::clock::parse_rfc3339("2026-06-01T00:00:00Z").unwrap()
    }

    fn run(
        leaf: &str,
        trusted: &[String],
        mode: Mode,
        limits: Limits,
    ) -> Result<usize, ChainError> {
        let mut warnings = Vec::new();
        validate(
            &signer(leaf),
            trusted,
            &store(),
            mode,
            now(),
            &mut warnings,
            limits,
        )
        .map(|chain| chain.len())
    }

    #[test]
    fn a_search_over_its_limits_fails_with_its_own_kind() {
        let trusted = [id("inter-bt-orphan"), id("inter-bt"), id("root-bt")];
        // The default limits find the path (orphan, then inter-bt, root-bt).
        assert_eq!(run("chain-leaf-bt", &trusted, Mode::Strict, LIMITS), Ok(3));
        // Two checks are not enough for the backtracking it needs.
        let tight = Limits {
            max_edge_checks: 2,
            max_depth: 16,
        };
        let err = run("chain-leaf-bt", &trusted, Mode::Strict, tight).unwrap_err();
        assert_eq!(err.kind(), "chain_search_limit", "{err}");
        assert!(err.to_string().contains("stopped after 2"), "{err}");
        // cursive's builder counts too: leaf → inter-ca → root-ca → root-ca
        // takes three checks.
        let chain = [id("root-ca"), id("inter-ca")];
        assert_eq!(
            run("chain-leaf", &chain, Mode::CompatCursive, LIMITS),
            Ok(3)
        );
        let err = run("chain-leaf", &chain, Mode::CompatCursive, tight).unwrap_err();
        assert_eq!(err.kind(), "chain_search_limit", "{err}");
        // A chain longer than the depth limit.
        let shallow = Limits {
            max_edge_checks: 1024,
            max_depth: 1,
        };
        let err = run(
            "chain-leaf",
            &[id("root-ca"), id("inter-ca")],
            Mode::Strict,
            shallow,
        )
        .unwrap_err();
        assert_eq!(err.kind(), "chain_search_limit", "{err}");
    }

    #[test]
    fn repeated_ids_in_any_spelling_are_one_certificate() {
        let root = id("root-ca");
        let spellings = [
            root.to_uppercase(),
            format!("{{{root}}}"),
            format!("urn:uuid:{root}"),
            format!("https://kms/v1/secrets/{root}"),
            root.replace('-', ""),
        ];
        let mut trusted: Vec<String> = spellings.iter().cycle().take(2000).cloned().collect();
        trusted.push(id("inter-ca"));
        // Without de-duplication, 2000 copies of a root that cannot issue
        // the leaf would exhaust the budget before inter-ca is tried.
        assert_eq!(run("chain-leaf", &trusted, Mode::Strict, LIMITS), Ok(3));
        assert_eq!(
            run("chain-leaf", &trusted, Mode::CompatCursive, LIMITS),
            Ok(3)
        );
    }

    #[test]
    fn every_dead_end_a_loop_is_a_loop() {
        let trusted = [
            id("loop-a"),
            id("loop-b"),
            id("loop-a").to_uppercase(),
            id("loop-b"),
        ];
        for mode in [Mode::Strict, Mode::CompatCursive] {
            let err = run("chain-leaf-loop", &trusted, mode, LIMITS).unwrap_err();
            assert_eq!(err.kind(), "chain_loop", "{mode:?}: {err}");
        }
    }

    #[test]
    fn messages_name_a_few_candidates_and_count_the_rest() {
        let items: Vec<String> = (0..1100).map(|i| format!("candidate {i}")).collect();
        let text = first_few(&items, "; ");
        assert_eq!(text, "candidate 0; candidate 1; candidate 2; and 1097 more");
        assert_eq!(first_few(&items[..2], ", "), "candidate 0, candidate 1");
        let err = ChainError::NoPath {
            id: "x".to_owned(),
            dead_ends: items,
        };
        assert!(err.to_string().len() < 200, "{err}");
    }
}
