//! LeanVec-OOD: a reduction for queries that do not look like the data (Tepper et al.,
//! "LeanVec: Searching vectors faster by making them fit", TMLR 2024, §3.2).
//!
//! PCA ([`crate::pca`], LeanVec's in-distribution form) keeps the directions along which the
//! *data* varies most. When queries come from another distribution (questions searched against
//! passages, example sentences against definitions, text against images), the directions that
//! matter for `⟨q, x⟩` are those where both vary, and PCA can drop them. LeanVec-OOD learns a
//! query projection `A` and a data projection `B` (`out_dim × dim` each) from a data sample
//! and a query sample, minimising the expected error of the reduced inner product over the two
//! distributions:
//!
//! `E_{q,x} (⟨q, x⟩ − ⟨Aq, Bx⟩)² = tr(K_x Mᵀ K_q M)`, with `M = I − AᵀB` and the second
//! moments `K_x = E[x xᵀ]`, `K_q = E[q qᵀ]` (q and x drawn independently).
//!
//! The solver here, in f64:
//! 1. **Eigenvector search** (the paper's initialisation): for blends
//!    `K(α) = α K_q / tr K_q + (1 − α) K_x / tr K_x`, `α` in `0, 0.1, …, 1`, take `P(α)` = the
//!    top `out_dim` eigenvectors of `K(α)` (with [`crate::pca`]'s eigensolver). `α = 0` is
//!    plain PCA of the data.
//! 2. **The best data projection for that query projection**: with `A = P(α)` fixed, the loss
//!    is quadratic in `B`; setting its gradient `2 (A K_q Aᵀ) B K_x − 2 A K_q K_x` to zero gives
//!    `B = (A K_q Aᵀ)⁻¹ A K_q` (for any full-rank `K_x`), solved by Cholesky with a small ridge.
//! 3. From the `α` whose pair `(P(α), B(α))` has the least loss, alternate the two exact
//!    half-steps (`A = (B K_x Bᵀ)⁻¹ B K_x`, then `B` as in 2) while the loss falls. Every step
//!    can only lower the loss, and `α = 0` with `B = A` is PCA, so the result is never worse
//!    than PCA on the samples' loss. (The paper solves the same problem with Frank–Wolfe
//!    steps over orthonormal projections; these half-steps leave `A` and `B` unconstrained.)
//!
//! Inner products only: an L2 index ranks by `‖x‖² − 2⟨q, x⟩`, whose per-vector norm no
//! reduced inner product carries.

use rayon::prelude::*;
use vecdex_distance::simd_level;

use crate::codec::{check_sample, try_filled, QuantError};
use crate::model::{check_len, model_len, put_f32s, Reader};
use crate::pca::{second_moment, top_eigenvectors};

/// Blends of the query and data moments tried by the eigenvector search: `α = i / STEPS`.
const STEPS: usize = 10;

/// Most alternating rounds after the eigenvector search; they stop earlier once a round lowers
/// the loss by less than [`ROUND_GAIN`] of it.
const MAX_ROUNDS: usize = 50;
const ROUND_GAIN: f64 = 1e-4;

/// The first 8 bytes of [`LeanVec::model_bytes`]: "LEANV", a layout version, and two bytes
/// that make the eight a NaN as a little-endian f64, which no PCA model starts with (its first
/// value is a finite total), so a saved reduction says which kind it is.
pub const MODEL_TAG: [u8; 8] = *b"LEANV\x01\xf8\xff";

/// A learnt pair of projections; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct LeanVec {
    dim: usize,
    out_dim: usize,
    /// `A`, `out_dim × dim`, row-major.
    query: Vec<f32>,
    /// `B`, `out_dim × dim`, row-major.
    data: Vec<f32>,
}

/// What training found, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeanVecFit {
    /// The blend `α` of the eigenvector search's best start (0: the data's PCA directions).
    pub blend: f64,
    /// Alternating rounds run after it.
    pub rounds: usize,
    /// The loss `E (⟨q, x⟩ − ⟨Aq, Bx⟩)²` of the result on the samples.
    pub loss: f64,
    /// The same loss for PCA of the data (`A = B` = its top eigenvectors).
    pub pca_loss: f64,
}

impl LeanVec {
    /// Learns `A` and `B` from a data `sample` and a `queries` sample (row-major, `dim` values
    /// per row, at least 2 rows each), reducing to `out_dim` dimensions (`1 ..= dim`).
    pub fn train(
        sample: &[f32],
        queries: &[f32],
        dim: usize,
        out_dim: usize,
    ) -> Result<(Self, LeanVecFit), QuantError> {
        let rows = check_sample(sample, dim, 2, "LeanVec")?;
        let query_rows = check_sample(queries, dim, 2, "LeanVec queries")?;
        if out_dim == 0 || out_dim > dim {
            return Err(QuantError::new(format!(
                "LeanVec: output dimensions must be between 1 and {dim}, got {out_dim}"
            )));
        }
        let level = simd_level();
        let origin = vec![0f64; dim];
        let moment = |rows: &[f32], count: usize| -> Result<Vec<f64>, QuantError> {
            let mut k = second_moment(level, rows, dim, &origin)?;
            k.iter_mut().for_each(|v| *v /= count as f64);
            Ok(k)
        };
        let kx = moment(sample, rows)?;
        let kq = moment(queries, query_rows)?;
        let trace = |k: &[f64]| (0..dim).map(|i| k[i * dim + i]).sum::<f64>();
        // Zero moments (all-zero samples) keep every blend equal: any finite scale serves.
        let scale = |t: f64| if t > 0.0 { 1.0 / t } else { 1.0 };
        let (data_scale, query_scale) = (scale(trace(&kx)), scale(trace(&kq)));
        let constant: f64 = kx.par_iter().zip(&kq).map(|(a, b)| a * b).sum();
        // 1–2: the eigenvector search, each start with its best data projection.
        let mut start: Option<(f64, f64, Vec<f64>, Vec<f64>)> = None;
        let mut pca_loss = f64::NAN;
        for step in 0..=STEPS {
            let alpha = step as f64 / STEPS as f64;
            let mut blend = try_filled(dim * dim, 0f64, "LeanVec: the blended moment")?;
            blend
                .par_iter_mut()
                .zip(kq.par_iter().zip(&kx))
                .for_each(|(b, (q, x))| {
                    *b = alpha * query_scale * q + (1.0 - alpha) * data_scale * x
                });
            let (_, basis) = top_eigenvectors(level, blend, dim, out_dim)?;
            let basis_kq = times(&basis, out_dim, &kq, dim);
            if step == 0 {
                let basis_kx = times(&basis, out_dim, &kx, dim);
                pca_loss = loss(constant, &basis, &basis_kq, &basis, &basis_kx, dim);
            }
            let data_map = best_partner(&basis, &basis_kq, out_dim, dim)?;
            let data_map_kx = times(&data_map, out_dim, &kx, dim);
            let candidate = loss(constant, &basis, &basis_kq, &data_map, &data_map_kx, dim);
            if start.as_ref().is_none_or(|s| candidate < s.1) {
                start = Some((alpha, candidate, basis, data_map));
            }
        }
        let Some((blend, mut current, mut a, mut b)) = start else {
            unreachable!("the search tries at least one blend")
        };
        // 3: alternate the two exact half-steps; each can only lower the loss. Each round
        // multiplies by the moments twice: `B K_x` feeds the next `A`, `A K_q` the next `B`,
        // and both the loss.
        let mut rounds = 0;
        let mut b_kx = times(&b, out_dim, &kx, dim);
        while rounds < MAX_ROUNDS {
            let next_a = best_partner(&b, &b_kx, out_dim, dim)?;
            let next_a_kq = times(&next_a, out_dim, &kq, dim);
            let next_b = best_partner(&next_a, &next_a_kq, out_dim, dim)?;
            let next_b_kx = times(&next_b, out_dim, &kx, dim);
            let next = loss(constant, &next_a, &next_a_kq, &next_b, &next_b_kx, dim);
            rounds += 1;
            // Also stops on a NaN loss (a degenerate sample), which no comparison passes.
            if next.partial_cmp(&current) != Some(std::cmp::Ordering::Less) {
                break;
            }
            let gain = current - next;
            (a, b, b_kx, current) = (next_a, next_b, next_b_kx, next);
            if gain <= ROUND_GAIN * current.abs() {
                break;
            }
        }
        let to_f32 = |m: Vec<f64>| m.into_iter().map(|v| v as f32).collect();
        Ok((
            LeanVec {
                dim,
                out_dim,
                query: to_f32(a),
                data: to_f32(b),
            },
            LeanVecFit {
                blend,
                rounds,
                loss: current,
                pca_loss,
            },
        ))
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// `A q` into `out` (`out_dim` values).
    pub fn project_query(&self, x: &[f32], out: &mut [f32]) {
        project(&self.query, self.dim, x, out);
    }

    /// `B x` into `out` (`out_dim` values).
    pub fn project_data(&self, x: &[f32], out: &mut [f32]) {
        project(&self.data, self.dim, x, out);
    }

    /// The trained state: [`MODEL_TAG`], then `A` and `B` (`out_dim × dim` f32 each,
    /// row-major, little-endian). `dim` and `out_dim` are not included.
    pub fn model_bytes(&self) -> Vec<u8> {
        let mut out = MODEL_TAG.to_vec();
        put_f32s(&mut out, &self.query);
        put_f32s(&mut out, &self.data);
        out
    }

    /// The pair whose [`Self::model_bytes`] are `bytes`; errors for another tag or length, or
    /// a non-finite value.
    pub fn from_model_bytes(bytes: &[u8], dim: usize, out_dim: usize) -> Result<Self, QuantError> {
        if out_dim == 0 || out_dim > dim {
            return Err(QuantError::new(format!(
                "LeanVec: output dimensions must be between 1 and {dim}, got {out_dim}"
            )));
        }
        let len = model_len(&[&[8], &[2, out_dim, dim, 4]], "LeanVec")?;
        check_len(
            bytes,
            len,
            &format!("two projections of {dim} to {out_dim} dimensions"),
            "LeanVec",
        )?;
        if bytes[..8] != MODEL_TAG {
            return Err(QuantError::new("LeanVec model: wrong tag".to_string()));
        }
        let mut reader = Reader::new(&bytes[8..], "LeanVec");
        let query = reader.f32s(out_dim * dim, "the query projection")?;
        let data = reader.f32s(out_dim * dim, "the data projection")?;
        reader.finish()?;
        Ok(LeanVec {
            dim,
            out_dim,
            query,
            data,
        })
    }
}

fn project(map: &[f32], dim: usize, x: &[f32], out: &mut [f32]) {
    assert!(
        x.len() == dim && out.len() * dim == map.len(),
        "LeanVec: project takes {dim} values into {}",
        map.len() / dim
    );
    for (o, row) in out.iter_mut().zip(map.chunks_exact(dim)) {
        *o = vecdex_distance::dot(row, x);
    }
}

/// `a · m` for `a` of `rows × dim` and a symmetric `m` of `dim × dim` (so row `j` of `m` is
/// its column `j`).
fn times(a: &[f64], rows: usize, m: &[f64], dim: usize) -> Vec<f64> {
    let mut out = vec![0f64; rows * dim];
    out.par_chunks_mut(dim)
        .zip(a.par_chunks(dim))
        .for_each(|(out, a)| {
            for (o, column) in out.iter_mut().zip(m.chunks_exact(dim)) {
                *o = a.iter().zip(column).map(|(x, y)| x * y).sum();
            }
        });
    debug_assert_eq!(out.len(), rows * dim);
    out
}

/// `Σ_ij x_ij y_ij`.
fn frobenius(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// `a bᵀ` for `a`, `b` of `rows × dim`: `rows × rows`.
fn outer(a: &[f64], b: &[f64], rows: usize, dim: usize) -> Vec<f64> {
    let mut out = vec![0f64; rows * rows];
    for i in 0..rows {
        for j in 0..rows {
            out[i * rows + j] = frobenius(&a[i * dim..(i + 1) * dim], &b[j * dim..(j + 1) * dim]);
        }
    }
    out
}

/// `tr(K_x Mᵀ K_q M)` with `M = I − AᵀB`, from `constant = Σ K_x ∘ K_q`, `A`, `A K_q`, `B`
/// and `B K_x`: `constant − 2 Σ (A K_q) ∘ (B K_x) + Σ (A K_q Aᵀ) ∘ (B K_x Bᵀ)`.
fn loss(constant: f64, a: &[f64], a_kq: &[f64], b: &[f64], b_kx: &[f64], dim: usize) -> f64 {
    let rows = a.len() / dim;
    constant - 2.0 * frobenius(a_kq, b_kx)
        + frobenius(&outer(a_kq, a, rows, dim), &outer(b_kx, b, rows, dim))
}

/// `B = (A K_q Aᵀ + λI)⁻¹ A K_q` (given `A` and `A K_q`): the data projection that minimises
/// the loss for the query projection `A` (see the module docs); by symmetry, given `B` and
/// `B K_x`, the best query projection. The ridge `λ` (a millionth of the mean diagonal) keeps
/// the solve defined when a sample spans fewer than `rows` directions.
fn best_partner(a: &[f64], a_kq: &[f64], rows: usize, dim: usize) -> Result<Vec<f64>, QuantError> {
    let mut gram = outer(a_kq, a, rows, dim);
    let mean_diagonal = (0..rows).map(|i| gram[i * rows + i]).sum::<f64>() / rows as f64;
    let ridge = 1e-6 * mean_diagonal.max(f64::MIN_POSITIVE) + 1e-12;
    for i in 0..rows {
        gram[i * rows + i] += ridge;
    }
    // Cholesky: gram = L Lᵀ (lower triangle of `gram` becomes L).
    for j in 0..rows {
        let mut d = gram[j * rows + j];
        for k in 0..j {
            d -= gram[j * rows + k] * gram[j * rows + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return Err(QuantError::new(
                "LeanVec: the query sample's moment is not positive definite on the search \
                 directions"
                    .to_string(),
            ));
        }
        let d = d.sqrt();
        gram[j * rows + j] = d;
        for i in j + 1..rows {
            let mut s = gram[i * rows + j];
            for k in 0..j {
                s -= gram[i * rows + k] * gram[j * rows + k];
            }
            gram[i * rows + j] = s / d;
        }
    }
    // Solve L Lᵀ B = A K_q, one column of B (a dimension) at a time.
    let mut b = a_kq.to_vec();
    let mut column = vec![0f64; rows];
    for c in 0..dim {
        for i in 0..rows {
            let mut s = b[i * dim + c];
            for k in 0..i {
                s -= gram[i * rows + k] * column[k];
            }
            column[i] = s / gram[i * rows + i];
        }
        for i in (0..rows).rev() {
            let mut s = column[i];
            for k in i + 1..rows {
                s -= gram[k * rows + i] * b[k * dim + c];
            }
            b[i * dim + c] = s / gram[i * rows + i];
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::kmeans::SeededRng;
    use crate::pca::{Pca, PcaConfig};

    fn gaussian(rng: &mut SeededRng) -> f32 {
        let u = 1.0 - rng.unit();
        let v = rng.unit();
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    /// Rows whose dimension `i` has standard deviation `scales[i]`.
    fn scaled_rows(count: usize, scales: &[f32], seed: u64) -> Vec<f32> {
        let mut rng = SeededRng::new(seed);
        (0..count)
            .flat_map(|_| {
                scales
                    .iter()
                    .map(|s| s * gaussian(&mut rng))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn empirical_loss(
        project_query: impl Fn(&[f32], &mut [f32]),
        project_data: impl Fn(&[f32], &mut [f32]),
        data: &[f32],
        queries: &[f32],
        dim: usize,
        out_dim: usize,
    ) -> f64 {
        let (mut pq, mut px) = (vec![0f32; out_dim], vec![0f32; out_dim]);
        let mut sum = 0f64;
        let mut count = 0usize;
        for q in queries.chunks_exact(dim) {
            project_query(q, &mut pq);
            for x in data.chunks_exact(dim) {
                project_data(x, &mut px);
                let exact: f32 = q.iter().zip(x).map(|(a, b)| a * b).sum();
                let reduced: f32 = pq.iter().zip(&px).map(|(a, b)| a * b).sum();
                sum += f64::from(exact - reduced).powi(2);
                count += 1;
            }
        }
        sum / count as f64
    }

    #[test]
    fn beats_pca_when_queries_vary_where_the_data_does_not() {
        // Data varies most along the first 8 dimensions, queries along the last 8; the middle
        // 8 carry some of both. PCA to 8 keeps the data's directions, which queries barely use.
        let dim = 24;
        let data_scales: Vec<f32> = (0..dim)
            .map(|i| match i / 8 {
                0 => 3.0,
                1 => 1.0,
                _ => 0.3,
            })
            .collect();
        let query_scales: Vec<f32> = (0..dim)
            .map(|i| match i / 8 {
                0 => 0.1,
                1 => 1.0,
                _ => 3.0,
            })
            .collect();
        let data = scaled_rows(2_000, &data_scales, 1);
        let queries = scaled_rows(500, &query_scales, 2);
        let (lean, fit) = LeanVec::train(&data, &queries, dim, 8).unwrap();
        let pca = Pca::train(
            &data,
            dim,
            PcaConfig {
                out_dim: 8,
                centered: false,
            },
        )
        .unwrap();
        // Held-out samples of both distributions.
        let (test_data, test_queries) = (
            scaled_rows(300, &data_scales, 3),
            scaled_rows(100, &query_scales, 4),
        );
        let ours = empirical_loss(
            |q, o| lean.project_query(q, o),
            |x, o| lean.project_data(x, o),
            &test_data,
            &test_queries,
            dim,
            8,
        );
        let theirs = empirical_loss(
            |q, o| pca.project(q, o),
            |x, o| pca.project(x, o),
            &test_data,
            &test_queries,
            dim,
            8,
        );
        // Keeping the 8 middle dimensions, the best axis-aligned choice, loses 7.2 of the
        // expected 15.2 of ⟨q, x⟩²; PCA's first 8 lose 14.5.
        assert!(fit.loss < 0.55 * fit.pca_loss, "{fit:?}");
        assert!(fit.blend > 0.0, "{fit:?}");
        assert!(
            ours < 0.55 * theirs,
            "held-out loss: LeanVec {ours}, PCA {theirs}"
        );
        // The loss the solver reports is the one it optimises, on its samples.
        let measured = empirical_loss(
            |q, o| lean.project_query(q, o),
            |x, o| lean.project_data(x, o),
            &data[..300 * dim],
            &queries[..100 * dim],
            dim,
            8,
        );
        assert!(
            (measured - fit.loss).abs() < 0.25 * fit.loss,
            "sample loss {measured} vs reported {}",
            fit.loss
        );
    }

    #[test]
    fn in_distribution_queries_keep_pca_quality() {
        let dim = 16;
        let scales: Vec<f32> = (0..dim).map(|i| 1.0 + i as f32 * 0.3).collect();
        let data = scaled_rows(1_000, &scales, 5);
        let queries = scaled_rows(300, &scales, 6);
        let (_, fit) = LeanVec::train(&data, &queries, dim, 6).unwrap();
        assert!(fit.loss <= fit.pca_loss * (1.0 + 1e-9), "{fit:?}");
    }

    #[test]
    fn the_model_loads_back_bit_for_bit_and_bad_bytes_are_errors() {
        let dim = 12;
        let scales = vec![1.0f32; dim];
        let (lean, _) = LeanVec::train(
            &scaled_rows(200, &scales, 7),
            &scaled_rows(50, &scales, 8),
            dim,
            5,
        )
        .unwrap();
        let bytes = lean.model_bytes();
        assert_eq!(bytes.len(), 8 + 2 * 4 * 5 * dim);
        assert!(f64::from_le_bytes(MODEL_TAG).is_nan());
        let pca = PcaConfig {
            out_dim: 5,
            centered: false,
        };
        assert!(Pca::from_model_bytes(&bytes, dim, pca).is_err());
        assert_eq!(LeanVec::from_model_bytes(&bytes, dim, 5).unwrap(), lean);
        assert!(LeanVec::from_model_bytes(&bytes[..bytes.len() - 1], dim, 5).is_err());
        assert!(LeanVec::from_model_bytes(&bytes, dim, 4).is_err());
        let mut nan = bytes.clone();
        let at = bytes.len() - 4;
        nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(LeanVec::from_model_bytes(&nan, dim, 5).is_err());
        assert!(LeanVec::train(
            &scaled_rows(10, &scales, 1),
            &scaled_rows(1, &scales, 2),
            dim,
            5
        )
        .is_err());
        assert!(LeanVec::train(
            &scaled_rows(10, &scales, 1),
            &scaled_rows(5, &scales, 2),
            dim,
            0
        )
        .is_err());
    }
}
