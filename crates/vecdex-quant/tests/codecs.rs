//! Codec tests on odd sizes (dim 65, 513 vectors): error bounds, exact table scoring, code
//! sizes, determinism and the ranking quality that rescoring relies on.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex_distance::Metric;
use vecdex_quant::codec::metric_distance;
use vecdex_quant::{
    Bf16Codec, BinaryCodec, Codec, F16Codec, PqCodec, PqConfig, ScalarCodec, Sq4Codec, Sq8Codec,
    SqConfig,
};

const DIM: usize = 65;
const ROWS: usize = 513;

/// Rows with a different scale and offset per dimension (as real embeddings have).
fn data(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let scales: Vec<f32> = (0..dim).map(|d| 0.1 + (d % 7) as f32).collect();
    let offsets: Vec<f32> = (0..dim).map(|d| (d % 5) as f32 - 2.0).collect();
    (0..rows * dim)
        .map(|i| offsets[i % dim] + scales[i % dim] * rng.gen_range(-1.0f32..1.0))
        .collect()
}

fn roundtrip<C: Codec>(codec: &C, vector: &[f32]) -> Vec<f32> {
    let mut code = vec![0u8; codec.code_size()];
    codec.encode(vector, &mut code);
    let mut out = vec![0f32; codec.dim()];
    codec.decode(&code, &mut out);
    out
}

/// Score of every row against a query, compared with the distance to the decoded row.
fn assert_score_is_decoded_distance<C: Codec>(
    codec: &C,
    rows: &[f32],
    query: &[f32],
    tolerance: f32,
) {
    let prepared = codec.prepare(query);
    let mut code = vec![0u8; codec.code_size()];
    let mut decoded = vec![0f32; codec.dim()];
    for row in rows.chunks_exact(codec.dim()) {
        codec.encode(row, &mut code);
        codec.decode(&code, &mut decoded);
        let want = metric_distance(codec.metric(), query, &decoded);
        let got = codec.score(&prepared, &code);
        assert!(
            (got - want).abs() <= tolerance * want.abs().max(1.0),
            "score {got} vs decoded distance {want}"
        );
    }
}

/// Every component of every row round-trips within `range / (2·levels)`, the range measured on
/// the data itself; then scores equal distances to decoded rows under both metrics.
fn check_scalar_codec<const BITS: u32>(seed: u64, code_size: usize) {
    let rows = data(ROWS, DIM, seed);
    let codec =
        ScalarCodec::<BITS>::train(&rows, DIM, Metric::L2sq, SqConfig::default()).expect("train");
    assert_eq!(codec.code_size(), code_size);
    let levels = ((1u32 << BITS) - 1) as f32;
    for d in 0..DIM {
        let column = || rows.iter().skip(d).step_by(DIM);
        let range = column().fold(f32::NEG_INFINITY, |a, &x| a.max(x))
            - column().fold(f32::INFINITY, |a, &x| a.min(x));
        // Half a step (range / 510 for 8 bits, range / 30 for 4), plus float rounding.
        let bound = range / (2.0 * levels) * (1.0 + 1e-4) + 1e-6;
        for row in rows.chunks_exact(DIM) {
            let (x, y) = (row[d], roundtrip(&codec, row)[d]);
            assert!(
                (x - y).abs() <= bound,
                "dimension {d}: {x} → {y}, bound {bound}"
            );
        }
    }
    for metric in [Metric::L2sq, Metric::Dot] {
        let codec =
            ScalarCodec::<BITS>::train(&rows, DIM, metric, SqConfig::default()).expect("train");
        assert_score_is_decoded_distance(&codec, &rows, &rows[..DIM], 1e-4);
    }
}

#[test]
fn sq8_error_per_component_is_at_most_a_510th_of_the_range() {
    check_scalar_codec::<8>(1, DIM);
}

#[test]
fn sq4_packs_two_codes_per_byte_within_a_30th_of_the_range() {
    check_scalar_codec::<4>(2, DIM.div_ceil(2));
}

#[test]
fn sq_clipping_narrows_the_range_and_clamps_outliers() {
    let mut rows = data(ROWS, DIM, 3);
    rows[0] = 1e4; // one outlier in dimension 0
    let plain = Sq8Codec::train(&rows, DIM, Metric::L2sq, SqConfig::default()).expect("train");
    let clipped = Sq8Codec::train(
        &rows,
        DIM,
        Metric::L2sq,
        SqConfig {
            clip_quantile: 0.01,
        },
    )
    .expect("train");
    assert!(clipped.step(0) < plain.step(0) / 100.0);
    let back = roundtrip(&clipped, &rows[..DIM]);
    assert!(
        back[0] < 10.0,
        "the outlier is clamped to the clipped range, got {}",
        back[0]
    );
    assert!(Sq8Codec::train(&rows, DIM, Metric::L2sq, SqConfig { clip_quantile: 0.5 }).is_err());
}

#[test]
fn half_precision_codecs_round_to_nearest() {
    let rows = data(ROWS, DIM, 4);
    for metric in [Metric::L2sq, Metric::Dot] {
        let f16 = F16Codec::new(DIM, metric).expect("f16");
        let bf16 = Bf16Codec::new(DIM, metric).expect("bf16");
        assert_eq!(f16.code_size(), 2 * DIM);
        for row in rows.chunks_exact(DIM).take(50) {
            for (x, y) in row.iter().zip(roundtrip(&f16, row)) {
                assert!(
                    (x - y).abs() <= x.abs() * 2f32.powi(-11) + 6e-8,
                    "f16 {x} → {y}"
                );
            }
            for (x, y) in row.iter().zip(roundtrip(&bf16, row)) {
                assert!((x - y).abs() <= x.abs() * 2f32.powi(-8), "bf16 {x} → {y}");
            }
        }
        assert_score_is_decoded_distance(&f16, &rows, &rows[..DIM], 1e-4);
        assert_score_is_decoded_distance(&bf16, &rows, &rows[..DIM], 1e-4);
    }
}

#[test]
fn binary_codes_are_signs_around_the_mean_compared_by_hamming() {
    let rows = data(ROWS, DIM, 5);
    let codec = BinaryCodec::train(&rows, DIM, Metric::L2sq).expect("train");
    assert_eq!(codec.code_size(), 9); // 65 bits
    let mean: Vec<f32> = (0..DIM)
        .map(|d| {
            rows.iter()
                .skip(d)
                .step_by(DIM)
                .map(|x| f64::from(*x))
                .sum::<f64>() as f32
                / ROWS as f32
        })
        .collect();
    let (a, b) = (&rows[..DIM], &rows[DIM..2 * DIM]);
    let mut code_b = vec![0u8; codec.code_size()];
    codec.encode(b, &mut code_b);
    let differing = (0..DIM)
        .filter(|&d| (a[d] > mean[d]) != (b[d] > mean[d]))
        .count();
    assert_eq!(codec.score(&codec.prepare(a), &code_b), differing as f32);
    assert_eq!(codec.score(&codec.prepare(b), &code_b), 0.0);
}

#[test]
fn pq_table_distance_equals_the_distance_to_the_decoded_vector() {
    let rows = data(ROWS, DIM, 6);
    for metric in [Metric::L2sq, Metric::Dot] {
        for subspaces in [1, 13, 16, DIM] {
            let codec = PqCodec::train(
                &rows,
                DIM,
                metric,
                PqConfig {
                    iterations: 8,
                    ..PqConfig::new(subspaces)
                },
            )
            .expect("train");
            assert_eq!(codec.code_size(), subspaces);
            assert_score_is_decoded_distance(&codec, &rows, &rows[2 * DIM..3 * DIM], 1e-4);
        }
    }
    assert!(PqCodec::train(&rows, DIM, Metric::L2sq, PqConfig::new(DIM + 1)).is_err());
    assert!(PqCodec::train(&rows, DIM, Metric::L2sq, PqConfig::new(0)).is_err());
}

#[test]
fn pq_training_is_seeded_and_beats_random_centroids() {
    let rows = data(ROWS, DIM, 7);
    let config = PqConfig {
        iterations: 10,
        ..PqConfig::new(16)
    };
    let a = PqCodec::train(&rows, DIM, Metric::L2sq, config).expect("train");
    let b = PqCodec::train(&rows, DIM, Metric::L2sq, config).expect("train");
    assert_eq!(a, b, "same seed, same codebooks");
    let one_pass = PqCodec::train(
        &rows,
        DIM,
        Metric::L2sq,
        PqConfig {
            iterations: 0,
            ..config
        },
    )
    .expect("train");
    let error = |codec: &PqCodec| -> f64 {
        rows.chunks_exact(DIM)
            .map(|row| f64::from(metric_distance(Metric::L2sq, row, &roundtrip(codec, row))))
            .sum()
    };
    assert!(
        error(&a) < error(&one_pass),
        "Lloyd iterations lower the quantization error"
    );
}

#[test]
fn codes_rank_neighbours_well_enough_to_rescore() {
    // Recall@10 of the top 40 by code score, against exact l2 neighbours: what rescoring needs.
    let rows = data(2000, DIM, 8);
    let queries = data(30, DIM, 9);
    let exact_top = |q: &[f32], k: usize| -> Vec<usize> {
        let mut all: Vec<(f32, usize)> = rows
            .chunks_exact(DIM)
            .map(|r| metric_distance(Metric::L2sq, q, r))
            .zip(0..)
            .collect();
        all.sort_by(|x, y| x.0.total_cmp(&y.0));
        all.into_iter().take(k).map(|(_, i)| i).collect()
    };
    fn recall<C: Codec>(
        codec: &C,
        rows: &[f32],
        queries: &[f32],
        exact: &dyn Fn(&[f32], usize) -> Vec<usize>,
    ) -> f64 {
        let codes: Vec<Vec<u8>> = rows
            .chunks_exact(DIM)
            .map(|r| {
                let mut c = vec![0u8; codec.code_size()];
                codec.encode(r, &mut c);
                c
            })
            .collect();
        let mut hits = 0;
        for q in queries.chunks_exact(DIM) {
            let prepared = codec.prepare(q);
            let mut scored: Vec<(f32, usize)> = codes
                .iter()
                .map(|c| codec.score(&prepared, c))
                .zip(0..)
                .collect();
            scored.sort_by(|x, y| x.0.total_cmp(&y.0));
            let shortlist: Vec<usize> = scored.iter().take(40).map(|s| s.1).collect();
            hits += exact(q, 10)
                .iter()
                .filter(|i| shortlist.contains(i))
                .count();
        }
        hits as f64 / (queries.len() / DIM * 10) as f64
    }
    let sq8 = Sq8Codec::train(&rows, DIM, Metric::L2sq, SqConfig::default()).expect("sq8");
    let sq4 = Sq4Codec::train(&rows, DIM, Metric::L2sq, SqConfig::default()).expect("sq4");
    let pq = PqCodec::train(
        &rows,
        DIM,
        Metric::L2sq,
        PqConfig {
            iterations: 10,
            ..PqConfig::new(DIM / 4 + 1)
        },
    )
    .expect("pq");
    assert!(recall(&sq8, &rows, &queries, &exact_top) >= 0.99);
    assert!(recall(&sq4, &rows, &queries, &exact_top) >= 0.9);
    assert!(recall(&pq, &rows, &queries, &exact_top) >= 0.7);
}
