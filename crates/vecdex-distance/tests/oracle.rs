//! Every kernel against the scalar oracle, over dims 1..=1024 and every element type, and the
//! blocked scan at every SIMD level this CPU has, on odd sizes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex_distance::{
    distance, hamming, scalar, ElementType, Expansion, Metric, PanelMatrix, QueryRows, SimdLevel,
    SpatialElement, TileSink, TileTransform, TopK, LANES,
};

/// Tolerance for a kernel result against the f64 oracle: relative to the magnitude of the terms
/// summed (f32 accumulation over `dim` terms), with a floor for results near zero. simsimd's
/// cosine uses a reciprocal-square-root approximation refined by Newton steps, hence 1e-3.
/// simsimd's bf16 kernels may round intermediate differences to bf16 (8-bit mantissa, relative
/// step 2^-8 ≈ 0.4%), hence 1e-2 there.
fn close(element: ElementType, got: f64, want: f64, magnitude: f64) -> bool {
    let relative = if element == ElementType::BF16 {
        1e-2
    } else {
        1e-3
    };
    (got - want).abs() <= relative * magnitude.max(1.0)
}

fn magnitude<T: SpatialElement>(metric: Metric, a: &[T], b: &[T]) -> f64 {
    let abs_dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x.as_f64() * y.as_f64()).abs())
        .sum();
    match metric {
        Metric::Cosine => 1.0,
        Metric::Dot => abs_dot,
        _ => {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x.as_f64() - y.as_f64()).powi(2))
                .sum::<f64>()
                + abs_dot
        }
    }
}

fn check_type<T: SpatialElement>(mut make: impl FnMut(&mut StdRng) -> T) {
    let mut rng = StdRng::seed_from_u64(7);
    for dim in 1..=1024usize {
        let a: Vec<T> = (0..dim).map(|_| make(&mut rng)).collect();
        let b: Vec<T> = (0..dim).map(|_| make(&mut rng)).collect();
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2sq] {
            let want = scalar::spatial(metric, &a, &b);
            let got = distance(metric, &a, &b);
            match (want, got) {
                (Some(w), Ok(g)) => assert!(
                    close(T::TYPE, g, w, magnitude(metric, &a, &b)),
                    "{:?} {metric} dim {dim}: kernel {g}, oracle {w}",
                    T::TYPE
                ),
                (None, Err(e)) => assert_eq!(e, vecdex_distance::KernelError::ZeroVector),
                (w, g) => panic!(
                    "{:?} {metric} dim {dim}: oracle {w:?}, kernel {g:?}",
                    T::TYPE
                ),
            }
        }
        assert!(
            distance(Metric::Hamming, &a, &b).is_err(),
            "hamming on {:?} must be refused",
            T::TYPE
        );
    }
}

#[test]
fn f32_kernels_match_oracle() {
    check_type(|r| r.gen_range(-1.0f32..1.0));
}

#[test]
fn f16_kernels_match_oracle() {
    check_type(|r| vecdex_distance::f16::from_f32(r.gen_range(-1.0f32..1.0)));
}

#[test]
fn bf16_kernels_match_oracle() {
    check_type(|r| vecdex_distance::bf16::from_f32(r.gen_range(-1.0f32..1.0)));
}

#[test]
fn i8_kernels_match_oracle() {
    check_type(|r| r.gen_range(-127i8..=127));
}

#[test]
fn f16_and_bf16_bit_conversions_match_simsimd() {
    // Finite values only: simsimd's software f16 conversion maps infinities to 65536.
    for bits in (0..=u16::MAX).filter(|b| (b >> 10) & 0x1f != 0x1f) {
        let ours = scalar::f16_bits_to_f32(bits);
        let theirs = vecdex_distance::f16(bits).to_f32();
        assert!(
            ours == theirs || (ours.is_nan() && theirs.is_nan()),
            "f16 {bits:#06x}: {ours} vs {theirs}"
        );
        let ours = scalar::bf16_bits_to_f32(bits);
        let theirs = vecdex_distance::bf16(bits).to_f32();
        assert!(
            ours == theirs || (ours.is_nan() && theirs.is_nan()),
            "bf16 {bits:#06x}: {ours} vs {theirs}"
        );
    }
}

#[test]
fn hamming_matches_oracle() {
    let mut rng = StdRng::seed_from_u64(9);
    for bytes in 1..=1024usize {
        let a: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
        let b: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
        assert_eq!(
            hamming(&a, &b).ok(),
            Some(scalar::hamming(&a, &b) as f64),
            "bytes {bytes}"
        );
    }
}

#[test]
fn bad_inputs_are_errors() {
    use vecdex_distance::KernelError;
    assert_eq!(
        distance(Metric::Dot, &[1.0f32, 2.0], &[1.0]),
        Err(KernelError::LengthMismatch { left: 2, right: 1 })
    );
    assert_eq!(
        distance::<f32>(Metric::L2sq, &[], &[]),
        Err(KernelError::Empty)
    );
    assert_eq!(
        distance(Metric::Cosine, &[0.0f32; 3], &[1.0; 3]),
        Err(KernelError::ZeroVector)
    );
    assert_eq!(
        distance(Metric::Cosine, &[0i8; 3], &[1; 3]),
        Err(KernelError::ZeroVector)
    );
    assert!(hamming(&[1], &[1, 2]).is_err());
    assert!("euclid".parse::<Metric>().is_err());
    assert_eq!("l2sq".parse::<Metric>(), Ok(Metric::L2sq));
}

/// Collects every offered candidate into one top-k per row.
struct Collect {
    len: usize,
    tops: Vec<TopK>,
}

impl TileSink for Collect {
    fn threshold(&self, row: usize) -> f32 {
        self.tops[row].threshold()
    }
    fn offer(&mut self, row: usize, index: usize, distance: f32) {
        if index < self.len {
            self.tops[row].push(distance, index as u32);
        }
    }
}

#[test]
fn blocked_scan_matches_oracle_at_every_level() {
    let mut rng = StdRng::seed_from_u64(11);
    for &(dim, count, queries) in &[
        (1, 1, 1),
        (3, 17, 5),
        (3, 40, 9),
        (65, 513, 13),
        (100, 1000, 9),
        (100, 1333, 9),
        (128, 100, 17),
        (257, 40, 3),
        (128, 1000, 1),
        (128, 1000, 3),
    ] {
        let mut matrix = PanelMatrix::new(dim);
        let vectors: Vec<Vec<f32>> = (0..count)
            .map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        for v in &vectors {
            matrix.push(v);
        }
        let query_data: Vec<f32> = (0..queries * dim)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let k = 10.min(count);
        for (l2, direct) in [(false, false), (true, false), (true, true)] {
            let mut norms: Vec<f32> = vectors
                .iter()
                .map(|v| v.iter().map(|x| x * x).sum())
                .collect();
            norms.resize(matrix.blocks() * LANES, 0.0);
            let row_bias: Vec<f32> = (0..queries)
                .map(|r| {
                    if l2 {
                        query_data[r * dim..(r + 1) * dim]
                            .iter()
                            .map(|x| x * x)
                            .sum()
                    } else {
                        1.0
                    }
                })
                .collect();
            let transform = match (l2, direct) {
                (true, true) => TileTransform::DirectL2,
                (true, false) => TileTransform::Expansion(Expansion {
                    column_bias: Some(&norms),
                    scale: 2.0,
                }),
                _ => TileTransform::Expansion(Expansion {
                    column_bias: None,
                    scale: 1.0,
                }),
            };
            for level in SimdLevel::available() {
                let mut sink = Collect {
                    len: count,
                    tops: (0..queries).map(|_| TopK::new(k)).collect(),
                };
                // Scan in pieces, as parallel jobs do: rows and blocks split in two (uneven).
                let (row_split, block_split) = (queries / 2, matrix.blocks() / 3);
                for rows in [0..row_split, row_split..queries] {
                    for blocks in [0..block_split, block_split..matrix.blocks()] {
                        vecdex_distance::panel::scan(
                            level,
                            &matrix,
                            QueryRows {
                                data: &query_data,
                                row_bias: &row_bias,
                            },
                            rows.clone(),
                            blocks,
                            transform,
                            &mut sink,
                        );
                    }
                }
                for (r, top) in sink.tops.into_iter().enumerate() {
                    let q = &query_data[r * dim..(r + 1) * dim];
                    let metric = if l2 { Metric::L2sq } else { Metric::Dot };
                    let mut want: Vec<(f64, usize)> = vectors
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (scalar::spatial(metric, q, v).unwrap_or(f64::NAN), i))
                        .collect();
                    want.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let got = top.into_sorted();
                    assert_eq!(got.len(), k);
                    for (g, w) in got.iter().zip(&want) {
                        // The reported index really has the reported distance (lane and block
                        // bookkeeping), and ranks agree with the oracle up to near-ties.
                        let own = scalar::spatial(metric, q, &vectors[g.index as usize])
                            .unwrap_or(f64::NAN);
                        assert!(
                            (f64::from(g.distance) - own).abs() < 1e-3 * (1.0 + own.abs()),
                            "{level:?} dim {dim}: index {} reported {} but is at {own}",
                            g.index,
                            g.distance
                        );
                        assert!(
                            (f64::from(g.distance) - w.0).abs() < 1e-3 * (1.0 + w.0.abs()),
                            "{level:?} dim {dim} l2 {l2} direct {direct}: {} vs {}",
                            g.distance,
                            w.0
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn panel_matrix_roundtrip_and_swap_remove() {
    let dim = 7;
    let mut m = PanelMatrix::new(dim);
    let vectors: Vec<Vec<f32>> = (0..40)
        .map(|i| (0..dim).map(|k| (i * 10 + k) as f32).collect())
        .collect();
    for v in &vectors {
        m.push(v);
    }
    assert_eq!(m.len(), 40);
    assert_eq!(m.blocks(), 3);
    for (i, v) in vectors.iter().enumerate() {
        assert_eq!(&m.vector(i), v);
    }
    assert_eq!(m.swap_remove(3), Some(39));
    assert_eq!(m.vector(3), vectors[39]);
    assert_eq!(m.swap_remove(38), None);
    assert_eq!(m.len(), 38);
    while m.len() > 16 {
        m.swap_remove(0);
    }
    assert_eq!(m.blocks(), 1);
}
