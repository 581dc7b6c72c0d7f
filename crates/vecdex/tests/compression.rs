//! Compressed search forms in FlatIndex and HnswIndex: training (explicit and by itself), the
//! untrained error, recall after rescoring against exact search, rescored distances, code sizes
//! and code bookkeeping through upserts and removals.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{
    Compression, Error, FlatConfig, FlatIndex, HnswConfig, HnswIndex, KeyFilter, LinkMode, Metric,
    PqConfig, Quantization, Reduction, RescoreParams, SearchResults, SqConfig, StopFlag,
};

/// Clustered rows (quantization needs structure to be meaningful): `clusters` random centres,
/// each row a centre plus noise, scaled down along the dimensions.
fn clustered(rng: &mut StdRng, rows: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    (0..rows)
        .flat_map(|_| {
            let c = rng.gen_range(0..clusters);
            let centre = centres[c * dim..(c + 1) * dim].to_vec();
            // Variance decays along the dimensions, as in real embeddings: the leading
            // dimensions (a Matryoshka prefix) and a few principal components carry most of it.
            centre
                .into_iter()
                .enumerate()
                .map(|(d, x)| (x + rng.gen_range(-0.35..0.35)) * 0.93f32.powi(d as i32))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn keys(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

fn recall(got: &SearchResults, want: &SearchResults) -> f64 {
    let mut found = 0;
    for q in 0..want.counts.len() {
        let truth = &want.keys[q * want.k..(q + 1) * want.k];
        let hits = &got.keys[q * got.k..q * got.k + got.counts[q] as usize];
        found += hits.iter().filter(|h| truth.contains(h)).count();
    }
    found as f64 / (want.counts.len() * want.k) as f64
}

fn compression(quantization: Quantization, reduction: Reduction) -> Compression {
    Compression {
        quantization,
        reduction,
        training_size: Some(1_000),
        ..Compression::default()
    }
}

/// PQ with `subspaces` that never trains by itself on the test data: only `train` trains it.
fn pq_trained_only_when_told(subspaces: usize) -> Compression {
    Compression {
        training_size: Some(1_000_000),
        ..compression(Quantization::Pq(PqConfig::new(subspaces)), Reduction::None)
    }
}

/// Two flat indexes answer `queries` alike by their codes' own estimates (no rescoring), which
/// holds when their codes are equal.
fn assert_same_codes(a: &FlatIndex, b: &FlatIndex, queries: &[f32]) {
    let estimates = RescoreParams {
        oversample: Some(10),
        rescore: false,
    };
    let search = |index: &FlatIndex| {
        index
            .search_with(queries, K, estimates, None, &StopFlag::never())
            .expect("search")
    };
    let (a, b) = (search(a), search(b));
    assert_eq!(a.distances, b.distances);
    assert_eq!(a.keys, b.keys);
}

fn sq() -> SqConfig {
    SqConfig::default()
}

/// Every form, with the recall@10 it must reach after rescoring on the clustered data.
fn forms(dim: usize) -> Vec<(&'static str, Compression, usize, f64)> {
    let none = Reduction::None;
    vec![
        ("f16", compression(Quantization::F16, none), 4, 0.99),
        ("bf16", compression(Quantization::Bf16, none), 4, 0.99),
        ("sq8", compression(Quantization::Sq8(sq()), none), 4, 0.99),
        ("sq4", compression(Quantization::Sq4(sq()), none), 4, 0.9),
        ("binary", compression(Quantization::Binary, none), 10, 0.9),
        (
            "pq",
            compression(Quantization::Pq(PqConfig::new(dim / 4)), none),
            8,
            0.95,
        ),
        (
            "pca",
            compression(Quantization::None, Reduction::Pca(dim / 2)),
            4,
            0.95,
        ),
        (
            "pca+sq8",
            compression(Quantization::Sq8(sq()), Reduction::Pca(dim / 2)),
            4,
            0.95,
        ),
        (
            "prefix",
            compression(Quantization::None, Reduction::Prefix(dim - 8)),
            4,
            0.95,
        ),
    ]
}

const DIM: usize = 48;
const ROWS: usize = 4_000;
const K: usize = 10;

fn data() -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(11);
    let all = clustered(&mut rng, ROWS + 100, DIM, 40);
    let (base, queries) = all.split_at(ROWS * DIM);
    (base.to_vec(), queries.to_vec())
}

fn exact(base: &[f32], queries: &[f32], metric: Metric) -> SearchResults {
    let mut index = FlatIndex::new(FlatConfig { dim: DIM, metric }).expect("config");
    index
        .add(&keys(ROWS), base, &StopFlag::never())
        .expect("add");
    index
        .search(queries, K, None, &StopFlag::never())
        .expect("search")
}

#[test]
fn every_form_reaches_its_recall_after_rescoring_in_both_indexes() {
    let (base, queries) = data();
    for metric in [Metric::Cosine, Metric::L2sq, Metric::Dot] {
        let truth = exact(&base, &queries, metric);
        for (name, form, oversample, floor) in forms(DIM) {
            let params = RescoreParams {
                oversample: Some(oversample),
                rescore: true,
            };
            let mut flat = FlatIndex::with_compression(FlatConfig { dim: DIM, metric }, form)
                .expect("flat config");
            flat.add(&keys(ROWS), &base, &StopFlag::never())
                .expect("flat add");
            assert!(
                flat.is_trained(),
                "{name}: trains by itself at 1,000 vectors"
            );
            let got = flat
                .search_with(&queries, K, params, None, &StopFlag::never())
                .expect("flat search");
            let flat_recall = recall(&got, &truth);
            assert!(
                flat_recall >= floor,
                "{metric} {name} flat recall {flat_recall} < {floor}"
            );
            let mut config = HnswConfig::new(DIM, metric);
            config.ef_search = 96;
            let mut hnsw = HnswIndex::with_compression(config, form).expect("hnsw config");
            hnsw.add(&keys(ROWS), &base, &StopFlag::never())
                .expect("hnsw add");
            let got = hnsw
                .search_with(&queries, K, None, params, None, &StopFlag::never())
                .expect("hnsw search");
            let hnsw_recall = recall(&got, &truth);
            if name == "binary" {
                // Binary codes alone rank far worse: the rescoring is doing the work.
                let raw = RescoreParams {
                    rescore: false,
                    ..params
                };
                let unrescored = flat
                    .search_with(&queries, K, raw, None, &StopFlag::never())
                    .expect("flat search");
                let raw_recall = recall(&unrescored, &truth);
                assert!(
                    raw_recall + 0.1 < flat_recall,
                    "{metric} binary: {raw_recall} without rescoring vs {flat_recall}"
                );
            }
            assert!(
                hnsw_recall >= floor - 0.03,
                "{metric} {name} hnsw recall {hnsw_recall} < {floor} − 0.03"
            );
            // Rescored distances are the exact ones.
            for q in 0..truth.counts.len() {
                let key = got.keys[q * got.k];
                let vector = hnsw.get(key).expect("stored");
                let query = &queries[q * DIM..(q + 1) * DIM];
                let d = match metric {
                    Metric::L2sq => query
                        .iter()
                        .zip(&vector)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>(),
                    Metric::Cosine => {
                        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
                        1.0 - query.iter().zip(&vector).map(|(a, b)| a * b).sum::<f32>() / norm
                    }
                    _ => 1.0 - query.iter().zip(&vector).map(|(a, b)| a * b).sum::<f32>(),
                };
                let got_d = got.distances[q * got.k];
                assert!(
                    (got_d - d).abs() <= 1e-3 * d.abs().max(1.0),
                    "{metric} {name}: rescored distance {got_d} vs exact {d}"
                );
            }
        }
    }
}

#[test]
fn searching_before_training_is_an_error_and_training_by_itself_happens_at_the_threshold() {
    let (base, queries) = data();
    let form = Compression {
        training_size: Some(2_000),
        ..compression(Quantization::Sq8(sq()), Reduction::None)
    };
    let mut flat = FlatIndex::with_compression(
        FlatConfig {
            dim: DIM,
            metric: Metric::L2sq,
        },
        form,
    )
    .expect("config");
    let mut hnsw =
        HnswIndex::with_compression(HnswConfig::new(DIM, Metric::L2sq), form).expect("config");
    for step in 0..4 {
        let rows = step * 500..(step + 1) * 500;
        let batch = &base[rows.start * DIM..rows.end * DIM];
        let batch_keys: Vec<u64> = rows.map(|r| r as u64).collect();
        flat.add(&batch_keys, batch, &StopFlag::never())
            .expect("add");
        hnsw.add(&batch_keys, batch, &StopFlag::never())
            .expect("add");
        let trained = (step + 1) * 500 >= 2_000;
        assert_eq!(flat.is_trained(), trained);
        assert_eq!(hnsw.is_trained(), trained);
        let flat_result = flat.search(&queries, K, None, &StopFlag::never());
        let hnsw_result = hnsw.search(&queries, K, None, None, &StopFlag::never());
        if trained {
            assert!(flat_result.is_ok() && hnsw_result.is_ok());
        } else {
            for result in [flat_result.map(|_| ()), hnsw_result.map(|_| ())] {
                let error = result.expect_err("untrained");
                assert!(matches!(error, Error::NotTrained(_)), "{error:?}");
                assert_eq!(error.code(), "ERR_NOT_TRAINED");
            }
        }
    }
    // Vectors added before training were encoded when it happened: each finds itself.
    let first = &base[..DIM];
    let hit = hnsw
        .search(first, 1, None, None, &StopFlag::never())
        .expect("search");
    assert_eq!(hit.keys[0], 0);
}

#[test]
fn explicit_training_encodes_what_is_stored_and_uncompressed_indexes_refuse_it() {
    let (base, queries) = data();
    let form = pq_trained_only_when_told(12);
    let mut hnsw =
        HnswIndex::with_compression(HnswConfig::new(DIM, Metric::Cosine), form).expect("config");
    hnsw.add(&keys(ROWS), &base, &StopFlag::never())
        .expect("add");
    assert!(!hnsw.is_trained());
    hnsw.train(&base[..2_000 * DIM]).expect("train");
    assert!(hnsw.is_trained());
    let truth = exact(&base, &queries, Metric::Cosine);
    let params = RescoreParams {
        oversample: Some(10),
        rescore: true,
    };
    let got = hnsw
        .search_with(&queries, K, None, params, None, &StopFlag::never())
        .expect("search");
    assert!(recall(&got, &truth) >= 0.85, "{}", recall(&got, &truth));
    let stats = hnsw.compression_stats();
    assert_eq!((stats.quantization, stats.code_size), ("pq", 12));
    assert_eq!(stats.code_bytes, 12 * ROWS);
    assert_eq!(stats.vector_bytes, 4 * DIM * ROWS);

    let mut plain = FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::Cosine,
    })
    .expect("config");
    let error = plain
        .train(&base[..DIM * 10])
        .expect_err("nothing to train");
    assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
    let error = hnsw.train(&base[..DIM + 1]).expect_err("ragged sample");
    assert_eq!(error.code(), "ERR_DIMENSION_MISMATCH");
}

#[test]
fn a_model_is_learnt_beside_searches_and_changes_nothing_until_installed() {
    let (base, queries) = data();
    let form = pq_trained_only_when_told(12);
    let params = RescoreParams {
        oversample: Some(10),
        rescore: false,
    };
    let lock = std::sync::RwLock::new(
        HnswIndex::with_compression(HnswConfig::new(DIM, Metric::Cosine), form).expect("config"),
    );
    {
        let mut index = lock.write().expect("lock");
        index
            .add(&keys(ROWS), &base, &StopFlag::never())
            .expect("add");
        index.train(&base[..1_000 * DIM]).expect("first training");
    }
    let search = |index: &HnswIndex| {
        index
            .search_with(&queries, K, None, params, None, &StopFlag::never())
            .expect("search")
    };
    let before = search(&lock.read().expect("lock"));
    // Fitting holds a read guard; searches hold others at the same time and see the old codes.
    let (trained, during) = std::thread::scope(|scope| {
        let fitting = scope.spawn(|| lock.read().expect("lock").fit(&base[1_000 * DIM..]));
        let during = search(&lock.read().expect("lock"));
        (fitting.join().expect("fit thread"), during)
    });
    let trained = trained.expect("fit");
    assert_eq!(during.keys, before.keys);
    assert_eq!(during.distances, before.distances);

    let mut index = lock.write().expect("lock");
    index.install_training(trained).expect("install");
    let truth = exact(&base, &queries, Metric::Cosine);
    let rescored = RescoreParams {
        rescore: true,
        ..params
    };
    let got = index
        .search_with(&queries, K, None, rescored, None, &StopFlag::never())
        .expect("search");
    assert!(recall(&got, &truth) >= 0.85, "{}", recall(&got, &truth));
    // The same sample through train() gives the same codes, hence the same estimates.
    let installed = search(&index);
    index.train(&base[1_000 * DIM..]).expect("train");
    assert_eq!(search(&index).distances, installed.distances);

    // A model fitted for another index is refused, and the index keeps working.
    let other = FlatIndex::with_compression(
        FlatConfig {
            dim: DIM,
            metric: Metric::Cosine,
        },
        compression(Quantization::Pq(PqConfig::new(6)), Reduction::None),
    )
    .expect("config")
    .fit(&base[..1_000 * DIM])
    .expect("fit");
    let error = index.install_training(other).expect_err("foreign model");
    assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
    assert_eq!(search(&index).distances, installed.distances);
}

#[test]
fn a_model_fitted_before_a_write_is_installed_with_fresh_codes() {
    let (base, queries) = data();
    let config = FlatConfig {
        dim: DIM,
        metric: Metric::Cosine,
    };
    let flat = || {
        let mut index =
            FlatIndex::with_compression(config, pq_trained_only_when_told(12)).expect("config");
        index
            .add(&keys(ROWS), &base, &StopFlag::never())
            .expect("add");
        index
    };
    let sample = &base[..1_000 * DIM];
    // Every stored vector replaced by another after the fit: codes staged by the fit are stale.
    let shuffled: Vec<f32> = base.chunks_exact(DIM).rev().flatten().copied().collect();
    let mut late = flat();
    let trained = late.fit(sample).expect("fit");
    late.add(&keys(ROWS), &shuffled, &StopFlag::never())
        .expect("upsert");
    late.install_training(trained).expect("install");
    let mut fresh = flat();
    fresh
        .add(&keys(ROWS), &shuffled, &StopFlag::never())
        .expect("upsert");
    fresh.train(sample).expect("train");
    assert_same_codes(&late, &fresh, &queries);
}

#[test]
fn training_by_itself_can_learn_its_model_first_with_shared_access() {
    let (base, queries) = data();
    let form = compression(Quantization::Pq(PqConfig::new(12)), Reduction::None);
    let estimates = RescoreParams {
        oversample: Some(10),
        rescore: false,
    };
    let (first, rest) = (500, 1_500);
    let (first_rows, rest_rows) = base.split_at(first * DIM);
    let rest_rows = &rest_rows[..rest * DIM];
    let rest_keys: Vec<u64> = (first as u64..(first + rest) as u64).collect();

    // HNSW: one index learns the model in prepare, the other before it; sequential linking
    // makes both graphs the same, so equal estimates mean equal codes.
    let hnsw = || {
        let mut index = HnswIndex::with_compression(HnswConfig::new(DIM, Metric::Cosine), form)
            .expect("config");
        index
            .add_with(
                &keys(first),
                first_rows,
                &StopFlag::never(),
                LinkMode::Sequential,
            )
            .expect("add below the training size");
        index
    };
    let (mut plain, mut fitted) = (hnsw(), hnsw());
    assert!(fitted
        .fit_for_batch(&keys(10), &first_rows[..10 * DIM])
        .expect("fit")
        .is_none());
    let model = fitted.fit_for_batch(&rest_keys, rest_rows).expect("fit");
    assert!(model.is_some() && !fitted.is_trained());
    let pending = fitted
        .prepare_with(&rest_keys, rest_rows, model)
        .expect("prepare");
    fitted
        .link(&pending, &StopFlag::never(), LinkMode::Sequential)
        .expect("link");
    fitted.commit(pending);
    plain
        .add_with(
            &rest_keys,
            rest_rows,
            &StopFlag::never(),
            LinkMode::Sequential,
        )
        .expect("add");
    assert!(plain.is_trained() && fitted.is_trained());
    let search = |index: &HnswIndex| {
        index
            .search_with(&queries, K, None, estimates, None, &StopFlag::never())
            .expect("search")
    };
    assert_eq!(search(&fitted).distances, search(&plain).distances);
    // A batch that would train is validated before the model is learnt from it.
    let mut bad = rest_rows.to_vec();
    bad[7] = f32::NAN;
    let error = hnsw()
        .fit_for_batch(&rest_keys, &bad)
        .expect_err("NaN in the batch");
    assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");

    // FlatIndex: the same through fit_for_rows and insert_with.
    let config = FlatConfig {
        dim: DIM,
        metric: Metric::Cosine,
    };
    let flat = || {
        let mut index = FlatIndex::with_compression(config, form).expect("config");
        index
            .add(&keys(first), first_rows, &StopFlag::never())
            .expect("add below the training size");
        index
    };
    let (mut plain, mut fitted) = (flat(), flat());
    let batch = FlatIndex::check_batch(config, &rest_keys, rest_rows).expect("batch");
    let model = fitted.fit_for_rows(&batch, 0..rest).expect("fit");
    assert!(model.is_some() && !fitted.is_trained());
    fitted.insert_with(&batch, 0..rest, model).expect("insert");
    plain.insert(&batch, 0..rest).expect("insert");
    assert_same_codes(&fitted, &plain, &queries);
}

#[test]
fn flat_codes_follow_their_vectors_through_upserts_and_swap_removals() {
    let (base, _) = data();
    let form = compression(Quantization::Sq8(sq()), Reduction::None);
    let mut flat = FlatIndex::with_compression(
        FlatConfig {
            dim: DIM,
            metric: Metric::L2sq,
        },
        form,
    )
    .expect("config");
    flat.add(&keys(ROWS), &base, &StopFlag::never())
        .expect("add");
    // Remove every third key (the last slots move into the holes), and give key 1 key 2's vector.
    let removed: Vec<u64> = (0..ROWS as u64).filter(|k| k % 3 == 0).collect();
    assert_eq!(flat.remove(&removed), removed.len());
    flat.add(&[1], &base[2 * DIM..3 * DIM], &StopFlag::never())
        .expect("upsert");
    for key in (0..ROWS as u64).filter(|k| k % 3 != 0).step_by(7) {
        let query = flat.get(key).expect("stored");
        let hits = flat
            .search_with(
                &query,
                2,
                RescoreParams {
                    oversample: Some(1),
                    rescore: false,
                },
                None,
                &StopFlag::never(),
            )
            .expect("search");
        let found = &hits.keys[..hits.counts[0] as usize];
        assert!(found.contains(&key), "key {key}: codes hit {found:?}");
    }
}

#[test]
fn code_sizes_meet_the_memory_targets() {
    // Targets against 4·d bytes of f32 (issue 4): SQ8 ≤ 0.27×, SQ4 ≤ 0.14×, binary ≤ 0.04×,
    // PQ with m = d/4 ≤ 0.07×, at GloVe's 100 and Fashion-MNIST's 784 dimensions.
    let mut rng = StdRng::seed_from_u64(3);
    for dim in [100usize, 784] {
        let base = clustered(&mut rng, 1_200, dim, 10);
        for (form, limit) in [
            (Quantization::Sq8(sq()), 0.27),
            (Quantization::Sq4(sq()), 0.14),
            (Quantization::Binary, 0.04),
            (
                Quantization::Pq(PqConfig {
                    iterations: 2,
                    ..PqConfig::new(dim / 4)
                }),
                0.07,
            ),
        ] {
            let mut flat = FlatIndex::with_compression(
                FlatConfig {
                    dim,
                    metric: Metric::L2sq,
                },
                compression(form, Reduction::None),
            )
            .expect("config");
            flat.add(&keys(1_200), &base, &StopFlag::never())
                .expect("add");
            let stats = flat.compression_stats();
            let ratio = stats.code_size as f64 / (4 * dim) as f64;
            assert!(
                ratio <= limit,
                "{} at {dim}: {ratio} > {limit}",
                stats.quantization
            );
        }
    }
}

#[test]
fn bad_compression_settings_are_refused() {
    let config = HnswConfig::new(16, Metric::Cosine);
    let bad = [
        Compression {
            oversample: Some(0),
            ..Compression::default()
        },
        compression(Quantization::None, Reduction::Prefix(16)),
        compression(Quantization::None, Reduction::Pca(0)),
        compression(Quantization::Pq(PqConfig::new(17)), Reduction::None),
        compression(Quantization::Pq(PqConfig::new(5)), Reduction::Pca(4)),
        compression(
            Quantization::Sq8(SqConfig {
                clip_quantile: 0.5,
                ..sq()
            }),
            Reduction::None,
        ),
        Compression {
            training_size: Some(0),
            ..compression(Quantization::Binary, Reduction::None)
        },
    ];
    for form in bad {
        let error = HnswIndex::with_compression(config, form).expect_err("refused");
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT", "{form:?}");
        let error = FlatIndex::with_compression(
            FlatConfig {
                dim: 16,
                metric: Metric::Cosine,
            },
            form,
        )
        .expect_err("refused");
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT", "{form:?}");
    }
}

/// The unfiltered code scan rejects most codes by comparing with the k-th best score before it
/// offers them (`search_codes`): with many equal scores (copies of a few vectors, scanned in
/// several jobs) it must keep exactly what offering every code keeps, as the filtered scan does.
#[test]
fn unfiltered_code_scans_keep_what_offering_every_code_keeps() {
    let mut rng = StdRng::seed_from_u64(41);
    let distinct = clustered(&mut rng, 50, DIM, 5);
    // 40,000 rows of 50 vectors: ties everywhere, across the scan's 16,384-code jobs.
    let rows: Vec<f32> = (0..40_000)
        .flat_map(|i| distinct[(i % 50) * DIM..(i % 50 + 1) * DIM].to_vec())
        .collect();
    let queries = clustered(&mut rng, 8, DIM, 5);
    for quantization in [
        Quantization::Binary,
        Quantization::Rabitq { bits: 1 },
        Quantization::Rabitq { bits: 4 },
        Quantization::Sq8(SqConfig::default()),
    ] {
        let mut flat = FlatIndex::with_compression(
            FlatConfig {
                dim: DIM,
                metric: Metric::L2sq,
            },
            compression(quantization, Reduction::None),
        )
        .expect("config");
        flat.add(&keys(40_000), &rows, &StopFlag::never())
            .expect("add");
        let admit_all = KeyFilter::new(keys(40_000));
        for rescore in [false, true] {
            let params = RescoreParams {
                oversample: Some(7),
                rescore,
            };
            let plain = flat
                .search_with(&queries, K, params, None, &StopFlag::never())
                .expect("search");
            let filtered = flat
                .search_with(&queries, K, params, Some(&admit_all), &StopFlag::never())
                .expect("filtered search");
            assert_eq!(plain, filtered, "{quantization:?}, rescore {rescore}");
        }
    }
}
