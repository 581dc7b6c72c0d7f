//! Compression options and figures shared by both index classes (see
//! [`vecdex::compression`]).

use napi_derive::napi;
use vecdex::compression::CompressionOptions;
use vecdex::{Compression, CompressionStats, RescoreParams};

use crate::error::Result;

/// How an index compresses its search form; every field is optional (validated again by the
/// index).
#[napi(object)]
#[derive(Default)]
pub struct NativeCompressionOptions {
    /// 'none' | 'f16' | 'bf16' | 'sq8' | 'sq4' | 'binary' | 'pq' | 'rabitq'.
    pub quantization: Option<String>,
    /// SQ: clip each dimension's range to these quantiles of the sample (0 ..< 0.5).
    pub clip_quantile: Option<f64>,
    /// SQ8: quantize the query too (default true: faster, same recall after rescoring).
    pub symmetric: Option<bool>,
    /// PQ: subspaces (bytes per code); default a quarter of the searched dimensions.
    pub subspaces: Option<u32>,
    /// PQ: k-means iterations per subspace.
    pub iterations: Option<u32>,
    /// RaBitQ: bits per dimension (1, or 4 for the extended codes).
    pub bits: Option<u32>,
    /// Candidates rescored per result.
    pub oversample: Option<u32>,
    /// Vectors held when the index trains by itself.
    pub training_size: Option<f64>,
    /// Matryoshka: search on the first `n` dimensions.
    pub prefix_dimensions: Option<u32>,
    /// PCA: search on a learnt projection to `n` dimensions.
    pub pca_dimensions: Option<u32>,
}

/// The facade's compression settings from JS options: converted here, resolved and checked by
/// the core ([`Compression::from_options`], the options table).
pub fn compression(options: &NativeCompressionOptions, dim: usize) -> Result<Compression> {
    let given = |n: Option<u32>| n.map(|n| n as usize);
    let resolved = || {
        let training_size = options
            .training_size
            .map(|size| vecdex::options::integer("CompressionOptions", "trainingSize", size))
            .transpose()?;
        Compression::from_options(
            &CompressionOptions {
                quantization: options.quantization.clone(),
                clip_quantile: options.clip_quantile,
                symmetric: options.symmetric,
                subspaces: given(options.subspaces),
                iterations: given(options.iterations),
                oversample: given(options.oversample),
                training_size: training_size.map(|n| n as usize),
                prefix_dimensions: given(options.prefix_dimensions),
                pca_dimensions: given(options.pca_dimensions),
                bits: given(options.bits),
            },
            dim,
        )
    };
    resolved().map_err(crate::error::to_napi)
}

/// Rescoring settings of one search: `oversample` 0 means the index's own.
pub fn rescore_params(oversample: u32, rescore: bool) -> RescoreParams {
    RescoreParams {
        oversample: (oversample > 0).then_some(oversample as usize),
        rescore,
    }
}

/// Bytes an index holds in memory by part (allocated capacity; rows a view maps from its file
/// are not counted).
#[napi(object)]
pub struct NativeMemoryParts {
    /// Full-precision vectors (kept beside the codes for rescoring when compressed).
    pub vectors: f64,
    /// Compressed codes.
    pub codes: f64,
    /// Graph links, levels and their locks (0 for a flat index).
    pub graph: f64,
    /// Keys, the key-to-slot map and slot bookkeeping.
    pub ids: f64,
}

impl From<vecdex::MemoryParts> for NativeMemoryParts {
    fn from(parts: vecdex::MemoryParts) -> Self {
        NativeMemoryParts {
            vectors: parts.vectors as f64,
            codes: parts.codes as f64,
            graph: parts.graph as f64,
            ids: parts.ids as f64,
        }
    }
}

/// Figures about an index's compressed form.
#[napi(object)]
pub struct NativeCompressionStats {
    pub quantization: String,
    pub trained: bool,
    /// Dimensions searched (after a prefix or PCA reduction).
    pub search_dimensions: u32,
    /// Bytes per vector of the searched form (0 when untrained or uncompressed).
    pub code_size: f64,
    /// Code bytes of the vectors held.
    pub code_bytes: f64,
    /// Bytes of the full-precision vectors kept for rescoring.
    pub vector_bytes: f64,
    /// Where those are: 'memory', or 'disk' (a file read only to rescore).
    pub full_vectors: String,
    /// Seconds the last training took.
    pub training_seconds: f64,
    /// The whole index's allocated memory by part (for a multi-vector index: its FDE index's).
    pub memory: NativeMemoryParts,
}

impl From<CompressionStats> for NativeCompressionStats {
    fn from(stats: CompressionStats) -> Self {
        NativeCompressionStats {
            quantization: stats.quantization.to_string(),
            trained: stats.trained,
            search_dimensions: stats.searched_dimensions as u32,
            code_size: stats.code_size as f64,
            code_bytes: stats.code_bytes as f64,
            memory: stats.memory.into(),
            vector_bytes: stats.vector_bytes as f64,
            full_vectors: stats.full_vectors.to_string(),
            training_seconds: stats.training_seconds,
        }
    }
}
