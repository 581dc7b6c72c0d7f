//! Filtered HNSW search takes both of its paths, and each is right: a filter that admits few
//! vectors is scanned exactly (`admitted² ≤ 2·m·ef·n`, see the hnsw_index module docs), one
//! that admits many walks the graph. The test hook `hnsw_index::trace` counts which path each
//! query took, so the cases on either side of the threshold prove the planner's choice, and
//! the results of both are checked against a brute-force oracle. A wide filter whose vectors
//! lie far from the queries makes the walk give up and scan (its budget), exactly.
//!
//! One test function: the path counts are process-wide.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use vecdex::hnsw_index::trace::{count_paths, paths};
use vecdex::{HnswConfig, HnswIndex, KeyFilter, Metric, StopFlag};

const DIM: usize = 16;
const N: usize = 6_000;
const QUERIES: usize = 40;
const K: usize = 10;

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The `k` nearest admitted keys of `query`, by brute force.
fn oracle(rows: &[f32], admitted: &[u64], query: &[f32], k: usize) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = admitted
        .iter()
        .map(|&key| (l2(query, &rows[key as usize * DIM..][..DIM]), key))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().take(k).map(|(_, key)| key).collect()
}

#[test]
fn filtered_search_scans_below_the_threshold_walks_above_and_both_match_the_oracle() {
    let mut rng = StdRng::seed_from_u64(7);
    let rows: Vec<f32> = (0..N * DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let queries: Vec<f32> = (0..QUERIES * DIM)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let config = HnswConfig::new(DIM, Metric::L2sq);
    let ef = config.ef_search;
    let mut index = HnswIndex::new(config).expect("index");
    let keys: Vec<u64> = (0..N as u64).collect();
    let stop = StopFlag::never();
    index.add(&keys, &rows, &stop).expect("add");

    // The largest admitted count the planner scans: a² ≤ 2·m·ef·n.
    let walk_cost = 2 * config.m * ef * N;
    let mut scan_limit = (walk_cost as f64).sqrt() as usize;
    while scan_limit * scan_limit > walk_cost {
        scan_limit -= 1;
    }
    while (scan_limit + 1) * (scan_limit + 1) <= walk_cost {
        scan_limit += 1;
    }
    assert!(
        scan_limit > 100 && scan_limit < N - 100,
        "both paths fit in the index"
    );

    let mut shuffled = keys.clone();
    shuffled.shuffle(&mut rng);
    // (admitted count, scanned?): far below, at, just past, and far past the threshold.
    let cases = [
        (N / 100, true),
        (scan_limit, true),
        (scan_limit + 1, false),
        (N * 9 / 10, false),
    ];
    for (admitted_count, scanned) in cases {
        let mut admitted = shuffled[..admitted_count].to_vec();
        admitted.sort_unstable();
        let filter = KeyFilter::new(admitted.clone());
        let mut found = 0;
        // One query at a time (the JS thread's path), then the whole batch (the pool's).
        count_paths(true);
        let mut single = Vec::new();
        for q in queries.chunks_exact(DIM) {
            single.push(
                index
                    .search(q, K, None, Some(&filter), &stop)
                    .expect("search"),
            );
        }
        let batch = index
            .search(&queries, K, None, Some(&filter), &stop)
            .expect("batch search");
        let taken = paths();
        count_paths(false);
        let total = 2 * QUERIES as u64;
        // Above the threshold every query walks first; a walk that scores as many nodes as the
        // scan would cost gives up and scans (a rescan), which in a graph this small is common.
        let (walked, want_scans) = if scanned { (0, total) } else { (total, 0) };
        assert_eq!(
            (taken.walks + taken.rescans, taken.scans),
            (walked, want_scans),
            "{admitted_count} admitted of {N} (scan up to {scan_limit}): {taken:?}"
        );
        for (q, query) in queries.chunks_exact(DIM).enumerate() {
            let exact = oracle(&rows, &admitted, query, K);
            let row = &batch.keys[q * batch.k..][..batch.counts[q] as usize];
            let one = &single[q];
            assert_eq!(
                row,
                &one.keys[..one.counts[0] as usize],
                "batch and single search agree"
            );
            assert!(
                row.iter().all(|key| admitted.binary_search(key).is_ok()),
                "every hit is admitted"
            );
            assert_eq!(row.len(), K);
            found += row.iter().filter(|key| exact.contains(key)).count();
        }
        let recall = found as f64 / (QUERIES * K) as f64;
        if scanned {
            assert_eq!(
                recall, 1.0,
                "an exact scan is exact ({admitted_count} admitted)"
            );
        } else {
            assert!(
                recall >= 0.95,
                "walk recall {recall} ({admitted_count} admitted)"
            );
        }
    }

    // A filter that admits many vectors, all far from the query (a label that correlates with
    // position): the planner walks, the walk crosses rejected nodes until it has scored what the
    // scan would cost, gives up and scans, and the answer is exact.
    // More rejected vectors around the queries than admitted ones far away: a walk that crosses
    // them all has scored more than the scan of the admitted ones would.
    let near = 13_000;
    let far = 7_000;
    let mut clustered: Vec<f32> = (0..(near + far) * DIM)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    for row in clustered.chunks_exact_mut(DIM).skip(near) {
        row[0] += 20.0;
    }
    let mut apart = HnswIndex::new(config).expect("index");
    let keys: Vec<u64> = (0..(near + far) as u64).collect();
    apart.add(&keys, &clustered, &stop).expect("add");
    let admitted: Vec<u64> = keys[near..].to_vec();
    assert!(admitted.len() * admitted.len() > 2 * config.m * ef * keys.len(), "the planner walks");
    let filter = KeyFilter::new(admitted.clone());
    count_paths(true);
    for q in queries.chunks_exact(DIM) {
        let hits = apart.search(q, K, None, Some(&filter), &stop).expect("search");
        let exact = oracle(&clustered, &admitted, q, K);
        assert_eq!(&hits.keys[..hits.counts[0] as usize], &exact[..], "a rescan is exact");
    }
    let taken = paths();
    count_paths(false);
    assert_eq!((taken.scans, taken.rescans), (0, QUERIES as u64), "{taken:?}");
}
