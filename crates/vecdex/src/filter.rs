//! Allow-lists of keys, given as data, and the slot sets indexes turn them into.
//!
//! Turning keys into slots costs a hash lookup per key, which for a large allow-list can cost
//! more than the search itself. A [`KeyFilter`] therefore remembers the slot set it last produced,
//! tagged with the index state it was built for ([`IndexVersion`]): searching again with the same
//! filter, on an index that has not changed, reuses it.
//!
//! A filter can also be a bitmap over keys ([`KeyFilter::of_key_bits`]): a collection's keys are
//! dense row numbers, and its metadata filters compile to such bitmaps. A wide one then becomes
//! a slot set by one pass over the index's slots (no hash lookup per admitted key).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Identifies an index's key-to-slot mapping: unique across all indexes in the process, renewed
/// by every change of the mapping. Two indexes (a clone and its original) share one only while
/// their mappings are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexVersion(u64);

impl IndexVersion {
    /// A version no other mapping has had.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        IndexVersion(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Slots admitted by a filter: a bitmap for tests inside scans and walks, and a list for exact
/// scans of just those slots.
#[derive(Debug, Default)]
pub struct SlotSet {
    bits: Vec<u64>,
    slots: Vec<u32>,
}

impl SlotSet {
    /// The slots of `keys` present in `map`, each once; `capacity` bounds every slot.
    pub fn of_keys<S: BuildHasher>(
        keys: &[u64],
        map: &HashMap<u64, u32, S>,
        capacity: usize,
    ) -> Self {
        let mut bits = vec![0u64; capacity.div_ceil(64)];
        let mut slots = Vec::new();
        for key in keys {
            if let Some(&slot) = map.get(key) {
                if let Some(word) = bits.get_mut(slot as usize / 64) {
                    let bit = 1u64 << (slot % 64);
                    if *word & bit == 0 {
                        *word |= bit;
                        slots.push(slot);
                    }
                }
            }
        }
        SlotSet { bits, slots }
    }

    #[inline]
    pub fn admits(&self, slot: usize) -> bool {
        self.bits
            .get(slot / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// The slots of the keys set in `key_bits` (bit `k` of word `k / 64` admits key `k`), of
    /// which there are `count`: looked up one by one when they are few, else found by one pass
    /// over `live` (every live slot with its key) — cheaper than `count` hash lookups once the
    /// filter admits more than a few percent of the index.
    pub fn of_key_bits<S: BuildHasher>(
        key_bits: &[u64],
        count: usize,
        map: &HashMap<u64, u32, S>,
        capacity: usize,
        live: impl Iterator<Item = (u32, u64)>,
    ) -> Self {
        let admits_key =
            |key: u64| key_bits.get((key / 64) as usize).is_some_and(|w| w & (1 << (key % 64)) != 0);
        if count.saturating_mul(LOOKUP_COST) < map.len() {
            let keys = key_bits.iter().enumerate().flat_map(|(w, &word)| {
                (0..64u64)
                    .filter(move |b| word & (1 << b) != 0)
                    .map(move |b| w as u64 * 64 + b)
            });
            return Self::of_keys(&keys.collect::<Vec<_>>(), map, capacity);
        }
        let mut bits = vec![0u64; capacity.div_ceil(64)];
        let mut slots = Vec::with_capacity(count);
        for (slot, key) in live {
            if admits_key(key) {
                if let Some(word) = bits.get_mut(slot as usize / 64) {
                    *word |= 1u64 << (slot % 64);
                    slots.push(slot);
                }
            }
        }
        SlotSet { bits, slots }
    }

    /// Admitted slots, in the filter's key order.
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// A hash lookup costs about this many steps of a pass over the slots (measured on x86-64:
/// a lookup in the key map is a few cache misses, a slot of the pass a sequential read).
const LOOKUP_COST: usize = 8;

/// The keys a [`KeyFilter`] admits.
#[derive(Debug, Clone)]
enum AllowedKeys {
    List(Vec<u64>),
    /// Bit `k` of word `k / 64` admits key `k`; `count` bits are set.
    Bits { words: Vec<u64>, count: usize },
}

/// An allow-list of keys: only these keys may appear in results.
#[derive(Debug)]
pub struct KeyFilter {
    keys: AllowedKeys,
    /// The slot set last built from these keys, and for which index state.
    cached: Mutex<Option<(IndexVersion, Arc<SlotSet>)>>,
}

impl Default for KeyFilter {
    fn default() -> Self {
        KeyFilter::new(Vec::new())
    }
}

impl Clone for KeyFilter {
    fn clone(&self) -> Self {
        KeyFilter {
            keys: self.keys.clone(),
            cached: Mutex::new(None),
        }
    }
}

impl KeyFilter {
    pub fn new(keys: Vec<u64>) -> Self {
        KeyFilter {
            keys: AllowedKeys::List(keys),
            cached: Mutex::new(None),
        }
    }

    /// A filter admitting key `k` when bit `k % 64` of `words[k / 64]` is set.
    pub fn of_key_bits(words: Vec<u64>) -> Self {
        let count = words.iter().map(|w| w.count_ones() as usize).sum();
        KeyFilter {
            keys: AllowedKeys::Bits { words, count },
            cached: Mutex::new(None),
        }
    }

    /// The admitted keys (a key bitmap's, listed in ascending order).
    pub fn keys(&self) -> Cow<'_, [u64]> {
        match &self.keys {
            AllowedKeys::List(keys) => Cow::Borrowed(keys),
            AllowedKeys::Bits { words, count } => {
                let mut keys = Vec::with_capacity(*count);
                for (w, &word) in words.iter().enumerate() {
                    let mut rest = word;
                    while rest != 0 {
                        keys.push(w as u64 * 64 + u64::from(rest.trailing_zeros()));
                        rest &= rest - 1;
                    }
                }
                Cow::Owned(keys)
            }
        }
    }

    /// How many keys the filter lists (each once for a bitmap; a list may repeat keys).
    pub fn key_count(&self) -> usize {
        match &self.keys {
            AllowedKeys::List(keys) => keys.len(),
            AllowedKeys::Bits { count, .. } => *count,
        }
    }

    /// The slot set of these keys in an index at `version` whose key-to-slot map is `map`, with
    /// `capacity` slots; `live` lists every live slot with its key (used for wide key bitmaps).
    /// Cached like [`slots_for`](Self::slots_for).
    pub fn slot_set<S: BuildHasher, I: Iterator<Item = (u32, u64)>>(
        &self,
        version: IndexVersion,
        map: &HashMap<u64, u32, S>,
        capacity: usize,
        live: impl FnOnce() -> I,
    ) -> Arc<SlotSet> {
        self.slots_for(version, |allowed| match allowed {
            AllowedKeys::List(keys) => SlotSet::of_keys(keys, map, capacity),
            AllowedKeys::Bits { words, count } => {
                SlotSet::of_key_bits(words, *count, map, capacity, live())
            }
        })
    }

    /// The slot set of these keys for an index at `version`: the cached one if it was built for
    /// that version, else `build(keys)`, which is cached in its place.
    fn slots_for(
        &self,
        version: IndexVersion,
        build: impl FnOnce(&AllowedKeys) -> SlotSet,
    ) -> Arc<SlotSet> {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((built_for, slots)) = cached.as_ref() {
            if *built_for == version {
                return slots.clone();
            }
        }
        let slots = Arc::new(build(&self.keys));
        *cached = Some((version, slots.clone()));
        slots
    }
}
