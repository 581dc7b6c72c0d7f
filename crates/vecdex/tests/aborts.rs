//! An abort stops the work early, measured in work rather than time: `cancel::trace` counts
//! every check of a traced stop flag (one check per piece of work: a node linked or relinked, a
//! block of rows scanned) and stops the flag at a chosen check. Each case runs the operation
//! stopped early, proves it changed nothing and made few checks, then runs it whole to count
//! the checks the whole work makes.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::cancel::trace;
use vecdex::{Error, FlatConfig, FlatIndex, HnswConfig, HnswIndex, Metric, StopFlag};

/// The trace is process-wide: one case at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const DIM: usize = 16;

fn rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * DIM).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn keys(n: usize, first: u64) -> Vec<u64> {
    (first..first + n as u64).collect()
}

/// Runs `work` with a traced flag stopped at check `stop_at` (never when `None`); returns its
/// result and the checks it made.
fn traced<T>(stop_at: Option<u64>, work: impl FnOnce(&StopFlag) -> T) -> (T, u64) {
    trace::reset(stop_at);
    let flag = StopFlag::traced();
    let out = work(&flag);
    (out, trace::checks())
}

/// A stopped run made a small share of the whole run's checks: it stopped near where it was
/// told (a few more for the threads still running a piece), far from the end.
fn assert_stopped_early(what: &str, stopped: u64, stop_at: u64, whole: u64) {
    assert!(
        whole >= 20 * stop_at,
        "{what}: the whole run makes {whole} checks, too few to tell"
    );
    assert!(
        stopped < stop_at + 64 && stopped * 10 < whole,
        "{what}: stopped at check {stop_at}, made {stopped} of the whole run's {whole}"
    );
}

fn hnsw(n: usize, seed: u64) -> HnswIndex {
    let mut config = HnswConfig::new(DIM, Metric::L2sq);
    config.ef_construction = 64;
    let mut index = HnswIndex::new(config).expect("index");
    index
        .add(&keys(n, 0), &rows(n, seed), &StopFlag::never())
        .expect("add");
    index
}

/// How many of the first `n` keys a search for their own vector misses.
fn self_misses(index: &HnswIndex, n: usize, seed: u64, live: impl Fn(u64) -> bool) -> usize {
    let data = rows(n, seed);
    let found = index
        .search(&data, 1, Some(128), None, &StopFlag::never())
        .expect("search");
    (0..n)
        .filter(|&i| live(i as u64) && found.keys[i] != i as u64)
        .count()
}

#[test]
fn an_aborted_hnsw_add_stops_early_and_adds_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut index = hnsw(1_000, 1);
    let batch = rows(5_000, 2);
    let batch_keys = keys(5_000, 100_000);
    let stop_at = 100;
    let (result, stopped) = traced(Some(stop_at), |stop| index.add(&batch_keys, &batch, stop));
    assert_eq!(result, Err(Error::Aborted));
    assert_eq!(index.len(), 1_000);
    assert!(!index.contains(100_000) && !index.contains(104_999));
    assert_eq!(self_misses(&index, 1_000, 1, |_| true), 0);
    // The whole add, on an index as it was before (this one would compact the aborted slots
    // first).
    let mut fresh = hnsw(1_000, 1);
    let (result, whole) = traced(None, |stop| fresh.add(&batch_keys, &batch, stop));
    assert_eq!(result, Ok(()));
    assert_eq!(fresh.len(), 6_000);
    assert_stopped_early("HNSW add", stopped, stop_at, whole);
}

#[test]
fn an_aborted_compaction_stops_early_keeps_the_tombstones_and_every_vector_found() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = 6_000;
    let mut index = hnsw(n, 3);
    let removed: Vec<u64> = (0..n as u64).filter(|k| k % 3 == 1).collect();
    assert_eq!(index.remove(&removed).expect("remove"), removed.len());
    let stop_at = 150;
    let (result, stopped) = traced(Some(stop_at), |stop| index.compact(stop));
    assert_eq!(result, Err(Error::Aborted));
    let stats = index.stats();
    assert_eq!(
        (stats.len, stats.tombstones, stats.free_slots),
        (n - removed.len(), removed.len(), 0)
    );
    assert_eq!(
        stats.graph.connectivity,
        Default::default(),
        "every live vector reachable"
    );
    assert_eq!(self_misses(&index, n, 3, |k| k % 3 != 1), 0);
    let (result, whole) = traced(None, |stop| index.compact(stop));
    assert_eq!(result, Ok(removed.len()));
    assert_eq!(index.stats().tombstones, 0);
    assert_eq!(self_misses(&index, n, 3, |k| k % 3 != 1), 0);
    assert_stopped_early("HNSW compaction", stopped, stop_at, whole);
}

#[test]
fn aborted_searches_stop_early() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = 60_000;
    let data = rows(n, 4);
    let mut flat = FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::L2sq,
    })
    .expect("flat");
    flat.add(&keys(n, 0), &data, &StopFlag::never())
        .expect("add");
    let queries = rows(16_000, 5);
    let stop_at = 3;
    let (result, stopped) = traced(Some(stop_at), |stop| flat.search(&queries, 10, None, stop));
    assert_eq!(result.err(), Some(Error::Aborted));
    let (result, whole) = traced(None, |stop| flat.search(&queries, 10, None, stop));
    assert!(result.is_ok());
    assert_stopped_early("flat search", stopped, stop_at, whole);

    let index = hnsw(2_000, 6);
    let (result, stopped) = traced(Some(stop_at), |stop| {
        index.search(&queries, 10, None, None, stop)
    });
    assert_eq!(result.err(), Some(Error::Aborted));
    let (result, whole) = traced(None, |stop| index.search(&queries, 10, None, None, stop));
    assert!(result.is_ok());
    assert_stopped_early("HNSW search", stopped, stop_at, whole);
}
