//! SimHash partitioning of token space (Charikar 2002; MUVERA §2.1).
//!
//! `k` Gaussian directions g₁…g_k cut space into 2^k regions by the signs of ⟨x, gⱼ⟩. The sign
//! pattern `s` has bit `k−1−j` set when ⟨x, gⱼ⟩ > 0 (the first projection is the most
//! significant bit). The partition index is the inverse Gray code of `s`, so the patterns of
//! partitions `p` and `p + 1` (`gray(p) = p ⊕ (p ≫ 1)`) differ in exactly one sign bit, as in the
//! reference implementation's `SimHashPartitionIndex` (google/graph-mining).

use crate::config::{try_filled, FdeError, SIMHASH_LANES as LANES};

/// The `k` Gaussian directions of one repetition, stored dimension-major and padded to
/// [`LANES`]: `directions[i * LANES + j]` is coordinate `i` of direction `j` (0 for j ≥ k).
#[derive(Debug, Clone)]
pub struct SimHash {
    bits: u32,
    directions: Vec<f32>,
}

impl SimHash {
    /// `gaussians` yields the `dimension × bits` matrix row-major (coordinate `i` of every
    /// direction, then coordinate `i + 1`), the draw order of the pinned RNG. With no bits
    /// nothing is stored (every token is in the one partition).
    pub fn new(
        dimension: usize,
        bits: u32,
        mut gaussians: impl FnMut() -> f32,
    ) -> Result<Self, FdeError> {
        debug_assert!(bits as usize <= LANES);
        let len = if bits == 0 { 0 } else { dimension * LANES };
        let mut directions = try_filled(len, 0f32, "SimHash directions")?;
        for row in directions.chunks_exact_mut(LANES) {
            for value in &mut row[..bits as usize] {
                *value = gaussians();
            }
        }
        Ok(SimHash { bits, directions })
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The sign pattern of `token` (see the module docs). Each projection is summed in
    /// coordinate order in f32, so the pattern is the same on every CPU.
    pub fn sign_pattern(&self, token: &[f32]) -> u32 {
        if self.bits == 0 {
            return 0;
        }
        let mut sums = [0f32; LANES];
        for (x, row) in token.iter().zip(self.directions.chunks_exact(LANES)) {
            for (s, g) in sums.iter_mut().zip(row) {
                *s += x * g;
            }
        }
        sums[..self.bits as usize]
            .iter()
            .fold(0u32, |pattern, &s| (pattern << 1) | u32::from(s > 0.0))
    }
}

/// Partition index of a sign pattern: the inverse Gray code (binary value of `pattern` read as
/// a Gray code).
pub fn partition_of_pattern(pattern: u32) -> u32 {
    let mut binary = pattern;
    let mut shift = pattern >> 1;
    while shift != 0 {
        binary ^= shift;
        shift >>= 1;
    }
    binary
}

/// Sign pattern of partition `partition`: its Gray code.
pub fn pattern_of_partition(partition: u32) -> u32 {
    partition ^ (partition >> 1)
}
