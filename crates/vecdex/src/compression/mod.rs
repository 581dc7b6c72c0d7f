//! Compressed search forms, shared by [`FlatIndex`](crate::FlatIndex) and
//! [`HnswIndex`](crate::HnswIndex): store less, search the compact form, rescore the few best
//! with the full vectors.
//!
//! A [`Compression`] names two optional steps applied to every stored (normalised, for cosine)
//! vector: a [`Reduction`] to fewer dimensions (a Matryoshka prefix, or a PCA projection), then
//! a [`Quantization`] of the result into a fixed-size code. An index keeps its full f32 vectors
//! for rescoring and `get`, and one code per slot in a `Codes` store; a search scores codes,
//! keeps the best `k × oversample`, and rescores those with the full vectors.
//!
//! Codecs that learn from data (SQ ranges, the binary mean, PQ codebooks, the PCA projection)
//! train once: explicitly with a sample, or by themselves when the index first holds
//! [`Compression::training_size`] vectors (the sample is then up to
//! [`AUTO_TRAINING_SAMPLE`] stored vectors, evenly spaced). Until then vectors are stored and
//! (in HNSW) linked at full precision, and searching is an [`Error::NotTrained`]: a quantized
//! index never silently falls back to another form.
//!
//! The codecs themselves live in `vecdex_quant` behind its one `Codec` interface; this module
//! composes them with an index, one concern a file: the settings (`config`), the search form
//! of a trained model (`encoder`), the code of each slot (`storage`), training beside
//! searches (`training`), the file sections (`persist`), and scoring codes (`scoring`).
//!
//! [`Error::NotTrained`]: crate::Error::NotTrained

mod config;
mod encoder;
mod persist;
mod scoring;
mod storage;
mod training;

pub use config::{
    Compression, CompressionOptions, Quantization, Reduction, RescoreParams, AUTO_TRAINING_SAMPLE,
    COARSE_OVERSAMPLE, DEFAULT_OVERSAMPLE, DEFAULT_RABITQ_BITS, MAX_OVERSAMPLE,
    PCA_ROWS_PER_DIMENSION, PQ_TRAINING_SIZE, TRAINING_SIZE,
};
pub use storage::CompressionStats;
pub use training::TrainedEncoder;

pub(crate) use scoring::CodeQuery;
pub(crate) use storage::Codes;
pub(crate) use vecdex_quant::with_codec;
