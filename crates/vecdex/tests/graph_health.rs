//! Graph health under duplicated data and churn: every live vector stays reachable from the
//! entry point (stats().graph.unreachable == 0) and is found by a search for itself, after any
//! mix of adds, exact and near copies, upserts, removals and compactions, with one thread or
//! many, and after a save and load.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{FlatConfig, FlatIndex, HnswConfig, HnswIndex, LinkMode, Metric, StopFlag};

fn random_rows(rng: &mut StdRng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// A config like the report: small `m` and `efConstruction` make islands likelier.
fn config(dim: usize, metric: Metric, m: usize, seed: u64) -> HnswConfig {
    let mut config = HnswConfig::new(dim, metric);
    config.m = m;
    config.ef_construction = 64;
    config.seed = seed;
    config
}

fn add_in_batches(index: &mut HnswIndex, keys: &[u64], rows: &[f32], batch: usize, mode: LinkMode) {
    let dim = index.dim();
    let stop = StopFlag::never();
    for (k, r) in keys.chunks(batch).zip(rows.chunks(batch * dim)) {
        index.add_with(k, r, &stop, mode).expect("add");
    }
}

/// Live keys for which a `k: 1` search for their own vector, with `ef` past the index size,
/// does not return the exact nearest distance (an exact scan's): with a strongly connected
/// layer 0 such a search sees every node. (Under dot, the nearest is not always the vector
/// itself; under l2sq and cosine it is, or an exact copy of it.)
fn lost_by_self_search(index: &HnswIndex) -> Vec<u64> {
    let ef = index.len() + 16;
    let stop = StopFlag::never();
    let keys = index.keys();
    let dim = index.dim();
    let rows: Vec<f32> = keys
        .iter()
        .flat_map(|&k| index.get(k).expect("stored"))
        .collect();
    let mut exact = FlatIndex::new(FlatConfig {
        dim,
        metric: index.metric(),
    })
    .expect("flat");
    exact.add(&keys, &rows, &stop).expect("flat add");
    let want = exact.search(&rows, 1, None, &stop).expect("exact");
    keys.iter()
        .enumerate()
        .filter(|&(i, _)| {
            let own = &rows[i * dim..(i + 1) * dim];
            let found = index.search(own, 1, Some(ef), None, &stop).expect("search");
            found.distances[0] > want.distances[i] + 1e-4 * want.distances[i].abs().max(1.0)
        })
        .map(|(_, &key)| key)
        .collect()
}

fn assert_healthy(index: &HnswIndex, context: &str) {
    let stats = index.stats();
    assert_eq!(
        stats.graph.connectivity,
        Default::default(),
        "{context}: live vectors unreachable from the entry point or dead ends"
    );
    let lost = lost_by_self_search(index);
    assert!(
        lost.is_empty(),
        "{context}: {} of {} vectors not found by a search for themselves (first: {:?})",
        lost.len(),
        index.len(),
        &lost[..lost.len().min(5)]
    );
}

/// The case and its family: random rows added in small batches, then exact copies of
/// stored rows (one copy each, or many copies of a few rows), for several seeds, dimensions,
/// metrics, `m` and link modes.
#[test]
fn exact_copies_never_leave_vectors_unreachable() {
    for seed in 0..4u64 {
        for &(dim, metric, m) in &[
            (16, Metric::L2sq, 8),
            (8, Metric::Cosine, 4),
            (24, Metric::Dot, 6),
        ] {
            for mode in [LinkMode::Sequential, LinkMode::Parallel] {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut index = HnswIndex::new(config(dim, metric, m, seed)).expect("index");
                let base = random_rows(&mut rng, 1_000, dim);
                let keys: Vec<u64> = (0..1_000).collect();
                add_in_batches(&mut index, &keys, &base, 10, mode);
                // One copy each of 100 stored rows, then 60 copies of each of 3 rows (a group
                // of copies larger than any neighbour list).
                let mut copies = Vec::new();
                let mut sources: Vec<usize> = (0..100).map(|_| rng.gen_range(0..1_000)).collect();
                for _ in 0..3 {
                    let row = rng.gen_range(0..1_000);
                    sources.extend(std::iter::repeat_n(row, 60));
                }
                for &row in &sources {
                    copies.extend_from_slice(&base[row * dim..(row + 1) * dim]);
                }
                let copy_keys: Vec<u64> = (0..sources.len() as u64).map(|i| 10_000 + i).collect();
                add_in_batches(&mut index, &copy_keys, &copies, 10, mode);
                assert_healthy(
                    &index,
                    &format!("seed {seed}, dim {dim}, {metric:?}, m {m}, {mode:?}"),
                );
            }
        }
    }
}

/// A tight cluster: many near-copies (tiny noise) of a few rows, mixed into random data.
#[test]
fn near_copies_never_leave_vectors_unreachable() {
    for seed in 10..13u64 {
        let dim = 12;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut index = HnswIndex::new(config(dim, Metric::L2sq, 4, seed)).expect("index");
        let mut rows = random_rows(&mut rng, 600, dim);
        for _ in 0..400 {
            let source = rng.gen_range(0..5) * dim;
            let near: Vec<f32> = (0..dim)
                .map(|d| rows[source + d] + rng.gen_range(-1e-6..1e-6))
                .collect();
            rows.extend(near);
        }
        let keys: Vec<u64> = (0..1_000).collect();
        add_in_batches(&mut index, &keys, &rows, 7, LinkMode::Parallel);
        assert_healthy(&index, &format!("near copies, seed {seed}"));
    }
}

/// Churn: adds with copies, upserts (to copies and to fresh rows), removals and compactions,
/// checked after every step and after a save and load.
#[test]
fn churn_with_copies_keeps_every_vector_reachable() {
    for seed in 20..23u64 {
        for mode in [LinkMode::Sequential, LinkMode::Parallel] {
            let dim = 16;
            let mut rng = StdRng::seed_from_u64(seed);
            let mut index = HnswIndex::new(config(dim, Metric::L2sq, 6, seed)).expect("index");
            let stop = StopFlag::never();
            let mut stored: HashMap<u64, Vec<f32>> = HashMap::new();
            let mut next_key = 0u64;
            for step in 0..40 {
                let batch = rng.gen_range(1..60);
                let mut keys = Vec::new();
                let mut rows = Vec::new();
                for _ in 0..batch {
                    let upsert = !stored.is_empty() && rng.gen_bool(0.3);
                    let key = if upsert {
                        *stored
                            .keys()
                            .nth(rng.gen_range(0..stored.len()))
                            .expect("key")
                    } else {
                        next_key += 1;
                        next_key
                    };
                    if keys.contains(&key) {
                        continue;
                    }
                    let copy = !stored.is_empty() && rng.gen_bool(0.4);
                    let row = if copy {
                        stored
                            .values()
                            .nth(rng.gen_range(0..stored.len()))
                            .expect("row")
                            .clone()
                    } else {
                        random_rows(&mut rng, 1, dim)
                    };
                    keys.push(key);
                    rows.extend_from_slice(&row);
                    stored.insert(key, row);
                }
                index.add_with(&keys, &rows, &stop, mode).expect("add");
                if rng.gen_bool(0.5) {
                    let gone: Vec<u64> = stored
                        .keys()
                        .copied()
                        .filter(|_| rng.gen_bool(0.15))
                        .collect();
                    index.remove(&gone).expect("remove");
                    for key in &gone {
                        stored.remove(key);
                    }
                }
                if step % 7 == 6 {
                    index.compact(&stop).expect("compact");
                }
                assert_eq!(index.len(), stored.len());
                assert_healthy(&index, &format!("seed {seed}, {mode:?}, step {step}"));
            }
            let bytes = index.to_bytes().expect("save");
            let loaded = HnswIndex::from_bytes(&bytes).expect("load");
            assert_healthy(&loaded, &format!("seed {seed}, {mode:?}, loaded"));
        }
    }
}
