//! The byte limit an upload may not cross: the smaller of `image_size_cap`
//! and the owner's remaining quota, plus the declared size when one was given.
//!
//! It only counts and decides; it must not read or store data. It is checked
//! before a chunk goes anywhere, so no byte past the limit is hashed or stored.

/// Which limit an upload ran into, and whether that was while reading or
/// before any byte was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The configured `image_size_cap` (Glance answers 413).
    SizeCap,
    /// The owner's storage quota (Glance answers 413).
    Quota,
    /// The size declared before the upload (`x-openstack-image-size`); Glance answers 400.
    Declared,
    /// The declared size is over `image_size_cap`: refused before any byte
    /// was read (Glance answers 413).
    DeclaredOverSizeCap {
        /// The declared size.
        declared: u64,
    },
    /// The declared size is over the owner's remaining storage quota:
    /// refused before any byte was read (Glance answers 413).
    DeclaredOverQuota {
        /// The declared size.
        declared: u64,
    },
}

/// A limit was crossed: the upload must stop without reading further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// Which limit.
    pub kind: LimitKind,
    /// The limit in bytes.
    pub limit: u64,
    /// How many bytes the upload would have had with the refused chunk.
    pub attempted: u64,
}

/// Counts the bytes of one upload against its limits.
#[derive(Debug, Clone)]
pub struct Limit {
    size_cap: u64,
    quota: Option<u64>,
    declared: Option<u64>,
    n_bytes: u64,
}

impl Limit {
    /// A limit of `size_cap` bytes, further bounded by the quota allowance
    /// (`None`: unlimited) and the declared size (`None`: not declared).
    pub fn new(size_cap: u64, quota: Option<u64>, declared: Option<u64>) -> Limit {
        Limit {
            size_cap,
            quota,
            declared,
            n_bytes: 0,
        }
    }

    /// Bytes accepted so far.
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }

    /// Accounts for a chunk of `len` bytes before it is used.
    ///
    /// Fails, without counting the chunk, when it would cross a limit. The
    /// declared size is reported first (it is the most specific), then the
    /// quota when it is below the size cap, then the size cap.
    pub fn take(&mut self, len: usize) -> Result<(), Exceeded> {
        let attempted = self.n_bytes.saturating_add(len as u64);
        let mut limits = vec![(LimitKind::SizeCap, self.size_cap)];
        if let Some(quota) = self.quota {
            limits.push((LimitKind::Quota, quota));
        }
        if let Some(declared) = self.declared {
            limits.push((LimitKind::Declared, declared));
        }
        // The smallest limit is the one hit; on a tie the most specific wins,
        // which is the one pushed last.
        let crossed = limits
            .iter()
            .rev()
            .filter(|(_, limit)| attempted > *limit)
            .min_by_key(|(_, limit)| *limit);
        match crossed {
            Some(&(kind, limit)) => Err(Exceeded {
                kind,
                limit,
                attempted,
            }),
            None => {
                self.n_bytes = attempted;
                Ok(())
            }
        }
    }

    /// Checks a declared size against the size cap and the quota before any
    /// byte is read: an upload that announces more than it may store is
    /// refused up front instead of after staging up to the limit.
    ///
    /// Fails with the smallest limit the declared size crosses, as
    /// [`LimitKind::DeclaredOverSizeCap`] or [`LimitKind::DeclaredOverQuota`]
    /// (nothing was read).
    pub fn check_declared(&self) -> Result<(), Exceeded> {
        let Some(declared) = self.declared else {
            return Ok(());
        };
        let crossed = [
            (
                LimitKind::DeclaredOverSizeCap { declared },
                Some(self.size_cap),
            ),
            (LimitKind::DeclaredOverQuota { declared }, self.quota),
        ]
        .into_iter()
        .filter_map(|(kind, limit)| limit.map(|limit| (kind, limit)))
        .filter(|(_, limit)| declared > *limit)
        .min_by_key(|(_, limit)| *limit);
        match crossed {
            Some((kind, limit)) => Err(Exceeded {
                kind,
                limit,
                attempted: declared,
            }),
            None => Ok(()),
        }
    }

    /// Checks the end of the stream: with a declared size, the byte count must equal it.
    ///
    /// Returns the declared size on a short upload.
    pub fn finish(&self) -> Result<u64, u64> {
        match self.declared {
            Some(declared) if declared != self.n_bytes => Err(declared),
            _ => Ok(self.n_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_the_limit_and_not_past_it() {
        let mut limit = Limit::new(10, None, None);
        assert!(limit.take(6).is_ok());
        assert!(limit.take(4).is_ok());
        let exceeded = limit.take(1).unwrap_err();
        assert_eq!(exceeded.kind, LimitKind::SizeCap);
        assert_eq!(exceeded.attempted, 11);
        assert_eq!(limit.n_bytes(), 10);
    }

    #[test]
    fn the_smallest_limit_is_reported() {
        let mut quota_first = Limit::new(100, Some(50), None);
        assert_eq!(quota_first.take(60).unwrap_err().kind, LimitKind::Quota);
        let mut cap_first = Limit::new(40, Some(50), None);
        assert_eq!(cap_first.take(60).unwrap_err().kind, LimitKind::SizeCap);
        let mut declared_first = Limit::new(40, Some(50), Some(30));
        assert_eq!(
            declared_first.take(60).unwrap_err().kind,
            LimitKind::Declared
        );
        let mut tie = Limit::new(30, None, Some(30));
        assert_eq!(tie.take(31).unwrap_err().kind, LimitKind::Declared);
    }

    #[test]
    fn a_declared_size_over_a_limit_says_so() {
        let over_cap = Limit::new(100, Some(500), Some(200)).check_declared();
        assert_eq!(
            over_cap.unwrap_err().kind,
            LimitKind::DeclaredOverSizeCap { declared: 200 }
        );
        let over_quota = Limit::new(1000, Some(50), Some(200)).check_declared();
        let exceeded = over_quota.unwrap_err();
        assert_eq!(
            exceeded.kind,
            LimitKind::DeclaredOverQuota { declared: 200 }
        );
        assert_eq!(exceeded.limit, 50);
        assert!(
            Limit::new(1000, Some(500), Some(200))
                .check_declared()
                .is_ok()
        );
    }

    #[test]
    fn short_uploads_fail_the_declared_size() {
        let mut limit = Limit::new(100, None, Some(8));
        limit.take(5).unwrap();
        assert_eq!(limit.finish(), Err(8));
        limit.take(3).unwrap();
        assert_eq!(limit.finish(), Ok(8));
        assert_eq!(Limit::new(1, None, None).finish(), Ok(0));
    }
}
