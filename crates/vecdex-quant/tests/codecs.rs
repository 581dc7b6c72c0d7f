//! Codec tests on odd sizes (dim 65, 513 vectors): error bounds, exact table scoring, code
//! sizes, determinism and the ranking quality that rescoring relies on; the SIMD scoring paths
//! of the scalar codecs against their plain loops and decoded rows on odd dimensions.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex_distance::{padded_len, Metric, RowKernel, SimdLevel};
use vecdex_quant::codec::metric_distance;
use vecdex_quant::{
    AnyCodec, Bf16Codec, BinaryCodec, Codec, F16Codec, PlainCodec, PqCodec, PqConfig, ScalarCodec,
    Sq4Codec, Sq8Codec, SqConfig,
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
            ..SqConfig::default()
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
    let half = SqConfig {
        clip_quantile: 0.5,
        ..SqConfig::default()
    };
    assert!(Sq8Codec::train(&rows, DIM, Metric::L2sq, half).is_err());
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
fn plain_codes_are_padded_f32_and_score_alike_at_any_address() {
    let rows = data(ROWS, DIM, 10);
    for metric in [Metric::L2sq, Metric::Dot] {
        let plain = PlainCodec::new(DIM, metric);
        assert_eq!(plain.code_size(), 4 * padded_len(DIM));
        for row in rows.chunks_exact(DIM).take(50) {
            assert_eq!(roundtrip(&plain, row), row);
        }
        assert_score_is_decoded_distance(&plain, &rows, &rows[..DIM], 1e-4);
        // An index keeps codes 64-byte aligned and scores them in place; a code at an address
        // that is not 4-aligned goes through a copy and must score and decode the same.
        let size = plain.code_size();
        let query = plain.prepare(&rows[DIM..2 * DIM]);
        let mut buffer = vec![0u8; size + 4];
        let odd = (0..4)
            .find(|o| !(buffer.as_ptr() as usize + o).is_multiple_of(4))
            .expect("an odd offset");
        let mut code = vec![0u8; size];
        let (mut aligned, mut unaligned) = (vec![0f32; DIM], vec![0f32; DIM]);
        for row in rows.chunks_exact(DIM).take(50) {
            plain.encode(row, &mut code);
            plain.encode(row, &mut buffer[odd..odd + size]);
            let shifted = &buffer[odd..odd + size];
            assert_eq!(
                plain.score(&query, shifted).to_bits(),
                plain.score(&query, &code).to_bits()
            );
            plain.decode(&code, &mut aligned);
            plain.decode(shifted, &mut unaligned);
            assert_eq!(aligned, unaligned);
        }
    }
}

#[test]
fn any_codec_dispatches_to_the_codec_inside() {
    let rows = data(ROWS, DIM, 11);
    let sq8 = Sq8Codec::train(&rows, DIM, Metric::L2sq, SqConfig::default()).expect("sq8");
    let any = AnyCodec::Sq8(sq8.clone());
    assert_eq!(any.code_size(), sq8.code_size());
    assert_eq!(any.model_bytes(), sq8.model_bytes());
    let (mut want, mut got) = (vec![0u8; sq8.code_size()], vec![0u8; sq8.code_size()]);
    sq8.encode(&rows[..DIM], &mut want);
    any.encode(&rows[..DIM], &mut got);
    assert_eq!(got, want);
    // The macro binds the concrete codec: its prepared query scores the code as sq8's does.
    let query = sq8.prepare(&rows[DIM..2 * DIM]);
    let score = vecdex_quant::with_codec!(&any, |c| c.score(&c.prepare(&rows[DIM..2 * DIM]), &got));
    assert_eq!(score.to_bits(), sq8.score(&query, &want).to_bits());
    // Codecs that learn nothing save nothing.
    let f16 = AnyCodec::F16(F16Codec::new(DIM, Metric::Dot).expect("f16"));
    assert!(f16.model_bytes().is_empty());
    assert!(AnyCodec::Plain(PlainCodec::new(DIM, Metric::Dot))
        .model_bytes()
        .is_empty());
}

#[test]
fn binary_codes_are_signs_around_the_mean_scored_against_the_float_query() {
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
    for d in 0..DIM {
        assert_eq!(code_b[d / 8] >> (d % 8) & 1 == 1, b[d] > mean[d], "bit {d}");
    }
    // Asymmetric: the float query against the code's decoded vector, not bits against bits.
    let mut decoded = vec![0f32; DIM];
    codec.decode(&code_b, &mut decoded);
    let exact: f32 = a.iter().zip(&decoded).map(|(x, y)| (x - y) * (x - y)).sum();
    let score = codec.score(&codec.prepare(a), &code_b);
    assert!(
        (score - exact).abs() < 0.05 * exact,
        "score {score} vs distance to the decoded vector {exact}"
    );
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
    let sq8sym = Sq8Codec::train(&rows, DIM, Metric::L2sq, SYMMETRIC).expect("sq8sym");
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
    assert!(recall(&sq8sym, &rows, &queries, &exact_top) >= 0.99);
    assert!(recall(&sq4, &rows, &queries, &exact_top) >= 0.9);
    assert!(recall(&pq, &rows, &queries, &exact_top) >= 0.7);
}

const SYMMETRIC: SqConfig = SqConfig {
    clip_quantile: 0.0,
    symmetric: true,
};

/// Odd dimensions: partial SIMD groups of every kernel (16 f32, 32 nibbles, 64 bytes).
const ODD_DIMS: [usize; 7] = [1, 15, 17, 64, 65, 100, 129];

/// Every kernel this CPU can run: each SIMD level, and AVX-512 with and without VNNI.
fn kernels() -> Vec<RowKernel> {
    SimdLevel::available()
        .into_iter()
        .flat_map(|level| [RowKernel::new(level), RowKernel::new(level).without_vnni()])
        .collect()
}

/// The codec's score at each kernel equals the plain loop's (scalar level) within float
/// tolerance, and the distance to the decoded row.
fn check_kernels_agree<const BITS: u32>(dim: usize, metric: Metric, seed: u64) {
    let rows = data(97, dim, seed);
    let codec = ScalarCodec::<BITS>::train(&rows, dim, metric, SqConfig::default()).expect("train");
    let plain = codec.clone().with_kernel(RowKernel::new(SimdLevel::Scalar));
    let queries = data(3, dim, seed + 1);
    let mut code = vec![0u8; codec.code_size()];
    for kernel in kernels() {
        let simd = codec.clone().with_kernel(kernel);
        assert_eq!(simd.code_size(), (dim * BITS as usize).div_ceil(8));
        for query in queries.chunks_exact(dim) {
            assert_score_is_decoded_distance(&simd, &rows, query, 1e-4);
            let (a, b) = (simd.prepare(query), plain.prepare(query));
            for row in rows.chunks_exact(dim) {
                simd.encode(row, &mut code);
                let (got, want) = (simd.score(&a, &code), plain.score(&b, &code));
                // Summation order differs: relative to the size of the terms, not the result.
                let scale: f32 = query.iter().chain(row).map(|x| x * x).sum();
                assert!(
                    (got - want).abs() <= 1e-5 * scale.max(1.0),
                    "SQ{BITS} {metric} dim {dim} {kernel:?}: {got} vs plain {want}"
                );
            }
        }
    }
}

#[test]
fn sq8_simd_scores_equal_plain_loops_on_odd_dimensions() {
    for (i, dim) in ODD_DIMS.into_iter().enumerate() {
        for metric in [Metric::L2sq, Metric::Dot] {
            check_kernels_agree::<8>(dim, metric, 20 + i as u64);
        }
    }
}

#[test]
fn sq4_simd_scores_equal_plain_loops_on_odd_dimensions() {
    for (i, dim) in ODD_DIMS.into_iter().enumerate() {
        for metric in [Metric::L2sq, Metric::Dot] {
            check_kernels_agree::<4>(dim, metric, 40 + i as u64);
        }
    }
}

/// The documented bound of symmetric SQ8: `(α/2)·Σ |c_i − 127.5|`, twice that for l2sq, with
/// `α = max |w_i| / 127`, `w = q ⊙ s` (dot) or `(q − lo) ⊙ s` (l2sq).
fn symmetric_bound(codec: &Sq8Codec, query: &[f32], code: &[u8]) -> f32 {
    let (lo, step) = codec.ranges();
    let l2 = codec.metric() == Metric::L2sq;
    let alpha = (0..codec.dim())
        .map(|d| ((if l2 { query[d] - lo[d] } else { query[d] }) * step[d]).abs())
        .fold(0f32, f32::max)
        / 127.0;
    let spread: f32 = code[..codec.dim()]
        .iter()
        .map(|c| (f32::from(*c) - 127.5).abs())
        .sum();
    alpha / 2.0 * spread * if l2 { 2.0 } else { 1.0 }
}

#[test]
fn symmetric_sq8_is_within_its_bound_of_asymmetric_on_every_kernel() {
    for (i, dim) in ODD_DIMS.into_iter().enumerate() {
        let rows = data(97, dim, 60 + i as u64);
        let queries = data(3, dim, 80 + i as u64);
        for metric in [Metric::L2sq, Metric::Dot] {
            let asym = Sq8Codec::train(&rows, dim, metric, SqConfig::default()).expect("train");
            let sym = Sq8Codec::train(&rows, dim, metric, SYMMETRIC).expect("train");
            assert!(sym.is_symmetric() && !asym.is_symmetric());
            assert_eq!(sym.ranges(), asym.ranges(), "same ranges");
            let extra = if metric == Metric::L2sq { 4 } else { 0 };
            assert_eq!(sym.code_size(), dim + extra);
            let mut code = vec![0u8; sym.code_size()];
            for query in queries.chunks_exact(dim) {
                let a = asym.prepare(query);
                let prepared: Vec<_> = kernels()
                    .into_iter()
                    .map(|k| {
                        let codec = sym.clone().with_kernel(k);
                        let q = codec.prepare(query);
                        (codec, q)
                    })
                    .collect();
                for row in rows.chunks_exact(dim) {
                    sym.encode(row, &mut code);
                    let want = asym.score(&a, &code[..dim]);
                    let (first, q) = &prepared[0];
                    let got = first.score(q, &code);
                    // Float rounding of the expanded l2 form: relative to its largest terms.
                    let scale = if metric == Metric::L2sq {
                        query.iter().map(|x| x * x).sum::<f32>()
                            + row.iter().map(|x| x * x).sum::<f32>()
                    } else {
                        want.abs()
                    };
                    let bound = symmetric_bound(&sym, query, &code) + 1e-5 * scale.max(1.0);
                    assert!(
                        (got - want).abs() <= bound,
                        "{metric} dim {dim}: symmetric {got} vs asymmetric {want}, bound {bound}"
                    );
                    for (codec, q) in &prepared[1..] {
                        // The integer sum is exact on every path: the same score, bit for bit.
                        assert_eq!(codec.score(q, &code), got, "{metric} dim {dim}");
                    }
                }
            }
        }
    }
}

#[test]
fn symmetric_scoring_is_sq8_only() {
    let rows = data(10, 8, 99);
    assert!(Sq4Codec::train(&rows, 8, Metric::Dot, SYMMETRIC).is_err());
    assert!(Sq8Codec::train(&rows, 8, Metric::Dot, SYMMETRIC).is_ok());
}
