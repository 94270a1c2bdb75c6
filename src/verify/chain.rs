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
use super::error::ChainError;
use super::issuer::{EdgeFailure, IssuerPolicy, check_issued_by};
use super::key::PublicKey;
use super::keystore::{CertificateId, CertificateSource, SourceError};
use super::{Mode, Warning, rfc3339};

/// How many issuer-signature checks strict mode's search may make before
/// giving up, and how long a chain may get: a hostile trusted list of
/// same-named CAs must not make the search explode.
const MAX_EDGE_CHECKS: usize = 1024;
const MAX_DEPTH: usize = 16;

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
pub(crate) fn validate(
    signer: &Cert,
    trusted_ids: &[String],
    source: &dyn CertificateSource,
    mode: Mode,
    now: OffsetDateTime,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<CertificateSummary>, ChainError> {
    // 1. Load the trusted list in order.
    let mut trusted = Vec::new();
    for id in trusted_ids {
        match load(id, source) {
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
        Mode::CompatCursive => build_first_match(signer, &mut trusted),
        Mode::Strict => build_with_backtracking(signer, &mut trusted),
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
        SourceError::Unparseable { .. } => LoadFailure::Fatal(err.to_string()),
        SourceError::NotFound { .. }
        | SourceError::Forbidden { .. }
        | SourceError::Unavailable { .. }
        | SourceError::NotACertificate { .. } => LoadFailure::Skippable(err.to_string()),
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
fn build_first_match(
    signer: &Cert,
    trusted: &mut [Trusted],
) -> Result<Vec<CertificateSummary>, ChainError> {
    let mut chain = vec![Node::Signer];
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
    Limit,
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
                        rejected.join(", ")
                    )
                }
            }
            DeadEnd::Loop { subject } => format!("the chain loops back to {subject:?}"),
            DeadEnd::PathLength(error) => error.to_string(),
            DeadEnd::Limit => format!(
                "search stopped after {MAX_EDGE_CHECKS} signature checks or {MAX_DEPTH} levels"
            ),
        }
    }
}

struct Search<'a> {
    signer: &'a Cert,
    trusted: &'a mut [Trusted],
    path: Vec<Node>,
    dead_ends: Vec<DeadEnd>,
    edge_checks: usize,
}

impl Search<'_> {
    /// Depth-first search from the last node of `path`; true when a path
    /// to a trusted self-issued root was found (left in `path`).
    fn extend(&mut self) -> bool {
        let current_node = *self.path.last().expect("the path starts with the signer");
        let current = cert_of(current_node, self.signer, self.trusted).clone();
        if self.path.len() > MAX_DEPTH {
            self.dead_ends.push(DeadEnd::Limit);
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
            if self.edge_checks >= MAX_EDGE_CHECKS {
                self.dead_ends.push(DeadEnd::Limit);
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
fn build_with_backtracking(
    signer: &Cert,
    trusted: &mut [Trusted],
) -> Result<Vec<CertificateSummary>, ChainError> {
    let mut search = Search {
        signer,
        trusted,
        path: vec![Node::Signer],
        dead_ends: Vec::new(),
        edge_checks: 0,
    };
    if search.extend() {
        let path = std::mem::take(&mut search.path);
        return Ok(path
            .iter()
            .map(|node| cert_of(*node, signer, search.trusted).summary())
            .collect());
    }
    let mut dead_ends = std::mem::take(&mut search.dead_ends);
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
            DeadEnd::Limit => dead_ends.push(DeadEnd::Limit),
        }
    }
    Err(ChainError::NoPath {
        id: signer.id().to_owned(),
        dead_ends: dead_ends.iter().map(DeadEnd::describe).collect(),
    })
}
