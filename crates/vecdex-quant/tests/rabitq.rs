//! RaBitQ, 1-bit and extended (4-bit): the inner-product estimator is unbiased over the random
//! rotation, and its error bound holds at the stated confidence, on random and on real (SIFT)
//! data.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex_distance::Metric;
use vecdex_quant::rabitq::DEFAULT_EPSILON0;
use vecdex_quant::{Codec, ExtendedRabitqCodec, RabitqCodec};

fn gaussian_rows(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows * dim)
        .map(|_| rng.gen_range(-1.0f32..1.0) + rng.gen_range(-1.0f32..1.0))
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Unit residual relative to `centre`.
fn unit_residual(x: &[f32], centre: &[f32]) -> Vec<f32> {
    let r: Vec<f32> = x.iter().zip(centre).map(|(a, c)| a - c).collect();
    let n = dot(&r, &r).sqrt();
    r.iter().map(|v| v / n).collect()
}

/// What the tests below need of both forms.
trait Estimator: Codec {
    /// Trains with the rotation of `seed`.
    fn trained(sample: &[f32], dim: usize, metric: Metric, seed: u64) -> Self;
    fn unit_inner(&self, query: &Self::Query, code: &[u8]) -> f32;
    fn bound(&self, query: &Self::Query, code: &[u8]) -> f32;
}

impl Estimator for RabitqCodec {
    fn trained(sample: &[f32], dim: usize, metric: Metric, seed: u64) -> Self {
        RabitqCodec::train(sample, dim, metric, seed).unwrap()
    }
    fn unit_inner(&self, query: &Self::Query, code: &[u8]) -> f32 {
        self.estimate_unit_inner(query, code).0
    }
    fn bound(&self, query: &Self::Query, code: &[u8]) -> f32 {
        self.score_bound(query, code, DEFAULT_EPSILON0)
    }
}

impl Estimator for ExtendedRabitqCodec {
    fn trained(sample: &[f32], dim: usize, metric: Metric, seed: u64) -> Self {
        ExtendedRabitqCodec::train(sample, dim, metric, seed, 4).unwrap()
    }
    fn unit_inner(&self, query: &Self::Query, code: &[u8]) -> f32 {
        self.estimate_unit_inner(query, code).0
    }
    fn bound(&self, query: &Self::Query, code: &[u8]) -> f32 {
        self.score_bound(query, code, DEFAULT_EPSILON0)
    }
}

#[test]
fn the_inner_product_estimate_is_unbiased_over_rotations() {
    unbiased::<RabitqCodec>(3_000);
    unbiased::<ExtendedRabitqCodec>(1_000);
}

fn unbiased<C: Estimator>(rotations: u64) {
    for dim in [16usize, 64, 100] {
        let sample = gaussian_rows(200, dim, 1);
        let pair = gaussian_rows(2, dim, dim as u64 + 7);
        let (data, query) = (&pair[..dim], &pair[dim..]);
        let mut estimates = Vec::new();
        let mut truth = 0.0;
        for seed in 0..rotations {
            let codec = C::trained(&sample, dim, Metric::L2sq, seed);
            if seed == 0 {
                let centre: Vec<f32> = (0..dim)
                    .map(|d| sample.iter().skip(d).step_by(dim).sum::<f32>() / 200.0)
                    .collect();
                truth = dot(
                    &unit_residual(data, &centre),
                    &unit_residual(query, &centre),
                );
            }
            let mut code = vec![0u8; codec.code_size()];
            codec.encode(data, &mut code);
            let prepared = codec.prepare(query);
            estimates.push(f64::from(codec.unit_inner(&prepared, &code)));
        }
        let n = estimates.len() as f64;
        let mean = estimates.iter().sum::<f64>() / n;
        let variance = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let standard_error = (variance / n).sqrt();
        assert!(
            (mean - f64::from(truth)).abs() < 4.0 * standard_error,
            "d {dim}: mean estimate {mean:.5} vs true {truth:.5} (standard error {standard_error:.5})"
        );
    }
}

/// Share of (query, vector) pairs whose true distance lies within `score ± bound`.
fn coverage<C: Estimator>(
    codec: &C,
    data: &[f32],
    queries: &[f32],
    dim: usize,
    metric: Metric,
) -> f64 {
    let mut code = vec![0u8; codec.code_size()];
    let mut inside = 0usize;
    let mut total = 0usize;
    for query in queries.chunks_exact(dim) {
        let prepared = codec.prepare(query);
        for row in data.chunks_exact(dim) {
            codec.encode(row, &mut code);
            let truth = match metric {
                Metric::L2sq => l2sq(query, row),
                _ => 1.0 - dot(query, row),
            };
            let estimate = codec.score(&prepared, &code);
            let bound = codec.bound(&prepared, &code);
            // Rounding of the f32 arithmetic on top of the statistical bound.
            let slack = 1e-4 * (1.0 + truth.abs());
            inside += usize::from((estimate - truth).abs() <= bound + slack);
            total += 1;
        }
    }
    inside as f64 / total as f64
}

/// ε₀ = 1.9 is about 1.9 standard deviations of a near-normal error: 94% two-sided.
const COVERAGE: std::ops::RangeInclusive<f64> = 0.92..=0.975;

#[test]
fn the_error_bound_holds_at_its_confidence_on_random_data() {
    for (dim, metric) in [
        (64usize, Metric::L2sq),
        (128, Metric::Dot),
        (256, Metric::L2sq),
    ] {
        let data = gaussian_rows(1_000, dim, 3);
        let queries = gaussian_rows(40, dim, 4);
        let shares = [
            coverage(
                &RabitqCodec::trained(&data, dim, metric, 9),
                &data,
                &queries,
                dim,
                metric,
            ),
            coverage(
                &ExtendedRabitqCodec::trained(&data, dim, metric, 9),
                &data,
                &queries,
                dim,
                metric,
            ),
        ];
        for (bits, share) in [1, 4].into_iter().zip(shares) {
            eprintln!("d {dim} {metric:?}, {bits} bits: {share:.4} inside the bound");
            assert!(
                COVERAGE.contains(&share),
                "d {dim} {metric:?}, {bits} bits: {share:.4} of distances inside the bound"
            );
        }
    }
}

/// The 5,000 SIFT descriptors of the shared data (None, with a message, when absent).
fn sift() -> Option<Vec<f32>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/ngt-sift/sift-dataset-5k.tsv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIPPED: real SIFT descriptors not found at {} (see ../shared/data/README.md)",
            path.display()
        );
        return None;
    };
    let dim = 128;
    let rows: Vec<f32> = text
        .lines()
        .flat_map(|line| {
            line.split('\t')
                .take(dim)
                .map(|v| v.trim().parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(rows.len(), 5_000 * dim);
    Some(rows)
}

#[test]
fn the_error_bound_holds_at_its_confidence_on_sift() {
    let Some(rows) = sift() else { return };
    let dim = 128;
    let (data, queries) = rows.split_at(4_950 * dim);
    let data_part = &data[..2_000 * dim];
    let shares = [
        coverage(
            &RabitqCodec::trained(data, dim, Metric::L2sq, 5),
            data_part,
            queries,
            dim,
            Metric::L2sq,
        ),
        coverage(
            &ExtendedRabitqCodec::trained(data, dim, Metric::L2sq, 5),
            data_part,
            queries,
            dim,
            Metric::L2sq,
        ),
    ];
    for (bits, share) in [1, 4].into_iter().zip(shares) {
        eprintln!("SIFT, {bits} bits: {share:.4} inside the bound");
        assert!(
            COVERAGE.contains(&share),
            "SIFT, {bits} bits: {share:.4} of distances inside the bound"
        );
    }
}

/// recall@10 of the best `candidates` codes of `codec` for each query (vectors scored by code).
fn recall_of_candidates<C: Codec>(
    codec: &C,
    data: &[f32],
    queries: &[f32],
    dim: usize,
    candidates: usize,
) -> f64 {
    let codes: Vec<Vec<u8>> = data
        .chunks_exact(dim)
        .map(|row| {
            let mut code = vec![0u8; codec.code_size()];
            codec.encode(row, &mut code);
            code
        })
        .collect();
    let mut found = 0;
    for query in queries.chunks_exact(dim) {
        let mut exact: Vec<(f32, usize)> = data
            .chunks_exact(dim)
            .map(|r| l2sq(query, r))
            .zip(0..)
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let prepared = codec.prepare(query);
        let mut by_code: Vec<(f32, usize)> = codes
            .iter()
            .map(|c| codec.score(&prepared, c))
            .zip(0..)
            .collect();
        by_code.sort_by(|a, b| a.0.total_cmp(&b.0));
        let kept: Vec<usize> = by_code[..candidates].iter().map(|c| c.1).collect();
        found += exact[..10].iter().filter(|e| kept.contains(&e.1)).count();
    }
    found as f64 / (10 * queries.len() / dim) as f64
}

#[test]
fn codes_rank_neighbours_better_than_plain_binary_codes() {
    // Same bits per dimension as the binary codec (plus 12 bytes of factors), both scored against
    // a 4-bit query: the random rotation and the factors make the candidates better.
    for (dim, seed) in [(96usize, 11u64), (128, 12)] {
        let data = gaussian_rows(3_000, dim, seed);
        let queries = gaussian_rows(30, dim, seed + 100);
        let rabitq = RabitqCodec::train(&data, dim, Metric::L2sq, 1).unwrap();
        let binary = vecdex_quant::BinaryCodec::train(&data, dim, Metric::L2sq).unwrap();
        for candidates in [50usize, 100] {
            let (ours, plain) = (
                recall_of_candidates(&rabitq, &data, &queries, dim, candidates),
                recall_of_candidates(&binary, &data, &queries, dim, candidates),
            );
            eprintln!(
                "d {dim}, {candidates} candidates: recall@10 rabitq {ours:.3}, binary {plain:.3}"
            );
            assert!(
                ours > plain,
                "d {dim}, {candidates} candidates: rabitq {ours:.3} vs binary {plain:.3}"
            );
        }
    }
}

#[test]
fn decode_points_along_the_bits_at_the_residual_norm() {
    let dim = 32;
    let data = gaussian_rows(100, dim, 21);
    let codec = RabitqCodec::train(&data, dim, Metric::L2sq, 2).unwrap();
    let mut code = vec![0u8; codec.code_size()];
    let mut out = vec![0f32; dim];
    for row in data.chunks_exact(dim).take(10) {
        codec.encode(row, &mut code);
        codec.decode(&code, &mut out);
        // Decoding then encoding gives the same bits (the decoded residual is the bits' vector).
        let mut again = vec![0u8; codec.code_size()];
        codec.encode(&out, &mut again);
        assert_eq!(code[..dim / 8], again[..dim / 8]);
    }
}

#[test]
fn the_model_loads_back_bit_for_bit_and_bad_bytes_are_errors() {
    let dim = 65;
    let data = gaussian_rows(300, dim, 31);
    for metric in [Metric::L2sq, Metric::Dot, Metric::Cosine] {
        let trained = RabitqCodec::train(&data, dim, metric, 7).unwrap();
        let bytes = trained.model_bytes();
        assert_eq!(bytes.len(), 4 * dim * (dim + 1));
        let loaded = RabitqCodec::from_model_bytes(&bytes, dim, metric).unwrap();
        assert_eq!(loaded, trained);
        let (mut a, mut b) = (
            vec![0u8; trained.code_size()],
            vec![0u8; loaded.code_size()],
        );
        let query = &data[dim..2 * dim];
        for row in data.chunks_exact(dim).take(20) {
            trained.encode(row, &mut a);
            loaded.encode(row, &mut b);
            assert_eq!(a, b);
            let (x, y) = (
                trained.score(&trained.prepare(query), &a),
                loaded.score(&loaded.prepare(query), &b),
            );
            assert_eq!(x.to_bits(), y.to_bits());
        }
        for cut in [0, 1, bytes.len() - 1] {
            assert!(RabitqCodec::from_model_bytes(&bytes[..cut], dim, metric).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(RabitqCodec::from_model_bytes(&longer, dim, metric).is_err());
        let mut stretched = bytes.clone();
        // The first rotation row doubled in length: not a rotation.
        for i in 0..dim {
            let at = 4 * (dim + i);
            let value = f32::from_le_bytes(stretched[at..at + 4].try_into().unwrap()) * 2.0;
            stretched[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        let message = RabitqCodec::from_model_bytes(&stretched, dim, metric)
            .unwrap_err()
            .message()
            .to_string();
        assert!(message.contains("rotation row 0"), "{message}");
        let mut nan = bytes.clone();
        nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(RabitqCodec::from_model_bytes(&nan, dim, metric).is_err());
    }
    assert!(RabitqCodec::train(&data, dim, Metric::Hamming, 1).is_err());
}

#[test]
fn four_bit_codes_find_the_neighbours_without_rescoring() {
    // recall@10 of the ten best codes (no rescoring): 1-bit codes need many more candidates.
    let dim = 128;
    let data = gaussian_rows(3_000, dim, 41);
    let queries = gaussian_rows(30, dim, 141);
    let extended = ExtendedRabitqCodec::trained(&data, dim, Metric::L2sq, 1);
    let one_bit = RabitqCodec::trained(&data, dim, Metric::L2sq, 1);
    let (wide, narrow) = (
        recall_of_candidates(&extended, &data, &queries, dim, 10),
        recall_of_candidates(&one_bit, &data, &queries, dim, 10),
    );
    eprintln!("random d {dim}: recall@10 of 10 codes, 4 bits {wide:.3}, 1 bit {narrow:.3}");
    assert!(
        wide > 0.75 && wide > narrow + 0.3,
        "4 bits {wide:.3}, 1 bit {narrow:.3}"
    );
    let Some(rows) = sift() else { return };
    let (data, queries) = rows.split_at(4_950 * dim);
    let extended = ExtendedRabitqCodec::trained(data, dim, Metric::L2sq, 1);
    let recall = recall_of_candidates(&extended, &data[..2_000 * dim], queries, dim, 10);
    eprintln!("SIFT: recall@10 of 10 codes, 4 bits {recall:.3}");
    assert!(recall >= 0.9, "SIFT: 4 bits {recall:.3}");
}
