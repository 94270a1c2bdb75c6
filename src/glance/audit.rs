//! Many images checked: every active image a listing returns (`audit`,
//! following `next` links), or the images named by id (`verify`), with N
//! checks in flight, and what they add up to.
//!
//! This module owns the listing's query, the concurrency and the summary
//! and verdict (exit 0 only if every image passed; 1 if any failed; 2 when
//! a failure says nothing about an image but about the connection, the
//! credentials or a key manager). It must not print nor check anything
//! itself (`check` does).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::check::{Category, Checker, ImageCheck, Progress};
use super::client::{ClientError, PAGE_SIZE};

/// Which images `audit` lists (Glance's list filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// `owner=`: one project's images.
    pub owner: Option<String>,
    /// `visibility=` (`public`, `private`, `shared`, `community`, `all`).
    pub visibility: Option<String>,
    /// `tag=` (repeatable: images with every tag).
    pub tags: Vec<String>,
    /// Every image the caller may see, community images included
    /// (`visibility=all`; an administrator sees every project's).
    pub all_projects: bool,
}

impl AuditQuery {
    /// The query parameters: only `active` images (the only ones with data
    /// to check), Glance's filters, and a large page size.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut params = vec![
            ("status".to_owned(), "active".to_owned()),
            ("limit".to_owned(), PAGE_SIZE.to_string()),
        ];
        if let Some(owner) = &self.owner {
            params.push(("owner".to_owned(), owner.clone()));
        }
        match (&self.visibility, self.all_projects) {
            (Some(visibility), _) => params.push(("visibility".to_owned(), visibility.clone())),
            (None, true) => params.push(("visibility".to_owned(), "all".to_owned())),
            (None, false) => {}
        }
        for tag in &self.tags {
            params.push(("tag".to_owned(), tag.clone()));
        }
        params
    }
}

/// What a run reports as it goes (a progress bar); every method is a no-op by default.
pub trait Observer: Progress {
    /// The listing is complete: `images` images of `bytes` recorded bytes.
    fn listed(&self, _images: usize, _bytes: u64) {}
    /// An image's check ended.
    fn checked(&self, _check: &ImageCheck) {}
}

/// The checks of one run, in listing (or argument) order.
#[derive(Debug)]
pub struct Audit {
    /// The Glance endpoint.
    pub endpoint: String,
    /// One check per image.
    pub checks: Vec<ImageCheck>,
    /// Wall time of the run (listing included).
    pub elapsed: Duration,
}

/// How a run ends; the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every image passed (exit 0).
    Passed,
    /// Some image failed (exit 1).
    Failed,
    /// Some check could not say anything about its image: the connection,
    /// the credentials or a key manager failed (exit 2).
    ConnectionError,
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Images checked.
    pub images: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Per category, in [`Category::ALL`]'s order.
    pub by_category: [usize; 8],
    /// Images that passed.
    pub passed: usize,
    /// Images that failed.
    pub failed: usize,
}

impl Summary {
    /// How many images are in `category`.
    pub fn count(&self, category: Category) -> usize {
        Category::ALL
            .iter()
            .position(|each| *each == category)
            .map_or(0, |index| self.by_category[index])
    }
}

impl Audit {
    /// The counts, with unsigned images failing when `require_signature`.
    pub fn summary(&self, require_signature: bool) -> Summary {
        let mut summary = Summary {
            images: self.checks.len(),
            ..Summary::default()
        };
        for check in &self.checks {
            summary.bytes += check.n_bytes;
            let category = check.category();
            if let Some(index) = Category::ALL.iter().position(|each| *each == category) {
                summary.by_category[index] += 1;
            }
            if category.passes(require_signature) {
                summary.passed += 1;
            } else {
                summary.failed += 1;
            }
        }
        summary
    }

    /// The run's outcome: a connection error anywhere wins (the run says
    /// nothing about those images), then any failed image.
    pub fn verdict(&self, require_signature: bool) -> Verdict {
        if self.checks.iter().any(|check| {
            check
                .error
                .as_ref()
                .is_some_and(|failure| failure.connection)
        }) {
            return Verdict::ConnectionError;
        }
        if self
            .checks
            .iter()
            .all(|check| check.passed(require_signature))
        {
            Verdict::Passed
        } else {
            Verdict::Failed
        }
    }
}

/// Lists the images `query` selects (every page, hidden images too) and
/// checks them, `concurrency` at a time.
///
/// Fails when the listing fails (nothing is checked then): the endpoint is
/// unreachable, refuses the credentials, or answers something else than
/// Glance's pages.
pub async fn audit(
    checker: &Checker,
    query: &AuditQuery,
    concurrency: usize,
    observer: &dyn Observer,
) -> Result<Audit, ClientError> {
    let started = Instant::now();
    // Glance's listings leave hidden images (`os_hidden`) out unless asked
    // for them alone; an audit that skipped them would pass images it
    // never read, so both listings are read.
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    for hidden in [false, true] {
        let mut params = query.params();
        if hidden {
            params.push(("os_hidden".to_owned(), "true".to_owned()));
        }
        let listed = checker
            .client()
            .list(&params, &mut |n| {
                tracing::debug!(images = n, hidden, "listing")
            })
            .await?;
        records.extend(
            listed
                .into_iter()
                .filter(|record| seen.insert(record.id.clone())),
        );
    }
    observer.listed(
        records.len(),
        records.iter().filter_map(|record| record.size).sum(),
    );
    let checks = futures_util::stream::iter(records)
        .map(|record| async move {
            let check = checker.check(record, observer).await;
            observer.checked(&check);
            check
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    Ok(Audit {
        endpoint: checker.client().endpoint().to_owned(),
        checks,
        elapsed: started.elapsed(),
    })
}

/// Checks the images `ids` name, `concurrency` at a time, in that order;
/// an id that cannot be read is a check with its error.
pub async fn verify_ids(
    checker: &Checker,
    ids: &[String],
    concurrency: usize,
    observer: &dyn Observer,
) -> Audit {
    let started = Instant::now();
    observer.listed(ids.len(), 0);
    let checks = futures_util::stream::iter(ids)
        .map(|id| async move {
            let check = checker.check_id(id, observer).await;
            observer.checked(&check);
            check
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    Audit {
        endpoint: checker.client().endpoint().to_owned(),
        checks,
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_for_active_images_with_the_filters() {
        let query = AuditQuery {
            owner: Some("p1".into()),
            visibility: None,
            tags: vec!["a".into(), "b".into()],
            all_projects: false,
        };
        let params = query.params();
        assert!(params.contains(&("status".into(), "active".into())));
        assert!(params.contains(&("owner".into(), "p1".into())));
        assert_eq!(
            params.iter().filter(|(key, _)| key == "tag").count(),
            2,
            "{params:?}"
        );
        assert!(!params.iter().any(|(key, _)| key == "visibility"));
        let all = AuditQuery {
            all_projects: true,
            ..AuditQuery::default()
        };
        assert!(all.params().contains(&("visibility".into(), "all".into())));
    }
}
