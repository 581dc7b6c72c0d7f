//! PCA tests on odd sizes (dim 37): orthonormal components that are eigenvectors of the sample's
//! matrix, distances (centered) and inner products (uncentered) kept on data in a 5-dimensional
//! subspace, errors, and determinism whatever the thread count.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex_quant::{Pca, PcaConfig};

const DIM: usize = 37;
const ROWS: usize = 513;

fn config(out_dim: usize, centered: bool) -> PcaConfig {
    PcaConfig { out_dim, centered }
}

/// Rows with a different scale and offset per dimension, mixed so that dimensions correlate.
fn data(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let scales: Vec<f32> = (0..dim).map(|d| 0.1 + (d % 7) as f32).collect();
    let offsets: Vec<f32> = (0..dim).map(|d| (d % 5) as f32 - 2.0).collect();
    let mut out = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let raw: Vec<f32> = (0..dim)
            .map(|d| scales[d] * rng.gen_range(-1.0f32..1.0))
            .collect();
        for d in 0..dim {
            out.push(offsets[d] + raw[d] + 0.5 * raw[(d * 7 + 3) % dim]);
        }
    }
    out
}

/// Rows `offset + Σ_k a_k b_k + noise` in the span of 5 random directions `b_k`, with latent
/// scales 5, 4, 3, 2, 1 (distinct eigenvalues) and latent means `latent_mean`.
fn subspace(rows: usize, offset: &[f32], latent_mean: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let basis: Vec<f32> = (0..5 * DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let mut out = Vec::with_capacity(rows * DIM);
    for _ in 0..rows {
        let latent: Vec<f32> = (0..5)
            .map(|k| latent_mean + (5 - k) as f32 * rng.gen_range(-1.0f32..1.0))
            .collect();
        for d in 0..DIM {
            let x: f32 = (0..5).map(|k| latent[k] * basis[k * DIM + d]).sum();
            out.push(offset[d] + x + 1e-4 * rng.gen_range(-1.0f32..1.0));
        }
    }
    out
}

fn project(pca: &Pca, x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; pca.out_dim()];
    pca.project(x, &mut out);
    out
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum()
}

/// `max |C Cᵀ − I|` over the `out_dim × out_dim` entries.
fn orthonormality_error(pca: &Pca) -> f64 {
    let rows: Vec<&[f32]> = pca.components().chunks_exact(pca.dim()).collect();
    let mut worst = 0f64;
    for (i, a) in rows.iter().enumerate() {
        for (j, b) in rows.iter().enumerate() {
            let target = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((dot(a, b) - target).abs());
        }
    }
    worst
}

#[test]
fn components_are_orthonormal_with_descending_eigenvalues() {
    let rows = data(ROWS, DIM, 1);
    for centered in [true, false] {
        for out_dim in [1, 5, 11, 36, DIM] {
            let pca = Pca::train(&rows, DIM, config(out_dim, centered)).expect("train");
            assert_eq!((pca.dim(), pca.out_dim()), (DIM, out_dim));
            assert_eq!(pca.components().len(), out_dim * DIM);
            let error = orthonormality_error(&pca);
            assert!(
                error < 1e-4,
                "centered {centered}, out_dim {out_dim}: {error}"
            );
            let values = pca.eigenvalues();
            assert_eq!(values.len(), out_dim);
            assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
            assert!(values.iter().all(|&v| v > 0.0), "{values:?}");
            // Each component's largest-magnitude entry is positive.
            for c in pca.components().chunks_exact(DIM) {
                let largest = c
                    .iter()
                    .fold(0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
                assert!(largest > 0.0);
            }
        }
    }
}

/// `M c = λ c` for each component `c`, with `M` the sample's covariance (centered) or second
/// moment (uncentered) computed here in f64; `explained` is the kept share of the trace.
#[test]
fn components_are_eigenvectors_of_the_sample_matrix() {
    let rows = data(ROWS, DIM, 2);
    for centered in [true, false] {
        let pca = Pca::train(&rows, DIM, config(9, centered)).expect("train");
        let mean = pca.mean().to_vec();
        if !centered {
            assert!(mean.iter().all(|&m| m == 0.0));
        }
        let mut matrix = vec![0f64; DIM * DIM];
        for row in rows.chunks_exact(DIM) {
            let x: Vec<f64> = row
                .iter()
                .zip(&mean)
                .map(|(x, m)| f64::from(*x) - f64::from(*m))
                .collect();
            for i in 0..DIM {
                for j in 0..DIM {
                    matrix[i * DIM + j] += x[i] * x[j] / ROWS as f64;
                }
            }
        }
        let largest = pca.eigenvalues()[0];
        for (c, &value) in pca.components().chunks_exact(DIM).zip(pca.eigenvalues()) {
            for i in 0..DIM {
                let mc: f64 = (0..DIM)
                    .map(|j| matrix[i * DIM + j] * f64::from(c[j]))
                    .sum();
                let residual = (mc - value * f64::from(c[i])).abs();
                assert!(residual < 1e-5 * largest, "centered {centered}: {residual}");
            }
        }
        let trace: f64 = (0..DIM).map(|i| matrix[i * DIM + i]).sum();
        let kept: f64 = pca.eigenvalues().iter().sum();
        assert!((pca.explained() - kept / trace).abs() < 1e-6);
        let full = Pca::train(&rows, DIM, config(DIM, centered)).expect("train");
        assert!(
            (full.explained() - 1.0).abs() < 1e-9,
            "{}",
            full.explained()
        );
    }
}

/// Independent dimensions with three large scales: the components are those unit vectors, in
/// order of scale, signed positive.
#[test]
fn independent_dimensions_give_unit_components() {
    let mut rng = StdRng::seed_from_u64(3);
    let scale = |d: usize| match d {
        17 => 10.0,
        3 => 5.0,
        30 => 2.5,
        _ => 1.0,
    };
    let rows: Vec<f32> = (0..4001 * DIM)
        .map(|i| scale(i % DIM) * rng.gen_range(-1.0f32..1.0))
        .collect();
    let pca = Pca::train(&rows, DIM, config(3, true)).expect("train");
    for (c, d) in pca.components().chunks_exact(DIM).zip([17, 3, 30]) {
        assert!(c[d] > 0.99, "dimension {d}: {c:?}");
    }
}

#[test]
fn centered_projection_keeps_distances_in_a_subspace() {
    // An offset outside the subspace: only centring removes it.
    let offset: Vec<f32> = (0..DIM).map(|d| 3.0 + (d % 4) as f32).collect();
    let rows = subspace(ROWS, &offset, 0.0, 4);
    let pca = Pca::train(&rows, DIM, config(5, true)).expect("train");
    assert!(pca.explained() > 0.999, "{}", pca.explained());
    let projected: Vec<Vec<f32>> = rows.chunks_exact(DIM).map(|x| project(&pca, x)).collect();
    let originals: Vec<&[f32]> = rows.chunks_exact(DIM).collect();
    for i in 0..60 {
        for j in i + 1..60 {
            let full = l2sq(originals[i], originals[j]);
            let reduced = l2sq(&projected[i], &projected[j]);
            assert!(
                (full - reduced).abs() < 1e-3 * full + 1e-4,
                "rows {i}, {j}: {full} vs {reduced}"
            );
        }
    }
}

#[test]
fn uncentered_projection_keeps_inner_products_in_a_subspace() {
    // Latent means away from 0: the data does not surround the origin, yet lies in a linear
    // subspace, which the second moment finds.
    let rows = subspace(ROWS, &[0.0; DIM], 2.0, 5);
    let pca = Pca::train(&rows, DIM, config(5, false)).expect("train");
    assert!(pca.explained() > 0.999, "{}", pca.explained());
    let projected: Vec<Vec<f32>> = rows.chunks_exact(DIM).map(|x| project(&pca, x)).collect();
    let originals: Vec<&[f32]> = rows.chunks_exact(DIM).collect();
    for i in 0..60 {
        for j in i..60 {
            let full = dot(originals[i], originals[j]);
            let reduced = dot(&projected[i], &projected[j]);
            let scale = (dot(originals[i], originals[i]) * dot(originals[j], originals[j])).sqrt();
            assert!(
                (full - reduced).abs() < 1e-4 * scale + 1e-4,
                "rows {i}, {j}: {full} vs {reduced}"
            );
        }
    }
}

/// `project` is `C (x − μ)`.
#[test]
fn project_is_components_times_centred_vector() {
    let rows = data(ROWS, DIM, 6);
    let pca = Pca::train(&rows, DIM, config(7, true)).expect("train");
    let x = &rows[10 * DIM..11 * DIM];
    let centred: Vec<f32> = x.iter().zip(pca.mean()).map(|(x, m)| x - m).collect();
    for (got, c) in project(&pca, x)
        .iter()
        .zip(pca.components().chunks_exact(DIM))
    {
        let want = dot(c, &centred);
        assert!((f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()));
    }
}

#[test]
fn degenerate_samples() {
    // All rows equal: no variance to keep, the components are still orthonormal.
    let rows: Vec<f32> = (0..5 * DIM).map(|i| (i % DIM) as f32).collect();
    let pca = Pca::train(&rows, DIM, config(4, true)).expect("train");
    assert_eq!(pca.explained(), 1.0);
    assert!(orthonormality_error(&pca) < 1e-6);
    assert!(project(&pca, &rows[..DIM]).iter().all(|&x| x == 0.0));
    // One dimension.
    let rows = [1.0f32, -2.0, 3.0];
    let pca = Pca::train(&rows, 1, config(1, false)).expect("train");
    assert_eq!(pca.components(), &[1.0]);
    assert_eq!(project(&pca, &[-4.0]), vec![-4.0]);
}

/// Samples of low rank (rows from a few directions, so most eigenvalues are zero up to
/// rounding) converge: a split test relative to the two diagonal entries alone never deflated
/// between two rounding-level entries, and training failed with "did not converge".
#[test]
fn low_rank_samples_converge() {
    for (dim, rank, rows) in [(150, 3, 1_500), (64, 1, 300), (100, 10, 2_000), (33, 2, 40)] {
        let directions = data(rank, dim, 11);
        let weights = data(rows, rank, 12);
        let mut sample = vec![0f32; rows * dim];
        for (row, w) in sample.chunks_exact_mut(dim).zip(weights.chunks_exact(rank)) {
            for (direction, &weight) in directions.chunks_exact(dim).zip(w) {
                for (x, &v) in row.iter_mut().zip(direction) {
                    *x += weight * v;
                }
            }
        }
        for centered in [true, false] {
            let pca = Pca::train(&sample, dim, config(16.min(dim - 1), centered))
                .unwrap_or_else(|e| panic!("d {dim}, rank {rank}: {}", e.message()));
            assert!(orthonormality_error(&pca) < 1e-5, "d {dim}, rank {rank}");
            assert!(
                pca.explained() > 0.999,
                "d {dim}, rank {rank}: {}",
                pca.explained()
            );
        }
    }
    // The sample that first failed: rows of a sine sweep plus a period-7 ramp.
    let dim = 150;
    let sample: Vec<f32> = (0..1_500 * dim)
        .map(|i| (i as f32 * 0.37).sin() + (i % 7) as f32 * 0.1)
        .collect();
    Pca::train(&sample, dim, config(16, false)).expect("train");
}

#[test]
fn invalid_input_is_an_error() {
    let rows = data(20, DIM, 7);
    let train = |sample: &[f32], dim: usize, out_dim: usize| {
        Pca::train(sample, dim, config(out_dim, true)).map(|_| ())
    };
    let message =
        |r: Result<(), vecdex_quant::QuantError>| r.expect_err("must fail").message().to_string();
    assert!(message(train(&rows, 0, 1)).contains("dimensions"));
    assert!(message(train(&rows, DIM, 0)).contains("output dimensions"));
    assert!(message(train(&rows, DIM, DIM + 1)).contains("output dimensions"));
    assert!(message(train(&rows[..DIM * 3 - 1], DIM, 2)).contains("whole number"));
    assert!(message(train(&rows[..DIM], DIM, 2)).contains("at least 2"));
    assert!(message(train(&[], DIM, 2)).contains("at least 2"));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut broken = rows.clone();
        broken[5 * DIM + 8] = bad;
        assert!(message(train(&broken, DIM, 2)).contains("row 5, dimension 8"));
    }
    assert!(train(&rows[..2 * DIM], DIM, DIM).is_ok());
}

/// The same bits from two trainings, and on one thread as on many.
#[test]
fn training_is_deterministic() {
    // Several chunks of the accumulation and a dimension past the single-thread threshold of
    // the Householder steps.
    let dim = 157;
    let rows = data(1031, dim, 8);
    for centered in [true, false] {
        let a = Pca::train(&rows, dim, config(40, centered)).expect("train");
        let b = Pca::train(&rows, dim, config(40, centered)).expect("train");
        assert_eq!(a, b);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let c = pool
            .install(|| Pca::train(&rows, dim, config(40, centered)))
            .expect("train");
        assert_eq!(a, c);
        assert!(orthonormality_error(&a) < 1e-4);
    }
}

/// Training time on 20,000 × 784 and 5,000 × 1024 rows of rank-32 data plus noise (and the
/// orthonormality of the result at those sizes):
/// `cargo test --release -p vecdex-quant --test pca -- --ignored --nocapture`.
#[test]
#[ignore]
fn training_time() {
    for (rows, dim, out_dim) in [(20_000, 784, 160), (5_000, 1024, 256), (5_000, 1024, 1024)] {
        let mut rng = StdRng::seed_from_u64(9);
        let rank = 32;
        let basis: Vec<f32> = (0..rank * dim)
            .map(|_| rng.gen_range(-1.0f32..1.0))
            .collect();
        let mut sample = Vec::with_capacity(rows * dim);
        for _ in 0..rows {
            let latent: Vec<f32> = (0..rank)
                .map(|k| rng.gen_range(-1.0f32..1.0) / (1 + k) as f32)
                .collect();
            for d in 0..dim {
                let x: f32 = (0..rank).map(|k| latent[k] * basis[k * dim + d]).sum();
                sample.push(x + 0.05 * rng.gen_range(-1.0f32..1.0));
            }
        }
        for centered in [true, false] {
            let start = std::time::Instant::now();
            let pca = Pca::train(&sample, dim, config(out_dim, centered)).expect("train");
            println!(
                "{rows} × {dim} → {out_dim}, centered {centered}: {:.3} s, explained {:.4}",
                start.elapsed().as_secs_f64(),
                pca.explained()
            );
            assert!(orthonormality_error(&pca) < 1e-4);
        }
    }
}
