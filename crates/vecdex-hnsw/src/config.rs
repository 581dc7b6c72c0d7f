//! Parameters of the graph, with the paper's names.

/// Highest layer a node may get. With `mL = 1/ln(m)` and m ≥ 2 a level above 15 has probability
/// below m^-16, and a cap keeps an adversarial seed from allocating huge link lists.
pub const MAX_LEVEL: usize = 15;

/// Validated HNSW parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    /// Links per node on layers above 0 (`M`); layer 0 holds `2m` (`Mmax0`, as the paper advises).
    pub m: usize,
    /// Candidate list size while inserting (`efConstruction`).
    pub ef_construction: usize,
    /// Seed of the level draw: with one thread, a seeded build is deterministic.
    pub seed: u64,
}

/// A parameter outside its range; the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub String);

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

/// Smallest `m`: a node needs two links for the graph to be more than a chain.
pub const MIN_M: usize = 2;
/// Largest `m`: beyond this a node's links outgrow any benefit and the heuristic's cost explodes.
pub const MAX_M: usize = 256;
/// Largest `ef` for construction or search.
pub const MAX_EF: usize = 1 << 16;

impl HnswParams {
    pub fn new(m: usize, ef_construction: usize, seed: u64) -> Result<Self, ParamError> {
        if !(MIN_M..=MAX_M).contains(&m) {
            return Err(ParamError(format!(
                "m must be between {MIN_M} and {MAX_M}, got {m}"
            )));
        }
        if !(1..=MAX_EF).contains(&ef_construction) {
            return Err(ParamError(format!(
                "efConstruction must be between 1 and {MAX_EF}, got {ef_construction}"
            )));
        }
        Ok(HnswParams {
            m,
            ef_construction,
            seed,
        })
    }

    /// Link capacity on `layer`: `2m` on layer 0, `m` above.
    #[inline]
    pub fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// Level multiplier `mL = 1/ln(m)` (paper, section 4.1).
    pub fn level_multiplier(&self) -> f64 {
        1.0 / (self.m as f64).ln()
    }

    /// The level of `slot`: `⌊−ln(U)·mL⌋` with `U` uniform in (0, 1] drawn from a hash of the
    /// seed and the slot, so a node's level does not depend on thread timing or insertion order.
    pub fn level_of(&self, slot: u32) -> u8 {
        let bits = splitmix64(self.seed ^ u64::from(slot).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // 53 random bits → U in (0, 1].
        let unit = ((bits >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let level = (-unit.ln() * self.level_multiplier()).floor();
        level.min(MAX_LEVEL as f64) as u8
    }
}

/// SplitMix64 finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): a bijective mix of 64 bits.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_geometric_law() {
        let p = HnswParams::new(16, 100, 42).expect("valid");
        let n = 200_000u32;
        let above0 = (0..n).filter(|&s| p.level_of(s) >= 1).count() as f64 / f64::from(n);
        // P(level ≥ 1) = exp(−1/mL) = 1/m.
        assert!((above0 - 1.0 / 16.0).abs() < 0.003, "{above0}");
        assert!(HnswParams::new(1, 10, 0).is_err());
        assert!(HnswParams::new(16, 0, 0).is_err());
    }
}
