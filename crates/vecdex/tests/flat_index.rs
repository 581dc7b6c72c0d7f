//! FlatIndex against an independent brute-force oracle, through adds, upserts and removes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{Error, FlatConfig, FlatIndex, KeyFilter, Metric, StopFlag};
use vecdex_distance::scalar;

fn random_rows(rng: &mut StdRng, rows: usize, dim: usize) -> Vec<f32> {
    (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// Oracle: exact distances from the f64 scalar kernels over (key, vector) pairs.
fn oracle(entries: &[(u64, Vec<f32>)], query: &[f32], metric: Metric, k: usize) -> Vec<(u64, f64)> {
    let mut all: Vec<(u64, f64)> = entries
        .iter()
        .map(|(key, v)| {
            (
                *key,
                scalar::spatial(metric, query, v).expect("non-zero vectors"),
            )
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn check(
    index: &FlatIndex,
    entries: &[(u64, Vec<f32>)],
    queries: &[f32],
    k: usize,
    filter: Option<&[u64]>,
) {
    let dim = index.dim();
    let metric = index.metric();
    let key_filter = filter.map(|f| KeyFilter::new(f.to_vec()));
    let results = index
        .search(queries, k, key_filter.as_ref(), &StopFlag::never())
        .expect("search");
    let admitted: Vec<(u64, Vec<f32>)> = entries
        .iter()
        .filter(|(key, _)| filter.is_none_or(|f| f.contains(key)))
        .cloned()
        .collect();
    assert_eq!(results.k, k.min(entries.len()));
    for (q, query) in queries.chunks_exact(dim).enumerate() {
        let want = oracle(&admitted, query, metric, k);
        let count = results.counts[q] as usize;
        assert_eq!(count, want.len(), "query {q}: hit count");
        for (rank, (want_key, want_distance)) in want.iter().enumerate() {
            let got_key = results.keys[q * results.k + rank];
            let got_distance = f64::from(results.distances[q * results.k + rank]);
            let tolerance = 1e-4 * want_distance.abs().max(1.0);
            assert!(
                (got_distance - want_distance).abs() <= tolerance,
                "{metric} q{q} rank {rank}: {got_distance} vs {want_distance}"
            );
            if got_key != *want_key {
                let (_, v) = entries
                    .iter()
                    .find(|(key, _)| *key == got_key)
                    .expect("returned key exists");
                let d = scalar::spatial(metric, query, v).expect("non-zero");
                assert!(
                    (d - want_distance).abs() <= tolerance,
                    "{metric} q{q} rank {rank}: key {got_key} is not a tie"
                );
            }
        }
    }
}

#[test]
fn search_matches_oracle_through_upserts_and_removes() {
    let mut rng = StdRng::seed_from_u64(1);
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2sq] {
        for &(dim, count) in &[(1, 5), (3, 40), (65, 513), (100, 2000)] {
            let mut index = FlatIndex::new(FlatConfig { dim, metric }).expect("config");
            let data = random_rows(&mut rng, count, dim);
            let keys: Vec<u64> = (0..count as u64).map(|i| i * 7 + 3).collect();
            index.add(&keys, &data, &StopFlag::never()).expect("add");
            let mut entries: Vec<(u64, Vec<f32>)> = keys
                .iter()
                .zip(data.chunks_exact(dim))
                .map(|(k, v)| (*k, v.to_vec()))
                .collect();
            // Upsert a few, remove a third.
            let replaced = random_rows(&mut rng, 3.min(count), dim);
            index
                .add(&keys[..3.min(count)], &replaced, &StopFlag::never())
                .expect("upsert");
            for (i, v) in replaced.chunks_exact(dim).enumerate() {
                entries[i].1 = v.to_vec();
            }
            let removed: Vec<u64> = keys.iter().copied().filter(|k| k % 3 == 0).collect();
            assert_eq!(index.remove(&removed), removed.len());
            entries.retain(|(k, _)| k % 3 != 0);
            assert_eq!(index.len(), entries.len());
            for (key, v) in &entries {
                let stored = index.get(*key).expect("present");
                if metric != Metric::Cosine {
                    assert_eq!(&stored, v);
                }
            }
            let queries = random_rows(&mut rng, 9, dim);
            for k in [1, 10, count + 5] {
                check(&index, &entries, &queries, k, None);
            }
            let allow: Vec<u64> = entries
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| k % 2 == 1)
                .collect();
            check(&index, &entries, &queries, 10, Some(&allow));
            let sparse: Vec<u64> = entries.iter().map(|(k, _)| *k).take(3).collect();
            check(&index, &entries, &queries, 10, Some(&sparse));
        }
    }
}

#[test]
fn parallel_and_inline_paths_agree() {
    let mut rng = StdRng::seed_from_u64(2);
    let dim = 48;
    let count = 30_000;
    let mut index = FlatIndex::new(FlatConfig {
        dim,
        metric: Metric::L2sq,
    })
    .expect("config");
    let data = random_rows(&mut rng, count, dim);
    let keys: Vec<u64> = (0..count as u64).collect();
    index.add(&keys, &data, &StopFlag::never()).expect("add");
    let queries = random_rows(&mut rng, 70, dim);
    // 70 queries × 30k × 48 is far above the inline threshold: tiles run on the pool.
    let batch = index
        .search(&queries, 10, None, &StopFlag::never())
        .expect("batch");
    for (q, query) in queries.chunks_exact(dim).enumerate() {
        let single = index
            .search(query, 10, None, &StopFlag::never())
            .expect("single");
        assert_eq!(single.keys, batch.keys[q * 10..(q + 1) * 10]);
    }
}

#[test]
fn stop_flag_aborts_without_effect() {
    let mut index = FlatIndex::new(FlatConfig {
        dim: 4,
        metric: Metric::Dot,
    })
    .expect("config");
    let stop = StopFlag::new();
    stop.stop();
    assert_eq!(
        index.add(&[1], &[1.0, 2.0, 3.0, 4.0], &stop),
        Err(Error::Aborted)
    );
    assert_eq!(index.len(), 0);
    index
        .add(&[1], &[1.0, 2.0, 3.0, 4.0], &StopFlag::never())
        .expect("add");
    assert_eq!(index.search(&[1.0; 4], 1, None, &stop), Err(Error::Aborted));
}

#[test]
fn bad_input_is_typed_and_changes_nothing() {
    let mut index = FlatIndex::new(FlatConfig {
        dim: 2,
        metric: Metric::Cosine,
    })
    .expect("config");
    let never = StopFlag::never();
    index.add(&[1], &[1.0, 0.0], &never).expect("add");
    let code = |r: vecdex::Result<()>| r.err().map(|e| e.code());
    assert_eq!(
        code(index.add(&[2], &[1.0], &never)),
        Some("ERR_DIMENSION_MISMATCH")
    );
    assert_eq!(
        code(index.add(&[2], &[f32::NAN, 1.0], &never)),
        Some("ERR_INVALID_ARGUMENT")
    );
    assert_eq!(
        code(index.add(&[2], &[0.0, 0.0], &never)),
        Some("ERR_ZERO_VECTOR")
    );
    assert_eq!(
        code(index.add(&[2, 2], &[1.0, 0.0, 0.0, 1.0], &never)),
        Some("ERR_INVALID_ARGUMENT")
    );
    assert_eq!(
        code(index.add(&[2, 3], &[1.0, 0.0], &never)),
        Some("ERR_INVALID_ARGUMENT")
    );
    assert_eq!(
        code(index.add(&[], &[], &never)),
        Some("ERR_INVALID_ARGUMENT")
    );
    assert_eq!(index.len(), 1);
    assert_eq!(
        index
            .search(&[1.0, 0.0], 0, None, &never)
            .err()
            .map(|e| e.code()),
        Some("ERR_INVALID_ARGUMENT")
    );
    assert!(FlatIndex::new(FlatConfig {
        dim: 0,
        metric: Metric::Dot
    })
    .is_err());
    assert!(FlatIndex::new(FlatConfig {
        dim: 3,
        metric: Metric::Hamming
    })
    .is_err());
}

#[test]
fn distance_matrix_matches_oracle() {
    let mut rng = StdRng::seed_from_u64(3);
    let dim = 13;
    let q = random_rows(&mut rng, 4, dim);
    let v = random_rows(&mut rng, 9, dim);
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2sq] {
        let m = vecdex::distance_matrix(&q, &v, dim, metric, &StopFlag::never()).expect("matrix");
        for (i, a) in q.chunks_exact(dim).enumerate() {
            for (j, b) in v.chunks_exact(dim).enumerate() {
                let want = scalar::spatial(metric, a, b).expect("non-zero");
                assert!((f64::from(m[i * 9 + j]) - want).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn panics_become_internal_errors() {
    let r: vecdex::Result<()> = vecdex::catch_panic(|| panic!("boom"));
    assert_eq!(r, Err(Error::Internal("boom".into())));
}

#[test]
fn results_too_large_for_memory_are_an_error_not_an_abort() {
    let dim = 1;
    let mut index = FlatIndex::new(FlatConfig {
        dim,
        metric: Metric::L2sq,
    })
    .expect("config");
    let keys: Vec<u64> = (0..200_000).collect();
    let data: Vec<f32> = (0..200_000).map(|i| i as f32).collect();
    index.add(&keys, &data, &StopFlag::never()).expect("add");
    // 2^40 queries' worth of rows cannot be allocated; a huge k alone is fine.
    let err = vecdex::validate::try_filled(1usize << 62, 0u64, "test").expect_err("too large");
    assert_eq!(err.code(), "ERR_OUT_OF_MEMORY");
    let all = index
        .search(&[5.0], usize::MAX, None, &StopFlag::never())
        .expect("k above size");
    assert_eq!(all.k, 200_000);
    assert_eq!(all.keys[0], 5);
}

/// Data far from the origin: norms dwarf the gaps between vectors. Every vector searched in a
/// batch (more than any small-batch special case) must find itself at distance 0.
#[test]
fn l2_batches_are_exact_far_from_the_origin() {
    let mut rng = StdRng::seed_from_u64(4);
    let dim = 32;
    let count = 3000;
    let data: Vec<f32> = (0..count * dim)
        .map(|_| 1000.0 + rng.gen_range(0.0..0.1))
        .collect();
    let mut index = FlatIndex::new(FlatConfig {
        dim,
        metric: Metric::L2sq,
    })
    .expect("config");
    let keys: Vec<u64> = (0..count as u64).collect();
    index.add(&keys, &data, &StopFlag::never()).expect("add");
    let rows = 64;
    let results = index
        .search(&data[..rows * dim], 3, None, &StopFlag::never())
        .expect("search");
    let entries: Vec<(u64, Vec<f32>)> = keys
        .iter()
        .zip(data.chunks_exact(dim))
        .map(|(k, v)| (*k, v.to_vec()))
        .collect();
    for q in 0..rows {
        assert_eq!(results.keys[q * 3], q as u64, "query {q} must find itself");
        assert_eq!(results.distances[q * 3], 0.0);
    }
    check(&index, &entries, &data[..rows * dim], 3, None);
}

#[test]
fn tiny_and_huge_vectors_are_normalised_or_refused() {
    let never = StopFlag::never();
    let mut index = FlatIndex::new(FlatConfig {
        dim: 2,
        metric: Metric::Cosine,
    })
    .expect("config");
    index
        .add(&[1, 2], &[1e-30, 0.0, 1e20, 1e20], &never)
        .expect("tiny and large but finite");
    assert_eq!(index.get(1).expect("stored"), vec![1.0, 0.0]);
    let r = index.search(&[1.0, 1.0], 1, None, &never).expect("search");
    assert_eq!(r.keys[0], 2);
    let r = index
        .search(&[1e-30, 0.0], 1, None, &never)
        .expect("tiny query");
    assert_eq!(r.keys[0], 1);
    let mut l2 = FlatIndex::new(FlatConfig {
        dim: 2,
        metric: Metric::L2sq,
    })
    .expect("config");
    let err = l2
        .add(&[1], &[1e20, 0.0], &never)
        .expect_err("squared norm overflows f32");
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
    l2.add(&[1, 2], &[1e18, 0.0, 0.0, 0.0], &never)
        .expect("largest still exact");
    let r = l2.search(&[0.0, 0.0], 2, None, &never).expect("search");
    assert_eq!((r.counts[0], r.keys[0], r.keys[1]), (2, 2, 1));
    assert!(r.distances[1].is_finite());
}

#[test]
fn growing_by_copy_and_swap_keeps_every_vector() {
    let mut rng = StdRng::seed_from_u64(5);
    let dim = 9;
    let mut index = FlatIndex::new(FlatConfig {
        dim,
        metric: Metric::L2sq,
    })
    .expect("config");
    let mut entries: Vec<(u64, Vec<f32>)> = Vec::new();
    for round in 0..6u64 {
        let rows = 700;
        let data = random_rows(&mut rng, rows, dim);
        let keys: Vec<u64> = (0..rows as u64).map(|i| round * 10_000 + i).collect();
        let batch = FlatIndex::check_batch(index.config(), &keys, &data).expect("valid");
        if !index.has_room(rows) {
            let grown = index.grown_storage(rows).expect("room fits");
            index.install_storage(grown).expect("fresh storage");
            assert!(index.has_room(rows));
        }
        index.insert(&batch, 0..rows).expect("insert");
        entries.extend(
            keys.iter()
                .zip(data.chunks_exact(dim))
                .map(|(k, v)| (*k, v.to_vec())),
        );
    }
    let stale = index.grown_storage(10).expect("room fits");
    index
        .add(&[99_999_999], &vec![0.5; dim], &StopFlag::never())
        .expect("add");
    assert!(
        index.install_storage(stale).is_err(),
        "stale storage must be refused"
    );
    index.remove(&[99_999_999]);
    let queries = random_rows(&mut rng, 5, dim);
    check(&index, &entries, &queries, 10, None);
}
