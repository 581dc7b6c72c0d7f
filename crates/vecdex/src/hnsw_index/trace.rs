//! Test hook: counts which way each HNSW search went (graph walk, exact scan of the admitted
//! vectors, or a walk that found too few and was followed by a scan), so tests can prove a
//! filter's selectivity picked the path the planner documents. Process-wide; off unless a test
//! turns it on, and then a search pays one relaxed atomic add. Off, a search pays one relaxed
//! load of a flag no search writes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ON: AtomicBool = AtomicBool::new(false);
static WALKS: AtomicU64 = AtomicU64::new(0);
static SCANS: AtomicU64 = AtomicU64::new(0);
static RESCANS: AtomicU64 = AtomicU64::new(0);

/// How many searches (one per query) went each way since the hook was last turned on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchPaths {
    /// Walked the graph, and the walk's hits were the answer.
    pub walks: u64,
    /// Scanned the admitted vectors exactly without walking (the filter admits few).
    pub scans: u64,
    /// Walked the graph, found fewer hits than the filter admits, then scanned exactly.
    pub rescans: u64,
}

/// Turns counting on (from zero) or off.
pub fn count_paths(on: bool) {
    for counter in [&WALKS, &SCANS, &RESCANS] {
        counter.store(0, Ordering::SeqCst);
    }
    ON.store(on, Ordering::SeqCst);
}

/// The counts since counting was turned on.
pub fn paths() -> SearchPaths {
    SearchPaths {
        walks: WALKS.load(Ordering::SeqCst),
        scans: SCANS.load(Ordering::SeqCst),
        rescans: RESCANS.load(Ordering::SeqCst),
    }
}

/// Counts one search: whether it walked, and whether it scanned.
pub(crate) fn count(walked: bool, scanned: bool) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let counter = match (walked, scanned) {
        (true, false) => &WALKS,
        (false, _) => &SCANS,
        (true, true) => &RESCANS,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}
