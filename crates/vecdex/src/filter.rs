//! Allow-lists of keys, given as data, and the slot sets indexes turn them into.
//!
//! Turning keys into slots costs a hash lookup per key, which for a large allow-list can cost
//! more than the search itself. A [`KeyFilter`] therefore remembers the slot set it last produced,
//! tagged with the index state it was built for ([`IndexVersion`]): searching again with the same
//! filter, on an index that has not changed, reuses it.

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

/// An allow-list of keys: only these keys may appear in results.
#[derive(Debug, Default)]
pub struct KeyFilter {
    keys: Vec<u64>,
    /// The slot set last built from these keys, and for which index state.
    cached: Mutex<Option<(IndexVersion, Arc<SlotSet>)>>,
}

impl Clone for KeyFilter {
    fn clone(&self) -> Self {
        KeyFilter::new(self.keys.clone())
    }
}

impl KeyFilter {
    pub fn new(keys: Vec<u64>) -> Self {
        KeyFilter {
            keys,
            cached: Mutex::new(None),
        }
    }

    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The slot set of these keys for an index at `version`: the cached one if it was built for
    /// that version, else `build(keys)`, which is cached in its place.
    pub fn slots_for(
        &self,
        version: IndexVersion,
        build: impl FnOnce(&[u64]) -> SlotSet,
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
