//! The user-facing settings of compression: the codec ([`Quantization`]), the reduction
//! ([`Reduction`]), their defaults and limits ([`Compression`]), and the per-search rescoring
//! settings ([`RescoreParams`]).

use vecdex_quant::{PqConfig, SqConfig, MAX_PQ_ITERATIONS};

use crate::error::{Error, Result};

/// How stored vectors are encoded for search.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Quantization {
    /// f32 (of the reduced vectors when a [`Reduction`] is set; otherwise no compression).
    #[default]
    None,
    /// 2 bytes per dimension, IEEE half precision.
    F16,
    /// 2 bytes per dimension, bfloat16.
    Bf16,
    /// 1 byte per dimension, ranges learnt per dimension.
    Sq8(SqConfig),
    /// 4 bits per dimension.
    Sq4(SqConfig),
    /// 1 bit per dimension (sign after centring), scored against the float query.
    Binary,
    /// Product quantization: `subspaces` bytes per vector.
    Pq(PqConfig),
    /// RaBitQ: `bits` per dimension of the randomly rotated residual (1, or 4 for the extended
    /// form), with per-vector factors and an unbiased inner-product estimate (see
    /// `vecdex_quant::rabitq`).
    Rabitq { bits: u8 },
}

impl Quantization {
    /// The name used in options and reports.
    pub const fn name(&self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::F16 => "f16",
            Quantization::Bf16 => "bf16",
            Quantization::Sq8(_) => "sq8",
            Quantization::Sq4(_) => "sq4",
            Quantization::Binary => "binary",
            Quantization::Pq(_) => "pq",
            Quantization::Rabitq { .. } => "rabitq",
        }
    }

    /// Whether the codec learns from data before it can encode.
    fn trains(&self) -> bool {
        !matches!(
            self,
            Quantization::None | Quantization::F16 | Quantization::Bf16
        )
    }
}

/// Reduction of the dimensions searched before quantization.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Reduction {
    #[default]
    None,
    /// Matryoshka: the first `n` dimensions (renormalised for cosine). For embeddings trained
    /// with Matryoshka Representation Learning (Kusupati et al. 2022), whose prefixes are
    /// embeddings in their own right.
    Prefix(usize),
    /// A PCA projection to `n` dimensions learnt from the training sample (LeanVec's
    /// in-distribution variant): centred for l2sq, uncentred (second moment) for dot and cosine,
    /// so inner products need no per-vector offset. Trained with a query sample
    /// (`fit_with_queries`), LeanVec-OOD's pair of projections instead (`vecdex_quant::leanvec`).
    Pca(usize),
}

/// Compression of an index's search form; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compression {
    pub quantization: Quantization,
    pub reduction: Reduction,
    /// A search rescores the `k × oversample` best candidates by code distance with the full
    /// vectors. 1 ..= 1,000; `None`: the codec's default (see [`Compression::oversample`]).
    pub oversample: Option<usize>,
    /// Vectors held when the index trains by itself (`None`: the codec's default, see
    /// [`Compression::training_size`]).
    pub training_size: Option<usize>,
}

/// Rescoring candidates per result by default: enough for f16, bf16, SQ8 and SQ4 to reach
/// their f32 recall on GloVe and Fashion-MNIST (measured by the `quant` benchmark suite).
pub const DEFAULT_OVERSAMPLE: usize = 4;

/// Rescoring candidates per result by default for PQ and binary codes.
pub const COARSE_OVERSAMPLE: usize = 10;

/// Largest accepted `oversample`.
pub const MAX_OVERSAMPLE: usize = 1000;

/// Most stored vectors used as the sample when an index trains by itself. PQ's k-means wants
/// about 100 points per centroid (256 centroids); more adds training time, not accuracy.
pub const AUTO_TRAINING_SAMPLE: usize = 32_768;

impl Default for Compression {
    fn default() -> Self {
        Compression {
            quantization: Quantization::None,
            reduction: Reduction::None,
            oversample: None,
            training_size: None,
        }
    }
}

/// Vectors held when a PQ index trains by itself, by default: 256 centroids per subspace want
/// many points each.
pub const PQ_TRAINING_SIZE: usize = 10_000;
/// Vectors held when another codec trains by itself, by default: per-dimension ranges and
/// means settle with far fewer.
pub const TRAINING_SIZE: usize = 1_000;
/// With a PCA projection, the default sample holds at least this many vectors per input
/// dimension (up to [`AUTO_TRAINING_SAMPLE`]): a covariance of `d × d` entries needs many more
/// rows than `d` for its top eigenvectors to settle (the common rule of at least 10 observations
/// per variable; Osborne & Costello, "Sample size and subject to item ratio in principal
/// components analysis", PARE 9(11), 2004). 1,000 rows could not estimate a 768-d covariance.
pub const PCA_ROWS_PER_DIMENSION: usize = 10;

/// Most searched dimensions of a RaBitQ index: its rotation is a dense `d × d` matrix, drawn by
/// Gram–Schmidt in `O(d³)` and applied in `O(d²)` per vector. Training took 0.64 s at 768
/// dimensions and 19.9 s at 2,048 on the 2-core AMD EPYC VM (1,000 rows, another job running).
pub const MAX_RABITQ_DIMENSIONS: usize = 2048;

/// The compression options as a user gives them, each optional, before they are resolved
/// against each other and the dimensions (names as in JS: `quantization`, `clipQuantile`, …;
/// ranges are checked by the options table, see [`crate::options`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompressionOptions {
    /// A codec name of [`crate::options::QUANTIZATIONS`].
    pub quantization: Option<String>,
    pub clip_quantile: Option<f64>,
    pub symmetric: Option<bool>,
    pub subspaces: Option<usize>,
    pub iterations: Option<usize>,
    pub oversample: Option<usize>,
    pub training_size: Option<usize>,
    pub prefix_dimensions: Option<usize>,
    pub pca_dimensions: Option<usize>,
    /// RaBitQ bits per dimension (1 or 4).
    pub bits: Option<usize>,
}

/// RaBitQ's bits per dimension by default: the paper's 1-bit codes.
pub const DEFAULT_RABITQ_BITS: u8 = 1;

/// The RaBitQ widths vecdex builds: 1 bit ([`vecdex_quant::RabitqCodec`]) and the extended
/// form's [`vecdex_quant::rabitq::EXTENDED_BITS`].
fn rabitq_bits(bits: Option<usize>) -> Result<u8> {
    match bits {
        None => Ok(DEFAULT_RABITQ_BITS),
        Some(1) => Ok(1),
        Some(b) if vecdex_quant::rabitq::EXTENDED_BITS.iter().any(|&e| usize::from(e) == b) => {
            Ok(b as u8)
        }
        Some(b) => Err(Error::invalid(format!(
            "rabitq bits must be 1 or 4 (codes of 2, 3 or 5 to 8 bits are not built), got {b}"
        ))),
    }
}

impl Compression {
    /// The settings `options` ask for over `dim`-dimensional vectors, with every rule that ties
    /// options together (one reduction at most; codec settings only with their codec) and the
    /// defaults that depend on others (SQ8 symmetric, PQ with a quarter of the searched
    /// dimensions). The result is [`check`](Self::check)ed by the index that takes it.
    pub fn from_options(options: &CompressionOptions, dim: usize) -> Result<Compression> {
        let mut compression = Compression::default();
        if let (Some(_), Some(_)) = (options.prefix_dimensions, options.pca_dimensions) {
            return Err(Error::invalid(
                "prefixDimensions and pcaDimensions cannot be combined: choose one reduction",
            ));
        }
        if let Some(n) = options.prefix_dimensions {
            compression.reduction = Reduction::Prefix(n);
        }
        if let Some(n) = options.pca_dimensions {
            compression.reduction = Reduction::Pca(n);
        }
        let searched = match compression.reduction {
            Reduction::None => dim,
            Reduction::Prefix(n) | Reduction::Pca(n) => n,
        };
        // SQ8 quantizes the query too unless told otherwise: in the `quant` suite it matched
        // asymmetric recall and was 1.3–2× faster (VNNI integer dot products); SQ4 has no
        // symmetric form.
        let sq = |symmetric_by_default: bool| SqConfig {
            clip_quantile: options
                .clip_quantile
                .unwrap_or(SqConfig::default().clip_quantile),
            symmetric: options.symmetric.unwrap_or(symmetric_by_default),
        };
        let name = options.quantization.as_deref().unwrap_or("none");
        compression.quantization =
            match crate::options::choice("quantization", name, crate::options::QUANTIZATIONS)? {
                "f16" => Quantization::F16,
                "bf16" => Quantization::Bf16,
                "sq8" => Quantization::Sq8(sq(true)),
                "sq4" => Quantization::Sq4(sq(false)),
                "binary" => Quantization::Binary,
                "rabitq" => Quantization::Rabitq {
                    bits: rabitq_bits(options.bits)?,
                },
                "pq" => {
                    let mut pq = PqConfig::new(options.subspaces.unwrap_or((searched / 4).max(1)));
                    if let Some(iterations) = options.iterations {
                        pq.iterations = iterations;
                    }
                    Quantization::Pq(pq)
                }
                _ => Quantization::None,
            };
        if options.symmetric == Some(true) && name != "sq8" {
            return Err(Error::invalid(
                "symmetric applies to 'sq8' quantization only",
            ));
        }
        if options.clip_quantile.is_some() && !matches!(name, "sq8" | "sq4") {
            return Err(Error::invalid(
                "clipQuantile applies to 'sq8' and 'sq4' quantization only",
            ));
        }
        if options.bits.is_some() && name != "rabitq" {
            return Err(Error::invalid("bits applies to 'rabitq' quantization only"));
        }
        if (options.subspaces.is_some() || options.iterations.is_some()) && name != "pq" {
            return Err(Error::invalid(
                "subspaces and iterations apply to 'pq' quantization only",
            ));
        }
        compression.oversample = options.oversample;
        compression.training_size = options.training_size;
        Ok(compression)
    }

    /// Whether searches use a compact form at all.
    pub fn is_enabled(&self) -> bool {
        self.quantization != Quantization::None || self.reduction != Reduction::None
    }

    /// Whether encoding needs a trained model (codec ranges, codebooks or a projection).
    pub fn needs_training(&self) -> bool {
        self.quantization.trains() || matches!(self.reduction, Reduction::Pca(_))
    }

    /// Vectors held when an index of `dim` dimensions trains by itself: the configured size,
    /// else 10,000 for PQ (256 centroids per subspace want many points each) and 1,000
    /// otherwise (per-dimension ranges and means settle with far fewer), raised with a PCA
    /// projection to [`PCA_ROWS_PER_DIMENSION`] × `dim` (at most [`AUTO_TRAINING_SAMPLE`]).
    pub fn training_size(&self, dim: usize) -> usize {
        let by_codec = match self.quantization {
            Quantization::Pq(_) => PQ_TRAINING_SIZE,
            _ => TRAINING_SIZE,
        };
        let by_projection = match self.reduction {
            Reduction::Pca(_) => dim
                .saturating_mul(PCA_ROWS_PER_DIMENSION)
                .min(AUTO_TRAINING_SAMPLE),
            Reduction::None | Reduction::Prefix(_) => 0,
        };
        self.training_size
            .unwrap_or(by_codec.max(by_projection))
            .max(1)
    }

    /// Candidates rescored per result: the configured number, else [`DEFAULT_OVERSAMPLE`] for
    /// the fine codecs (4-bit RaBitQ among them) and [`COARSE_OVERSAMPLE`] for PQ, binary and
    /// 1-bit RaBitQ codes, whose estimates are rougher (on GloVe 100k PQ with d/4 bytes reaches
    /// recall@10 0.88 with 4, 0.97 with 10).
    pub fn oversample(&self) -> usize {
        self.oversample.unwrap_or(match self.quantization {
            Quantization::Pq(_) | Quantization::Binary | Quantization::Rabitq { bits: 1 } => {
                COARSE_OVERSAMPLE
            }
            _ => DEFAULT_OVERSAMPLE,
        })
    }

    /// Checks the settings against the index's dimensions.
    pub fn check(&self, dim: usize) -> Result<()> {
        if let Some(oversample) = self.oversample {
            check_oversample(oversample)?;
        }
        let searched = match self.reduction {
            Reduction::None => dim,
            Reduction::Prefix(n) | Reduction::Pca(n) => {
                let what = if matches!(self.reduction, Reduction::Prefix(_)) {
                    "prefixDimensions"
                } else {
                    "pcaDimensions"
                };
                if n == 0 || n >= dim {
                    return Err(Error::invalid(format!(
                        "{what} must be between 1 and {} (below the dimensions), got {n}",
                        dim - 1
                    )));
                }
                n
            }
        };
        if let Quantization::Rabitq { bits } = self.quantization {
            rabitq_bits(Some(usize::from(bits)))?;
        }
        if matches!(self.quantization, Quantization::Rabitq { .. }) && searched > MAX_RABITQ_DIMENSIONS {
            return Err(Error::invalid(format!(
                "rabitq rotates the searched vectors with a dense matrix, so it takes at most \
                 {MAX_RABITQ_DIMENSIONS} searched dimensions (pcaDimensions reduces them), got \
                 {searched}"
            )));
        }
        if let Quantization::Pq(pq) = self.quantization {
            if pq.subspaces == 0 || pq.subspaces > searched {
                return Err(Error::invalid(format!(
                    "PQ subspaces must be between 1 and the searched dimensions ({searched}), got {}",
                    pq.subspaces
                )));
            }
            if !(1..=MAX_PQ_ITERATIONS).contains(&pq.iterations) {
                return Err(Error::invalid(format!(
                    "PQ iterations must be between 1 and {MAX_PQ_ITERATIONS}, got {}",
                    pq.iterations
                )));
            }
        }
        if let Quantization::Sq8(sq) | Quantization::Sq4(sq) = self.quantization {
            if !(0.0..vecdex_quant::MAX_CLIP_QUANTILE).contains(&sq.clip_quantile) {
                return Err(Error::invalid(format!(
                    "clipQuantile must be in [0, {}), got {}",
                    vecdex_quant::MAX_CLIP_QUANTILE,
                    sq.clip_quantile
                )));
            }
        }
        if let Some(size) = self.training_size {
            if size == 0 {
                return Err(Error::invalid("trainingSize must be at least 1"));
            }
            if size < 2 && matches!(self.reduction, Reduction::Pca(_)) {
                return Err(Error::invalid(
                    "trainingSize must be at least 2 with pcaDimensions (a PCA needs two vectors)",
                ));
            }
        }
        Ok(())
    }
}

/// Per-search settings of the rescoring step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RescoreParams {
    /// Candidates rescored per result (`None`: the index's `oversample`).
    pub oversample: Option<usize>,
    /// Rescore with the full vectors (default). `false` returns the codes' estimated distances.
    pub rescore: bool,
}

impl Default for RescoreParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RescoreParams {
    /// The index's oversample, rescored with the full vectors.
    pub const DEFAULT: RescoreParams = RescoreParams {
        oversample: None,
        rescore: true,
    };

    /// Candidates to take from the codes for `k` results.
    pub(crate) fn candidates(&self, k: usize, config: &Compression) -> Result<usize> {
        let oversample = self.oversample.unwrap_or(config.oversample());
        check_oversample(oversample)?;
        Ok(k.saturating_mul(oversample))
    }
}

/// An index's `oversample` and a search's override obey one limit.
fn check_oversample(oversample: usize) -> Result<()> {
    if !(1..=MAX_OVERSAMPLE).contains(&oversample) {
        return Err(Error::invalid(format!(
            "oversample must be between 1 and {MAX_OVERSAMPLE}, got {oversample}"
        )));
    }
    Ok(())
}
