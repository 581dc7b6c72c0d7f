//! Vector codecs: store less, score the compact form, rescore the few best with full vectors
//! (rescoring is the facade's job, not a codec's).
//!
//! Every codec implements [`Codec`]: it is trained from a sample (by its own constructor),
//! encodes vectors into fixed-size codes, prepares a query once per search, and scores a code
//! against a prepared query under the crate's one distance convention (lower is closer; see
//! `vecdex_distance::metric`). Codes are byte strings, so an index stores them in one flat buffer.
//!
//! - [`half`]: f16 and bf16 storage (2 bytes per dimension).
//! - [`sq`]: scalar quantization, 8 and 4 bits per dimension, ranges trained per dimension.
//! - [`binary`]: one bit per dimension, the sign after centring on the data mean.
//! - [`pq`]: product quantization, 256 centroids per subspace, asymmetric distance by tables.
//! - [`kmeans`]: seeded, parallel k-means with k-means++ initialisation (PQ's trainer).

pub mod binary;
pub mod codec;
pub mod half;
pub mod kmeans;
pub mod pca;
pub mod pq;
pub mod sq;

pub use binary::BinaryCodec;
pub use codec::{Codec, QuantError};
pub use half::{Bf16Codec, F16Codec};
pub use pca::{Pca, PcaConfig};
pub use pq::{PqCodec, PqConfig};
pub use sq::{ScalarCodec, Sq4Codec, Sq8Codec, SqConfig};
