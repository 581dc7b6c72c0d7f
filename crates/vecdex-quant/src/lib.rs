//! Vector codecs: store less, score the compact form, rescore the few best with full vectors
//! (rescoring is the facade's job, not a codec's).
//!
//! Every codec implements [`Codec`]: it is trained from a sample (by its own constructor),
//! encodes vectors into fixed-size codes, prepares a query once per search, and scores a code
//! against a prepared query under the crate's one distance convention (lower is closer; see
//! `vecdex_distance::metric`). Codes are byte strings, so an index stores them in one flat buffer.
//!
//! - [`plain`]: f32 storage of reduced vectors (4 bytes per dimension, padded to SIMD rows).
//! - [`half`]: f16 and bf16 storage (2 bytes per dimension).
//! - [`sq`]: scalar quantization, 8 and 4 bits per dimension, ranges trained per dimension.
//! - [`binary`]: one bit per dimension, the sign after centring on the data mean.
//! - [`pq`]: product quantization, 256 centroids per subspace, asymmetric distance by tables.
//! - [`kmeans`]: seeded, parallel k-means with k-means++ initialisation (PQ's trainer).
//! - [`pca`]: a learnt linear reduction to fewer dimensions (LeanVec-style PCA).
//! - [`leanvec`]: separate query and data reductions for queries from another distribution
//!   (LeanVec-OOD).
//! - [`dispatch`]: [`AnyCodec`], one of the codecs chosen at run time, and [`with_codec!`].
//!
//! Codecs that learn from data (scalar, binary, PQ, and PCA) save what they learnt with
//! `model_bytes` (little-endian, layout documented on each) and load it with
//! `from_model_bytes`, given the same construction parameters as `train`: the loaded codec
//! encodes and scores bit for bit as the trained one. A saved index should store
//! [`MODEL_VERSION`] next to the bytes.

pub mod binary;
mod bitplanes;
pub mod codec;
pub mod dispatch;
pub mod half;
pub mod kmeans;
pub mod leanvec;
mod model;
pub mod pca;
pub mod plain;
pub mod pq;
pub mod rabitq;
pub mod sq;

pub use binary::BinaryCodec;
pub use codec::{try_filled, Codec, QuantError};
pub use dispatch::AnyCodec;
pub use half::{Bf16Codec, F16Codec};
pub use leanvec::{LeanVec, LeanVecFit};
pub use pca::{Pca, PcaConfig};
pub use plain::PlainCodec;
pub use rabitq::{ExtendedRabitqCodec, RabitqCodec};
pub use pq::{PqCodec, PqConfig, DEFAULT_PQ_ITERATIONS, MAX_PQ_ITERATIONS};
pub use sq::{ScalarCodec, Sq4Codec, Sq8Codec, SqConfig, MAX_CLIP_QUANTILE};

/// Version of the layouts of every codec's `model_bytes` (see the crate docs). Bump it when any
/// of them changes, so that a file written with an older layout is refused (or converted)
/// instead of being misread.
pub const MODEL_VERSION: u32 = 1;
