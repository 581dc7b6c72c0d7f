//! Configuration of a fixed-dimensional encoding, with the parameter names of the MUVERA paper
//! (Dhulipala et al., "MUVERA: Multi-Vector Retrieval via Fixed Dimensional Encodings",
//! NeurIPS 2024, arXiv 2405.19504) and of its reference implementation (google/graph-mining,
//! `sketching/point_cloud/fixed_dimensional_encoding_config.proto`).

use std::fmt;

/// How each token is reduced before it is added to its partition's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionType {
    /// Tokens are kept whole: each block has `dimension` values.
    Identity,
    /// Each token goes through a random AMS sketch to `projection_dimension` values: input
    /// coordinate `i` is added, with a random sign, to one random output coordinate (a sparse
    /// ±1 matrix with one non-zero per row; inner products are preserved in expectation).
    AmsSketch,
}

impl ProjectionType {
    pub const fn name(self) -> &'static str {
        match self {
            ProjectionType::Identity => "identity",
            ProjectionType::AmsSketch => "amsSketch",
        }
    }
}

/// Largest FDE (before the final projection) we build: 2²⁴ floats, 64 MiB per encoding. The
/// reference accepts up to 30 SimHash bits, but 2³⁰ partitions of even one value each could not
/// be held; such configurations are refused instead of failing to allocate.
pub const MAX_FDE_DIMENSION: usize = 1 << 24;
/// Largest token dimension accepted (as the indexes).
pub const MAX_TOKEN_DIMENSION: usize = 65_536;
/// Most values (4 bytes each) an encoder may hold: its SimHash directions (padded to
/// [`SIMHASH_LANES`] per token coordinate), its sketch buckets and signs, and its final
/// projection's. A bound on an encoder's memory (512 MiB), so no configuration (or crafted
/// index file) can make one allocate gigabytes.
pub const MAX_RANDOM_VALUES: usize = 1 << 27;
/// Values a repetition's SimHash keeps per token coordinate (the directions are padded to this
/// many so the projection loop has a fixed width; see `simhash.rs`).
pub const SIMHASH_LANES: usize = 32;
/// Largest number of SimHash projections (as the reference).
pub const MAX_SIMHASH_PROJECTIONS: u32 = 30;

/// Parameters of an [`FdeEncoder`](crate::FdeEncoder).
///
/// Defaults (see [`FdeConfig::new`]): 20 repetitions, 5 SimHash bits (32 partitions), AMS sketch
/// to 16 values per partition, empty partitions filled, no final projection: 20 · 32 · 16 =
/// 10,240 dimensions, the trade-off the paper recommends (§4, Figure 3). Smaller encodings trade
/// recall for speed and memory; `final_projection_dimension` shrinks any of them further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdeConfig {
    /// Dimensions of every token vector.
    pub dimension: usize,
    /// Independent repetitions (R); their encodings are concatenated.
    pub num_repetitions: usize,
    /// SimHash bits per repetition (k_sim, 0 to 30): 2^k partitions of token space.
    pub num_simhash_projections: u32,
    /// Seed of every random draw (see `rng.rs` for the generator and draw order).
    pub seed: u64,
    pub projection_type: ProjectionType,
    /// Values per partition with [`ProjectionType::AmsSketch`] (d_proj). Must equal `dimension`
    /// (or be left at it) with [`ProjectionType::Identity`].
    pub projection_dimension: usize,
    /// In document encodings, give an empty partition the projected token whose SimHash sign
    /// pattern is nearest to the partition's (paper §2.1, "fill empty clusters").
    pub fill_empty_partitions: bool,
    /// Optional Count-Sketch of the whole encoding down to this many values.
    pub final_projection_dimension: Option<usize>,
}

/// A configuration or an input the encoder cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdeError {
    /// A parameter out of range; the message names it and its range.
    InvalidConfig(String),
    /// A token matrix whose length is not a multiple of the dimension, or bad CSR offsets.
    InvalidInput(String),
    /// A point cloud with no token.
    EmptyPointCloud(String),
    /// A buffer sized by the input (clouds × encoding width, tokens × block) could not be
    /// allocated; nothing was encoded.
    OutOfMemory(String),
}

impl FdeError {
    /// `what` (`len` values) could not be allocated.
    pub fn out_of_memory(what: &str, len: usize) -> Self {
        FdeError::OutOfMemory(format!(
            "{what}: {len} values do not fit in memory; pass fewer or smaller point clouds per call, or choose a smaller encoding"
        ))
    }
}

/// A buffer of `len` copies of `value`, or [`FdeError::OutOfMemory`] (never an abort).
pub(crate) fn try_filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>, FdeError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| FdeError::out_of_memory(what, len))?;
    out.resize(len, value);
    Ok(out)
}

/// Resizes a reused scratch buffer to `len` copies of `value`, failing (not aborting) when it
/// cannot grow.
pub(crate) fn try_refill<T: Clone>(
    buffer: &mut Vec<T>,
    len: usize,
    value: T,
    what: &str,
) -> Result<(), FdeError> {
    buffer.clear();
    buffer
        .try_reserve_exact(len)
        .map_err(|_| FdeError::out_of_memory(what, len))?;
    buffer.resize(len, value);
    Ok(())
}

impl fmt::Display for FdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdeError::InvalidConfig(m)
            | FdeError::InvalidInput(m)
            | FdeError::EmptyPointCloud(m)
            | FdeError::OutOfMemory(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FdeError {}

/// The defaults of an encoding's parameters (no final projection), as constants so the options
/// table can list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdeDefaults {
    pub num_repetitions: usize,
    pub num_simhash_projections: u32,
    pub seed: u64,
    pub projection_type: ProjectionType,
    /// Values per partition when the projection is [`ProjectionType::AmsSketch`] (with
    /// [`ProjectionType::Identity`] a block has the token dimension).
    pub projection_dimension: usize,
    pub fill_empty_partitions: bool,
}

/// The paper's recommended trade-off: 20 repetitions, 5 SimHash bits, AMS sketch to 16 values,
/// empty partitions filled (10,240 values).
pub const ENCODER_DEFAULTS: FdeDefaults = FdeDefaults {
    num_repetitions: 20,
    num_simhash_projections: 5,
    seed: 1,
    projection_type: ProjectionType::AmsSketch,
    projection_dimension: 16,
    fill_empty_partitions: true,
};

impl FdeConfig {
    /// The defaults for `dimension`-dimensional tokens (see the type's docs).
    pub fn new(dimension: usize) -> Self {
        Self::with_defaults(dimension, &ENCODER_DEFAULTS)
    }

    /// `defaults` for `dimension`-dimensional tokens, with no final projection.
    pub fn with_defaults(dimension: usize, defaults: &FdeDefaults) -> Self {
        FdeConfig {
            dimension,
            num_repetitions: defaults.num_repetitions,
            num_simhash_projections: defaults.num_simhash_projections,
            seed: defaults.seed,
            projection_type: defaults.projection_type,
            projection_dimension: match defaults.projection_type {
                ProjectionType::Identity => dimension,
                ProjectionType::AmsSketch => defaults.projection_dimension,
            },
            fill_empty_partitions: defaults.fill_empty_partitions,
            final_projection_dimension: None,
        }
    }

    /// Partitions per repetition: 2^num_simhash_projections.
    pub fn num_partitions(&self) -> usize {
        1usize << self.num_simhash_projections
    }

    /// Values per partition: `dimension` with the identity projection, else `projection_dimension`.
    pub fn block_dimension(&self) -> usize {
        match self.projection_type {
            ProjectionType::Identity => self.dimension,
            ProjectionType::AmsSketch => self.projection_dimension,
        }
    }

    /// Length of the encoding before the final projection (R · 2^k · block), if it fits a usize.
    pub fn raw_dimension(&self) -> Option<usize> {
        self.num_repetitions
            .checked_mul(self.num_partitions())?
            .checked_mul(self.block_dimension())
    }

    /// Values (4 bytes each) an encoder of this config holds (see [`MAX_RANDOM_VALUES`]).
    pub fn encoder_values(&self) -> u128 {
        let per_coordinate = if self.num_simhash_projections > 0 {
            SIMHASH_LANES as u128
        } else {
            0
        } + match self.projection_type {
            ProjectionType::Identity => 0,
            ProjectionType::AmsSketch => 2,
        };
        let final_projection = match self.final_projection_dimension {
            Some(_) => 2 * self.raw_dimension().unwrap_or(usize::MAX) as u128,
            None => 0,
        };
        (self.num_repetitions as u128) * (self.dimension as u128) * per_coordinate
            + final_projection
    }

    /// Length of the encodings this config produces.
    pub fn output_dimension(&self) -> usize {
        self.final_projection_dimension
            .unwrap_or_else(|| self.raw_dimension().unwrap_or(usize::MAX))
    }

    /// Checks every range; the encoder only accepts a config that passes.
    pub fn validate(&self) -> Result<(), FdeError> {
        let bad = |m: String| Err(FdeError::InvalidConfig(m));
        if self.dimension == 0 || self.dimension > MAX_TOKEN_DIMENSION {
            return bad(format!(
                "dimension must be from 1 to {MAX_TOKEN_DIMENSION}, got {}",
                self.dimension
            ));
        }
        if self.num_repetitions == 0 {
            return bad("numRepetitions must be at least 1".into());
        }
        if self.num_simhash_projections > MAX_SIMHASH_PROJECTIONS {
            return bad(format!(
                "numSimhashProjections must be from 0 to {MAX_SIMHASH_PROJECTIONS}, got {}",
                self.num_simhash_projections
            ));
        }
        match self.projection_type {
            ProjectionType::Identity if self.projection_dimension != self.dimension => {
                return bad(format!(
                    "projectionDimension ({}) applies to the 'amsSketch' projection only; with 'identity' each block has the token dimension ({})",
                    self.projection_dimension, self.dimension
                ));
            }
            ProjectionType::AmsSketch if self.projection_dimension == 0 => {
                return bad("projectionDimension must be at least 1".into());
            }
            _ => {}
        }
        match self.raw_dimension() {
            Some(n) if n <= MAX_FDE_DIMENSION => {}
            _ => {
                return bad(format!(
                    "numRepetitions × 2^numSimhashProjections × {} = {} exceeds the largest encoding, {MAX_FDE_DIMENSION} values",
                    if self.projection_type == ProjectionType::Identity { "dimension" } else { "projectionDimension" },
                    (self.num_repetitions as u128)
                        * (self.num_partitions() as u128)
                        * (self.block_dimension() as u128)
                ));
            }
        }
        // Counted as allocated (the SimHash directions are padded to 32 lanes), so the bound
        // really bounds the encoder's memory.
        let held = self.encoder_values();
        if held > MAX_RANDOM_VALUES as u128 {
            return bad(format!(
                "the encoder would hold {held} values (SimHash directions padded to 32 lanes per token coordinate and repetition, sketch buckets and signs, the final projection's), more than {MAX_RANDOM_VALUES}: use fewer numRepetitions or a smaller encoding"
            ));
        }
        if let Some(out) = self.final_projection_dimension {
            if out == 0 || out > MAX_FDE_DIMENSION {
                return bad(format!(
                    "finalProjectionDimension must be from 1 to {MAX_FDE_DIMENSION}, got {out}"
                ));
            }
        }
        Ok(())
    }
}
