//! Compression options and figures shared by both index classes (see
//! [`vecdex::compression`]).

use napi_derive::napi;
use vecdex::{
    Compression, CompressionStats, PqConfig, Quantization, Reduction, RescoreParams, SqConfig,
};

use crate::error::{invalid, Result};

/// How an index compresses its search form; every field is optional (validated again by the
/// index).
#[napi(object)]
#[derive(Default)]
pub struct NativeCompressionOptions {
    /// 'none' | 'f16' | 'bf16' | 'sq8' | 'sq4' | 'binary' | 'pq'.
    pub quantization: Option<String>,
    /// SQ: clip each dimension's range to these quantiles of the sample (0 ..< 0.5).
    pub clip_quantile: Option<f64>,
    /// SQ8: quantize the query too (default true: faster, same recall after rescoring).
    pub symmetric: Option<bool>,
    /// PQ: subspaces (bytes per code); default a quarter of the searched dimensions.
    pub subspaces: Option<u32>,
    /// PQ: k-means iterations per subspace.
    pub iterations: Option<u32>,
    /// Candidates rescored per result.
    pub oversample: Option<u32>,
    /// Vectors held when the index trains by itself.
    pub training_size: Option<f64>,
    /// Matryoshka: search on the first `n` dimensions.
    pub prefix_dimensions: Option<u32>,
    /// PCA: search on a learnt projection to `n` dimensions.
    pub pca_dimensions: Option<u32>,
}

/// The facade's compression settings from JS options.
pub fn compression(options: &NativeCompressionOptions, dim: usize) -> Result<Compression> {
    let mut compression = Compression::default();
    if let (Some(_), Some(_)) = (options.prefix_dimensions, options.pca_dimensions) {
        return Err(invalid(
            "prefixDimensions and pcaDimensions cannot be combined: choose one reduction",
        ));
    }
    if let Some(n) = options.prefix_dimensions {
        compression.reduction = Reduction::Prefix(n as usize);
    }
    if let Some(n) = options.pca_dimensions {
        compression.reduction = Reduction::Pca(n as usize);
    }
    let searched = match compression.reduction {
        Reduction::None => dim,
        Reduction::Prefix(n) | Reduction::Pca(n) => n,
    };
    // SQ8 quantizes the query too unless told otherwise: in the `quant` suite it matched
    // asymmetric recall and was 1.3–2× faster (VNNI integer dot products); SQ4 has no
    // symmetric form.
    let sq = |symmetric_by_default: bool| {
        let mut sq = SqConfig {
            symmetric: symmetric_by_default,
            ..SqConfig::default()
        };
        if let Some(q) = options.clip_quantile {
            sq.clip_quantile = q;
        }
        if let Some(symmetric) = options.symmetric {
            sq.symmetric = symmetric;
        }
        sq
    };
    let name = options.quantization.as_deref().unwrap_or("none");
    compression.quantization = match name {
        "none" => Quantization::None,
        "f16" => Quantization::F16,
        "bf16" => Quantization::Bf16,
        "sq8" => Quantization::Sq8(sq(true)),
        "sq4" => Quantization::Sq4(sq(false)),
        "binary" => Quantization::Binary,
        "pq" => {
            let mut pq = PqConfig::new(options.subspaces.map_or((searched / 4).max(1), |m| m as usize));
            if let Some(iterations) = options.iterations {
                pq.iterations = iterations as usize;
            }
            Quantization::Pq(pq)
        }
        other => {
            return Err(invalid(format!(
                "quantization must be 'none', 'f16', 'bf16', 'sq8', 'sq4', 'binary' or 'pq', got '{other}'"
            )))
        }
    };
    if options.symmetric == Some(true) && name != "sq8" {
        return Err(invalid("symmetric applies to 'sq8' quantization only"));
    }
    if options.clip_quantile.is_some() && !matches!(name, "sq8" | "sq4") {
        return Err(invalid(
            "clipQuantile applies to 'sq8' and 'sq4' quantization only",
        ));
    }
    if (options.subspaces.is_some() || options.iterations.is_some()) && name != "pq" {
        return Err(invalid(
            "subspaces and iterations apply to 'pq' quantization only",
        ));
    }
    if let Some(oversample) = options.oversample {
        compression.oversample = Some(oversample as usize);
    }
    if let Some(size) = options.training_size {
        if !(size >= 1.0 && size.fract() == 0.0 && size <= 4_294_967_295.0) {
            return Err(invalid(format!(
                "trainingSize must be an integer from 1 to 2^32 − 1, got {size}"
            )));
        }
        compression.training_size = Some(size as usize);
    }
    Ok(compression)
}

/// Rescoring settings of one search: `oversample` 0 means the index's own.
pub fn rescore_params(oversample: u32, rescore: bool) -> RescoreParams {
    RescoreParams {
        oversample: (oversample > 0).then_some(oversample as usize),
        rescore,
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
    /// Seconds the last training took.
    pub training_seconds: f64,
}

impl From<CompressionStats> for NativeCompressionStats {
    fn from(stats: CompressionStats) -> Self {
        NativeCompressionStats {
            quantization: stats.quantization.to_string(),
            trained: stats.trained,
            search_dimensions: stats.searched_dimensions as u32,
            code_size: stats.code_size as f64,
            code_bytes: stats.code_bytes as f64,
            vector_bytes: stats.vector_bytes as f64,
            training_seconds: stats.training_seconds,
        }
    }
}
