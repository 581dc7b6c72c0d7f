//! The pinned random generator of vecdex FDEs, version [`RNG_VERSION`].
//!
//! Encodings must be reproducible across machines, releases and bindings, and an index file
//! stores `(config, seed, RNG_VERSION)` instead of the random matrices. So the generator, the
//! way it turns bits into numbers and the order of draws are part of the format; changing any of
//! them needs a new `RNG_VERSION` (and keeping the old one for old files).
//!
//! Version 1:
//! - **Generator**: SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
//!   generators", OOPSLA 2014): `state += 0x9E3779B97F4A7C15`, then the output mix
//!   `z = (z ^ z>>30)·0xBF58476D1CE4E5B9; z = (z ^ z>>27)·0x94D049BB133111EB; z ^ z>>31`.
//!   The initial state is the 64-bit stream seed itself.
//! - **Uniform in (0, 1]**: `((x >> 11) + 1) · 2⁻⁵³` from one output `x`.
//! - **Gaussian N(0, 1)**: Box–Muller from two uniforms `u₁, u₂` drawn in that order:
//!   `√(−2 ln u₁) · cos(2π u₂)`, then `√(−2 ln u₁) · sin(2π u₂)` as the next Gaussian (computed in
//!   f64, rounded to f32 when stored).
//! - **Integer in [0, n)**: `(x · n) >> 64` (the high half of the 128-bit product) from one output.
//! - **Random sign**: `+1` if the top bit of one output is 0, else `−1`.
//!
//! The draw order of each stream is given where the stream is used (see `encode.rs`).

/// Version of the generator and draw order; stored in index files next to the seed.
pub const RNG_VERSION: u32 = 1;

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 with the conversions of version 1 (see the module docs).
#[derive(Debug, Clone)]
pub struct FdeRng {
    state: u64,
    spare_gaussian: Option<f64>,
}

impl FdeRng {
    pub fn new(seed: u64) -> Self {
        FdeRng {
            state: seed,
            spare_gaussian: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1], never 0 (so `ln` is finite).
    pub fn uniform_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn gaussian(&mut self) -> f64 {
        if let Some(spare) = self.spare_gaussian.take() {
            return spare;
        }
        let u1 = self.uniform_open0();
        let u2 = self.uniform_open0();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        self.spare_gaussian = Some(radius * angle.sin());
        radius * angle.cos()
    }

    /// Uniform integer in `[0, n)`; `n` must be > 0.
    pub fn below(&mut self, n: u32) -> u32 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u32
    }

    /// `+1.0` or `−1.0` with equal probability.
    pub fn sign(&mut self) -> f32 {
        if self.next_u64() >> 63 == 0 {
            1.0
        } else {
            -1.0
        }
    }
}
