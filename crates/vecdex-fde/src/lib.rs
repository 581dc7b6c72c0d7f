//! Multi-vector retrieval for vecdex: MUVERA fixed-dimensional encodings (Dhulipala et al.,
//! NeurIPS 2024, arXiv 2405.19504) and exact Chamfer (MaxSim) scoring.
//!
//! An [`FdeEncoder`] turns a set of token vectors into one vector whose inner product with
//! another set's encoding approximates their Chamfer similarity, so an ordinary single-vector
//! index can find candidates; [`TokenStore`] then scores candidates (or every document, for
//! ground truth) exactly.

pub mod chamfer;
pub mod config;
pub mod encode;
pub mod projection;
pub mod rng;
pub mod simhash;

pub use chamfer::{
    chamfer, chamfer_path, chamfer_prepared, PreparedQuery, TokenStore, MAX_TOKEN_SQUARED_NORM,
};
pub use config::{
    FdeConfig, FdeDefaults, FdeError, ProjectionType, ENCODER_DEFAULTS, MAX_FDE_DIMENSION,
    MAX_RANDOM_VALUES, MAX_SIMHASH_PROJECTIONS,
};
pub use encode::{check_offsets, FdeEncoder, Scratch, Side};
pub use rng::{FdeRng, RNG_VERSION};
pub use simhash::{partition_of_pattern, pattern_of_partition};
