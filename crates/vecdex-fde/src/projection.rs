//! Inner-product-preserving random projections: the per-token AMS sketch (MUVERA §2.1, "inner
//! projections") and the Count-Sketch of a whole encoding ("final projections"). Both are the
//! sparse ±1 map of Alon, Matias & Szegedy / Charikar, Chen & Farach-Colton: input coordinate
//! `i` goes, with sign `σᵢ`, to output coordinate `h(i)`; E⟨Sx, Sy⟩ = ⟨x, y⟩. Unscaled, as in the
//! reference implementation.

use crate::config::FdeError;
use crate::rng::FdeRng;

#[derive(Debug, Clone)]
pub struct SparseSignProjection {
    output_dimension: usize,
    /// `h(i)` per input coordinate.
    bucket: Vec<u32>,
    /// `σᵢ` per input coordinate.
    sign: Vec<f32>,
}

impl SparseSignProjection {
    /// Draws, for each input coordinate in order, its bucket then its sign.
    pub fn new(
        input_dimension: usize,
        output_dimension: usize,
        rng: &mut FdeRng,
    ) -> Result<Self, FdeError> {
        let out = u32::try_from(output_dimension).unwrap_or(u32::MAX);
        let mut bucket = Vec::new();
        let mut sign = Vec::new();
        let failed = |_| FdeError::out_of_memory("projection buckets and signs", input_dimension);
        bucket.try_reserve_exact(input_dimension).map_err(failed)?;
        sign.try_reserve_exact(input_dimension).map_err(failed)?;
        for _ in 0..input_dimension {
            bucket.push(rng.below(out));
            sign.push(rng.sign());
        }
        Ok(SparseSignProjection {
            output_dimension,
            bucket,
            sign,
        })
    }

    pub fn output_dimension(&self) -> usize {
        self.output_dimension
    }

    /// Adds the projection of `input` into `out` (length `output_dimension`), in input order.
    pub fn add_into(&self, input: &[f32], out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.output_dimension);
        for ((x, &b), s) in input.iter().zip(&self.bucket).zip(&self.sign) {
            out[b as usize] += s * x;
        }
    }
}
