//! A small bounded cache with per-entry expiry, for token validations and
//! fetched certificates.
//!
//! This module owns capacity and expiry (judged against a time the caller
//! passes, so tests and the server's clock decide). It must not know what
//! it stores, and it never returns an entry at or past its expiry.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use time::OffsetDateTime;

struct Entry<V> {
    value: V,
    expires_at: OffsetDateTime,
    seq: u64,
}

/// At most `capacity` entries; when full, expired entries go first, then
/// the oldest insertion.
pub(crate) struct TtlCache<K, V> {
    capacity: usize,
    entries: HashMap<K, Entry<V>>,
    /// Insertion order: sequence number → key.
    order: BTreeMap<u64, K>,
    next_seq: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// An empty cache; capacity 0 caches nothing.
    pub(crate) fn new(capacity: usize) -> TtlCache<K, V> {
        TtlCache {
            capacity,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The value under `key` if it has not expired at `now`.
    pub(crate) fn get(&mut self, key: &K, now: OffsetDateTime) -> Option<V> {
        let entry = self.entries.get(key)?;
        if entry.expires_at > now {
            return Some(entry.value.clone());
        }
        self.remove(key);
        None
    }

    /// Stores `value` until `expires_at` (nothing when that is not after `now`).
    pub(crate) fn insert(
        &mut self,
        key: K,
        value: V,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) {
        if self.capacity == 0 || expires_at <= now {
            return;
        }
        self.remove(&key);
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, entry| entry.expires_at > now);
            let live: std::collections::HashSet<u64> =
                self.entries.values().map(|entry| entry.seq).collect();
            self.order.retain(|seq, _| live.contains(seq));
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                expires_at,
                seq,
            },
        );
    }

    /// Drops `key`.
    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.seq);
        }
    }

    /// How many entries are held (expired ones included until touched).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds)
    }

    #[test]
    fn entries_expire_and_never_outlive_their_time() {
        let mut cache = TtlCache::new(10);
        cache.insert("a", 1, at(100), at(0));
        assert_eq!(cache.get(&"a", at(99)), Some(1));
        assert_eq!(cache.get(&"a", at(100)), None);
        assert_eq!(cache.len(), 0);
        cache.insert("b", 2, at(5), at(5));
        assert_eq!(
            cache.get(&"b", at(0)),
            None,
            "already expired when inserted"
        );
    }

    #[test]
    fn capacity_evicts_expired_then_oldest() {
        let mut cache = TtlCache::new(2);
        cache.insert("a", 1, at(10), at(0));
        cache.insert("b", 2, at(100), at(0));
        // "a" has expired by t=20: it goes, "b" stays.
        cache.insert("c", 3, at(100), at(20));
        assert_eq!(cache.get(&"b", at(20)), Some(2));
        assert_eq!(cache.get(&"c", at(20)), Some(3));
        // Full of live entries: the oldest insertion ("b") goes.
        cache.insert("d", 4, at(100), at(21));
        assert_eq!(cache.get(&"b", at(21)), None);
        assert_eq!(cache.get(&"c", at(21)), Some(3));
        assert_eq!(cache.get(&"d", at(21)), Some(4));
        assert_eq!(cache.len(), 2);
        // Re-inserting refreshes the order.
        cache.insert("c", 5, at(100), at(22));
        cache.insert("e", 6, at(100), at(22));
        assert_eq!(cache.get(&"c", at(22)), Some(5));
        assert_eq!(cache.get(&"d", at(22)), None);
        let mut none = TtlCache::new(0);
        none.insert("a", 1, at(10), at(0));
        assert_eq!(none.get(&"a", at(0)), None);
    }
}
