//! Compressed search forms, shared by [`FlatIndex`](crate::FlatIndex) and
//! [`HnswIndex`](crate::HnswIndex): store less, search the compact form, rescore the few best
//! with the full vectors.
//!
//! A [`Compression`] names two optional steps applied to every stored (normalised, for cosine)
//! vector: a [`Reduction`] to fewer dimensions (a Matryoshka prefix, or a PCA projection), then
//! a [`Quantization`] of the result into a fixed-size code. An index keeps its full f32 vectors
//! for rescoring and `get`, and one code per slot in a [`Codes`] store; a search scores codes,
//! keeps the best `k × oversample`, and rescores those with the full vectors.
//!
//! Codecs that learn from data (SQ ranges, the binary mean, PQ codebooks, the PCA projection)
//! train once: explicitly with a sample, or by themselves when the index first holds
//! [`Compression::training_size`] vectors (the sample is then up to
//! [`AUTO_TRAINING_SAMPLE`] stored vectors, evenly spaced). Until then vectors are stored and
//! (in HNSW) linked at full precision, and searching is an [`Error::NotTrained`]: a quantized
//! index never silently falls back to another form.

use std::time::Instant;

use rayon::prelude::*;
use vecdex_distance::{padded_len, Metric, RowKernel};
use vecdex_quant::{
    Bf16Codec, BinaryCodec, Codec, F16Codec, Pca, PcaConfig, PqCodec, PqConfig, QuantError,
    Sq4Codec, Sq8Codec, SqConfig,
};

use crate::error::{Error, Result};
use crate::filter::IndexVersion;
use crate::threads;
use crate::validate::{check_matrix, normalize, out_of_memory, try_copy, try_filled};

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
    /// 1 bit per dimension (sign after centring), Hamming distance.
    Binary,
    /// Product quantization: `subspaces` bytes per vector.
    Pq(PqConfig),
}

impl Quantization {
    /// The name used in options and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::F16 => "f16",
            Quantization::Bf16 => "bf16",
            Quantization::Sq8(_) => "sq8",
            Quantization::Sq4(_) => "sq4",
            Quantization::Binary => "binary",
            Quantization::Pq(_) => "pq",
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
    /// so inner products need no per-vector offset.
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

impl Compression {
    /// Whether searches use a compact form at all.
    pub fn is_enabled(&self) -> bool {
        self.quantization != Quantization::None || self.reduction != Reduction::None
    }

    /// Whether encoding needs a trained model (codec ranges, codebooks or a projection).
    pub fn needs_training(&self) -> bool {
        self.quantization.trains() || matches!(self.reduction, Reduction::Pca(_))
    }

    /// Vectors held when the index trains by itself: the configured size, else 10,000 for PQ
    /// (256 centroids per subspace want many points each) and 1,000 otherwise (per-dimension
    /// ranges, means and a covariance settle with far fewer).
    pub fn training_size(&self) -> usize {
        self.training_size
            .unwrap_or(match self.quantization {
                Quantization::Pq(_) => 10_000,
                _ => 1_000,
            })
            .max(1)
    }

    /// Candidates rescored per result: the configured number, else [`DEFAULT_OVERSAMPLE`] for
    /// the fine codecs and [`COARSE_OVERSAMPLE`] for PQ and binary codes, whose estimates are
    /// rougher (on GloVe 100k PQ with d/4 bytes reaches recall@10 0.88 with 4, 0.97 with 10).
    pub fn oversample(&self) -> usize {
        self.oversample.unwrap_or(match self.quantization {
            Quantization::Pq(_) | Quantization::Binary => COARSE_OVERSAMPLE,
            _ => DEFAULT_OVERSAMPLE,
        })
    }

    /// Checks the settings against the index's dimensions.
    pub fn check(&self, dim: usize) -> Result<()> {
        if let Some(oversample) = self.oversample {
            if !(1..=MAX_OVERSAMPLE).contains(&oversample) {
                return Err(Error::invalid(format!(
                    "oversample must be between 1 and {MAX_OVERSAMPLE}, got {oversample}"
                )));
            }
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
        if let Quantization::Pq(pq) = self.quantization {
            if pq.subspaces == 0 || pq.subspaces > searched {
                return Err(Error::invalid(format!(
                    "PQ subspaces must be between 1 and the searched dimensions ({searched}), got {}",
                    pq.subspaces
                )));
            }
            if !(1..=1000).contains(&pq.iterations) {
                return Err(Error::invalid(format!(
                    "PQ iterations must be between 1 and 1000, got {}",
                    pq.iterations
                )));
            }
        }
        if let Quantization::Sq8(sq) | Quantization::Sq4(sq) = self.quantization {
            if !(0.0..0.5).contains(&sq.clip_quantile) {
                return Err(Error::invalid(format!(
                    "clipQuantile must be in [0, 0.5), got {}",
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

/// f32 codes of reduced vectors (no quantization), padded to whole SIMD rows so the row
/// kernels score them directly.
#[derive(Debug, Clone)]
pub(crate) struct PlainCodec {
    dim: usize,
    stride: usize,
    metric: Metric,
    kernel: RowKernel,
}

impl PlainCodec {
    fn values(code: &[u8]) -> &[f32] {
        debug_assert!(code.as_ptr().align_offset(4) == 0 && code.len().is_multiple_of(4));
        // SAFETY: codes live in 64-byte aligned storage at multiples of the code size (a
        // multiple of 64 here), so `code` is 4-aligned and holds whole f32 values; any bit
        // pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(code.as_ptr().cast::<f32>(), code.len() / 4) }
    }
}

impl Codec for PlainCodec {
    type Query = Vec<f32>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn code_size(&self) -> usize {
        self.stride * 4
    }

    fn encode(&self, vector: &[f32], code: &mut [u8]) {
        code.fill(0);
        for (bytes, x) in code.chunks_exact_mut(4).zip(vector) {
            bytes.copy_from_slice(&x.to_le_bytes());
        }
    }

    fn decode(&self, code: &[u8], out: &mut [f32]) {
        out.copy_from_slice(&Self::values(code)[..self.dim]);
    }

    fn prepare(&self, query: &[f32]) -> Vec<f32> {
        let mut padded = vec![0f32; self.stride];
        padded[..self.dim].copy_from_slice(query);
        padded
    }

    #[inline]
    fn score(&self, query: &Vec<f32>, code: &[u8]) -> f32 {
        let row = Self::values(code);
        match self.metric {
            Metric::L2sq => self.kernel.l2sq(query, row),
            _ => 1.0 - self.kernel.dot(query, row),
        }
    }
}

/// One of the codecs, chosen at run time.
#[derive(Debug, Clone)]
pub(crate) enum AnyCodec {
    Plain(PlainCodec),
    F16(F16Codec),
    Bf16(Bf16Codec),
    Sq8(Sq8Codec),
    Sq4(Sq4Codec),
    Binary(BinaryCodec),
    Pq(PqCodec),
}

/// Runs `$body` with `$codec` bound to the concrete codec inside `$any`, so hot loops are
/// compiled once per codec instead of dispatching per score.
macro_rules! with_codec {
    ($any:expr, |$codec:ident| $body:expr) => {
        match $any {
            $crate::compression::AnyCodec::Plain($codec) => $body,
            $crate::compression::AnyCodec::F16($codec) => $body,
            $crate::compression::AnyCodec::Bf16($codec) => $body,
            $crate::compression::AnyCodec::Sq8($codec) => $body,
            $crate::compression::AnyCodec::Sq4($codec) => $body,
            $crate::compression::AnyCodec::Binary($codec) => $body,
            $crate::compression::AnyCodec::Pq($codec) => $body,
        }
    };
}
pub(crate) use with_codec;

#[derive(Debug, Clone)]
enum Reducer {
    None,
    Prefix { dims: usize, normalize: bool },
    Pca(Pca),
}

impl Reducer {
    /// `vector` in the searched dimensions, written to `out`.
    fn apply(&self, vector: &[f32], out: &mut [f32]) {
        match self {
            Reducer::None => out.copy_from_slice(vector),
            Reducer::Prefix { dims, normalize } => {
                out.copy_from_slice(&vector[..*dims]);
                // A zero prefix stays zero: its scores are then the same for every query.
                if *normalize && out.iter().any(|x| *x != 0.0) {
                    crate::validate::normalize(out);
                }
            }
            Reducer::Pca(pca) => pca.project(vector, out),
        }
    }
}

/// A trained search form: the reduction and the codec.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    reducer: Reducer,
    pub(crate) codec: AnyCodec,
    searched_dim: usize,
}

impl Encoder {
    pub(crate) fn code_size(&self) -> usize {
        with_codec!(&self.codec, |c| c.code_size())
    }

    /// `vector` reduced to the searched dimensions (into `scratch`).
    pub(crate) fn reduce<'s>(&self, vector: &'s [f32], scratch: &'s mut Vec<f32>) -> &'s [f32] {
        if let Reducer::None = self.reducer {
            return vector;
        }
        scratch.resize(self.searched_dim, 0.0);
        self.reducer.apply(vector, scratch);
        scratch
    }

    fn encode(&self, vector: &[f32], scratch: &mut Vec<f32>, code: &mut [u8]) {
        let reduced = self.reduce(vector, scratch);
        with_codec!(&self.codec, |c| c.encode(reduced, code))
    }
}

/// The codes of an index, one per slot, in 64-byte aligned storage, and the model that makes
/// them (absent until trained).
#[derive(Debug, Clone)]
pub(crate) struct Codes {
    config: Compression,
    dim: usize,
    metric: Metric,
    encoder: Option<Encoder>,
    /// `capacity × code_size` bytes (zero until trained).
    blocks: Vec<Block>,
    training_seconds: f64,
}

/// A model learnt from a training sample, not yet in place: see [`HnswIndex::fit`] and
/// [`FlatIndex::fit`] (learnt under shared access), then `install_training` (exclusive).
///
/// [`HnswIndex::fit`]: crate::HnswIndex::fit
/// [`FlatIndex::fit`]: crate::FlatIndex::fit
#[derive(Debug)]
pub struct TrainedEncoder {
    /// The new model, with the settings it was learnt for (installing it elsewhere is refused)
    /// and, once staged, the codes of every stored vector.
    staged: Codes,
    seconds: f64,
    /// The index version whose vectors the staged codes encode (None: not staged).
    encoded_at: Option<IndexVersion>,
}

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

impl Codes {
    /// Codes for `dim`-dimensional vectors; codecs that need no training are ready at once.
    pub(crate) fn new(config: Compression, dim: usize, metric: Metric) -> Result<Self> {
        config.check(dim)?;
        let mut codes = Codes {
            config,
            dim,
            metric,
            encoder: None,
            blocks: Vec::new(),
            training_seconds: 0.0,
        };
        if config.is_enabled() && !config.needs_training() {
            codes.encoder = Some(codes.build_encoder(&[])?);
        }
        Ok(codes)
    }

    pub(crate) fn config(&self) -> &Compression {
        &self.config
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.config.is_enabled()
    }

    pub(crate) fn is_trained(&self) -> bool {
        self.encoder.is_some()
    }

    /// The trained encoder, or the error a search of an untrained index gets.
    pub(crate) fn searchable(&self) -> Result<&Encoder> {
        self.encoder.as_ref().ok_or_else(|| {
            Error::NotTrained(format!(
                "the index searches {} codes, which are not trained yet: call train(sample), or \
                 add at least {} vectors (trainingSize) so it trains by itself",
                self.config.quantization.name(),
                self.config.training_size()
            ))
        })
    }

    /// Whether an index that holds `held` vectors should now train by itself.
    pub(crate) fn wants_training(&self, held: usize) -> bool {
        self.is_enabled() && self.encoder.is_none() && held >= self.config.training_size()
    }

    /// Dimensions of the searched (reduced) vectors.
    pub(crate) fn searched_dim(&self) -> usize {
        match self.config.reduction {
            Reduction::None => self.dim,
            Reduction::Prefix(n) | Reduction::Pca(n) => n,
        }
    }

    fn build_encoder(&self, sample: &[f32]) -> Result<Encoder> {
        let quant = Error::from;
        let searched_dim = self.searched_dim();
        let reducer = match self.config.reduction {
            Reduction::None => Reducer::None,
            Reduction::Prefix(dims) => Reducer::Prefix {
                dims,
                normalize: self.metric == Metric::Cosine,
            },
            Reduction::Pca(out_dim) => Reducer::Pca(
                Pca::train(
                    sample,
                    self.dim,
                    PcaConfig {
                        out_dim,
                        centered: self.metric == Metric::L2sq,
                    },
                )
                .map_err(quant)?,
            ),
        };
        let reduced: Vec<f32> = if matches!(reducer, Reducer::None) || sample.is_empty() {
            Vec::new()
        } else {
            let mut out = try_filled(
                sample.len() / self.dim * searched_dim,
                0f32,
                "the reduced training sample",
            )?;
            out.par_chunks_mut(searched_dim)
                .zip(sample.par_chunks(self.dim))
                .for_each(|(o, v)| reducer.apply(v, o));
            out
        };
        let sample = if matches!(reducer, Reducer::None) {
            sample
        } else {
            &reduced
        };
        let (dim, metric) = (searched_dim, self.metric);
        let codec = match self.config.quantization {
            Quantization::None => AnyCodec::Plain(PlainCodec {
                dim,
                stride: padded_len(dim),
                metric,
                kernel: RowKernel::default(),
            }),
            Quantization::F16 => AnyCodec::F16(F16Codec::new(dim, metric).map_err(quant)?),
            Quantization::Bf16 => AnyCodec::Bf16(Bf16Codec::new(dim, metric).map_err(quant)?),
            Quantization::Sq8(c) => {
                AnyCodec::Sq8(Sq8Codec::train(sample, dim, metric, c).map_err(quant)?)
            }
            Quantization::Sq4(c) => {
                AnyCodec::Sq4(Sq4Codec::train(sample, dim, metric, c).map_err(quant)?)
            }
            Quantization::Binary => {
                AnyCodec::Binary(BinaryCodec::train(sample, dim, metric).map_err(quant)?)
            }
            Quantization::Pq(c) => {
                AnyCodec::Pq(PqCodec::train(sample, dim, metric, c).map_err(quant)?)
            }
        };
        Ok(Encoder {
            reducer,
            codec,
            searched_dim,
        })
    }

    /// The model learnt from `sample`, with its training time; `self` is untouched.
    fn fit(&self, sample: &[f32]) -> Result<TrainedEncoder> {
        let started = Instant::now();
        // Off the compute pool: searches running meanwhile must not queue behind k-means.
        let encoder = threads::run_background(|| self.build_encoder(sample))?;
        Ok(TrainedEncoder {
            staged: Codes {
                config: self.config,
                dim: self.dim,
                metric: self.metric,
                encoder: Some(encoder),
                blocks: Vec::new(),
                training_seconds: 0.0,
            },
            seconds: started.elapsed().as_secs_f64(),
            encoded_at: None,
        })
    }

    /// Encodes `slots` (read with `vector(slot, out)`) with `trained`'s model into storage of
    /// its own for `capacity` slots, on the background pool and with shared access to the
    /// index: installing it at the same `version` then swaps the codes in instead of encoding
    /// under exclusive access.
    pub(crate) fn stage(
        trained: &mut TrainedEncoder,
        slots: &[u32],
        vector: &(dyn Fn(u32, &mut [f32]) + Sync),
        capacity: usize,
        version: IndexVersion,
    ) -> Result<()> {
        let staged = &mut trained.staged;
        staged.reserve(capacity)?;
        staged.encode_slots_in(slots, vector, Pool::Background)?;
        trained.encoded_at = Some(version);
        Ok(())
    }

    /// Replaces the model with `trained` and sizes the codes for `capacity` slots. True when
    /// its staged codes ([`Self::stage`]) were made at `version`, the index's version now, and
    /// so are in place; otherwise the caller re-encodes every stored vector next
    /// ([`Self::encode_slots`]).
    pub(crate) fn install(
        &mut self,
        trained: TrainedEncoder,
        capacity: usize,
        version: Option<IndexVersion>,
    ) -> Result<bool> {
        let TrainedEncoder {
            mut staged,
            seconds,
            encoded_at,
        } = trained;
        if (staged.dim, staged.metric, staged.config) != (self.dim, self.metric, self.config) {
            return Err(Error::invalid(
                "train: the model was trained for another index's settings",
            ));
        }
        let encoded = encoded_at.is_some() && encoded_at == version;
        if !encoded {
            staged.blocks = Vec::new();
        }
        // Sized before anything changes here, so a failure leaves the index as it was.
        staged.reserve(capacity)?;
        self.encoder = staged.encoder.take();
        self.blocks = std::mem::take(&mut staged.blocks);
        self.training_seconds = seconds;
        Ok(encoded)
    }

    /// Learns a model from a caller's `sample` (row-major vectors, validated here and normalised
    /// for cosine like stored ones) without changing the index: the slow part of an explicit
    /// training (k-means, PCA), which needs only shared access, so searches go on meanwhile.
    /// [`Self::install`] puts it in place.
    pub(crate) fn fit_sample(&self, sample: &[f32]) -> Result<TrainedEncoder> {
        if !self.is_enabled() {
            return Err(Error::invalid(
                "train: this index has no quantization or reduction to train",
            ));
        }
        check_matrix(
            sample,
            self.dim,
            "training sample",
            self.metric == Metric::Cosine,
        )?;
        self.fit(&normalized_sample(sample, self.dim, self.metric)?)
    }

    /// The model an index learns by itself, from up to [`AUTO_TRAINING_SAMPLE`] vectors: the
    /// `held` slots (evenly spaced, read with `vector(slot, out)`), then rows of the incoming
    /// `batch` (validated, not yet normalised). Needs only shared access; [`Self::install`]
    /// puts it in place.
    pub(crate) fn fit_by_itself(
        &self,
        held: &[u32],
        vector: &(dyn Fn(u32, &mut [f32]) + Sync),
        batch: &[f32],
    ) -> Result<TrainedEncoder> {
        let dim = self.dim;
        let stored = held.len().min(AUTO_TRAINING_SAMPLE);
        // Up to AUTO_TRAINING_SAMPLE rows of `dim` values (gigabytes at the largest dimensions).
        let mut sample = try_filled(stored * dim, 0f32, "the training sample")?;
        sample
            .chunks_exact_mut(dim)
            .enumerate()
            .for_each(|(i, row)| vector(held[i * held.len() / stored], row));
        let room = (AUTO_TRAINING_SAMPLE - stored) * dim;
        let incoming = normalized_sample(&batch[..batch.len().min(room)], dim, self.metric)?;
        sample
            .try_reserve_exact(incoming.len())
            .map_err(|_| out_of_memory("the training sample", sample.len() + incoming.len()))?;
        sample.extend(incoming);
        self.fit(&sample)
    }

    /// Room for the codes of `slots` slots (nothing before training).
    pub(crate) fn reserve(&mut self, slots: usize) -> Result<()> {
        let Some(encoder) = &self.encoder else {
            return Ok(());
        };
        let bytes = slots
            .checked_mul(encoder.code_size())
            .ok_or_else(|| out_of_memory("codes", usize::MAX))?;
        self.grow_bytes(bytes)
    }

    fn grow_bytes(&mut self, bytes: usize) -> Result<()> {
        let blocks = bytes.div_ceil(64);
        if blocks > self.blocks.len() {
            // Amortised: a flat index grows its codes chunk by chunk.
            self.blocks
                .try_reserve(blocks - self.blocks.len())
                .map_err(|_| out_of_memory("codes (64-byte blocks)", blocks))?;
            // Walks read codes at random: huge pages spare the TLB misses (as for f32 rows).
            vecdex_distance::advise_huge_pages(&self.blocks);
            self.blocks.resize(blocks, Block([0; 64]));
        }
        Ok(())
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `Block` is `repr(C)` around `[u8; 64]` (size 64, no padding).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.blocks.as_mut_ptr().cast::<u8>(),
                self.blocks.len() * 64,
            )
        }
    }

    /// All code bytes, slot `s` at `s × code_size`.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: as in `bytes_mut`.
        unsafe {
            std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.blocks.len() * 64)
        }
    }

    /// Encodes `slots`, reading each one's full vector with `vector(slot, out)`; in parallel on
    /// the pool for large batches. A no-op before training.
    pub(crate) fn encode_slots(
        &mut self,
        slots: &[u32],
        vector: &(dyn Fn(u32, &mut [f32]) + Sync),
    ) -> Result<()> {
        self.encode_slots_in(slots, vector, Pool::Compute)
    }

    /// [`Self::encode_slots`], its parallel part on `pool`.
    fn encode_slots_in(
        &mut self,
        slots: &[u32],
        vector: &(dyn Fn(u32, &mut [f32]) + Sync),
        pool: Pool,
    ) -> Result<()> {
        let Some(encoder) = self.encoder.take() else {
            return Ok(());
        };
        let size = encoder.code_size();
        let dim = self.dim;
        let result = (|| {
            let needed = slots.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
            self.grow_bytes(needed * size)?;
            let codes = SharedCodes(self.bytes_mut().as_mut_ptr(), size);
            let encode_one = |slot: u32, full: &mut Vec<f32>, scratch: &mut Vec<f32>| {
                full.resize(dim, 0.0);
                vector(slot, full);
                // SAFETY: `slots` are distinct, so every code written is disjoint, and all
                // lie inside the storage grown above.
                let code = unsafe { codes.code(slot) };
                encoder.encode(full, scratch, code);
            };
            if slots.len() < 1024 {
                let (mut full, mut scratch) = (Vec::new(), Vec::new());
                slots
                    .iter()
                    .for_each(|&s| encode_one(s, &mut full, &mut scratch));
                Ok(())
            } else {
                let encode_all = || {
                    slots.par_iter().for_each_init(
                        || (Vec::new(), Vec::new()),
                        |(full, scratch), &s| encode_one(s, full, scratch),
                    );
                    Ok(())
                };
                match pool {
                    Pool::Compute => threads::run(encode_all),
                    Pool::Background => threads::run_background(encode_all),
                }
            }
        })();
        self.encoder = Some(encoder);
        result
    }

    /// The trained model as saved, when the compression needs training and has it:
    ///
    /// ```text
    /// u64 R: bytes of the PCA model (0 without a PCA reduction), then R bytes (Pca::model_bytes)
    /// the codec's model (e.g. Sq8Codec::model_bytes) to the end; empty for codecs without one
    /// ```
    pub(crate) fn saved_model(&self) -> Option<Vec<u8>> {
        if !self.config.needs_training() {
            return None;
        }
        let encoder = self.encoder.as_ref()?;
        let reducer = match &encoder.reducer {
            Reducer::Pca(pca) => pca.model_bytes(),
            _ => Vec::new(),
        };
        let mut out = (reducer.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&reducer);
        out.extend_from_slice(&match &encoder.codec {
            AnyCodec::Sq8(c) => c.model_bytes(),
            AnyCodec::Sq4(c) => c.model_bytes(),
            AnyCodec::Binary(c) => c.model_bytes(),
            AnyCodec::Pq(c) => c.model_bytes(),
            AnyCodec::Plain(_) | AnyCodec::F16(_) | AnyCodec::Bf16(_) => Vec::new(),
        });
        Some(out)
    }

    /// The codes of slots `0 .. slots` (empty before training).
    pub(crate) fn saved_codes(&self, slots: usize) -> &[u8] {
        let size = self.encoder.as_ref().map_or(0, Encoder::code_size);
        &self.bytes()[..slots * size]
    }

    /// Codes rebuilt from a file: the model (present exactly when the compression needs
    /// training and was trained) and `slots` codes, all checked before use.
    pub(crate) fn restore(
        config: Compression,
        dim: usize,
        metric: Metric,
        model: Option<&[u8]>,
        codes: Option<&[u8]>,
        slots: usize,
    ) -> Result<Self> {
        use crate::persist::corrupt;
        let mut restored = Codes::new(config, dim, metric)?;
        if let Some(model) = model {
            if !config.needs_training() {
                return Err(corrupt("a codec model is saved for a codec that has none"));
            }
            restored.encoder = Some(restored.encoder_from_model(model)?);
        }
        let size = restored.encoder.as_ref().map_or(0, Encoder::code_size);
        let codes = codes.unwrap_or(&[]);
        crate::persist::expect_len(codes, slots, size, "codes")?;
        restored.grow_bytes(codes.len())?;
        restored.bytes_mut()[..codes.len()].copy_from_slice(codes);
        Ok(restored)
    }

    fn encoder_from_model(&self, model: &[u8]) -> Result<Encoder> {
        use crate::persist::corrupt;
        // A model too large to allocate is not proof of damage: report it as such.
        let bad = |e: QuantError| {
            if e.is_out_of_memory() {
                Error::from(e)
            } else {
                corrupt(format!("codec model: {e}"))
            }
        };
        let (len, rest) = model
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("codec model: too short"))?;
        let len = usize::try_from(u64::from_le_bytes(*len))
            .ok()
            .filter(|&n| n <= rest.len())
            .ok_or_else(|| corrupt("codec model: reduction length past its end"))?;
        let (reducer_bytes, codec_bytes) = rest.split_at(len);
        let searched_dim = self.searched_dim();
        let reducer = match self.config.reduction {
            Reduction::Pca(out_dim) => Reducer::Pca(
                Pca::from_model_bytes(
                    reducer_bytes,
                    self.dim,
                    PcaConfig {
                        out_dim,
                        centered: self.metric == Metric::L2sq,
                    },
                )
                .map_err(bad)?,
            ),
            _ if !reducer_bytes.is_empty() => {
                return Err(corrupt("codec model: a reduction model without PCA"))
            }
            Reduction::Prefix(dims) => Reducer::Prefix {
                dims,
                normalize: self.metric == Metric::Cosine,
            },
            Reduction::None => Reducer::None,
        };
        let (dim, metric) = (searched_dim, self.metric);
        let no_model = |codec: AnyCodec| {
            if codec_bytes.is_empty() {
                Ok(codec)
            } else {
                Err(corrupt(
                    "codec model: bytes saved for a codec without a model",
                ))
            }
        };
        let quant = Error::from;
        let codec = match self.config.quantization {
            Quantization::None => no_model(AnyCodec::Plain(PlainCodec {
                dim,
                stride: padded_len(dim),
                metric,
                kernel: RowKernel::default(),
            }))?,
            Quantization::F16 => {
                no_model(AnyCodec::F16(F16Codec::new(dim, metric).map_err(quant)?))?
            }
            Quantization::Bf16 => {
                no_model(AnyCodec::Bf16(Bf16Codec::new(dim, metric).map_err(quant)?))?
            }
            Quantization::Sq8(c) => {
                AnyCodec::Sq8(Sq8Codec::from_model_bytes(codec_bytes, dim, metric, c).map_err(bad)?)
            }
            Quantization::Sq4(c) => {
                AnyCodec::Sq4(Sq4Codec::from_model_bytes(codec_bytes, dim, metric, c).map_err(bad)?)
            }
            Quantization::Binary => AnyCodec::Binary(
                BinaryCodec::from_model_bytes(codec_bytes, dim, metric).map_err(bad)?,
            ),
            Quantization::Pq(c) => {
                AnyCodec::Pq(PqCodec::from_model_bytes(codec_bytes, dim, metric, c).map_err(bad)?)
            }
        };
        Ok(Encoder {
            reducer,
            codec,
            searched_dim,
        })
    }

    /// Moves the code of slot `from` to slot `to` (dense storage after a swap-remove).
    pub(crate) fn move_code(&mut self, from: usize, to: usize) {
        let Some(size) = self.encoder.as_ref().map(Encoder::code_size) else {
            return;
        };
        let bytes = self.bytes_mut();
        bytes.copy_within(from * size..(from + 1) * size, to * size);
    }

    /// Bytes held by the codes (allocated capacity).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.blocks.capacity() * 64
    }

    pub(crate) fn figures(&self, slots: usize, vector_bytes: usize) -> CompressionStats {
        CompressionStats {
            quantization: self.config.quantization.name(),
            trained: !self.is_enabled() || self.is_trained(),
            searched_dimensions: self.searched_dim(),
            code_size: self.encoder.as_ref().map_or(0, Encoder::code_size),
            code_bytes: self.encoder.as_ref().map_or(0, |e| e.code_size() * slots),
            vector_bytes,
            training_seconds: self.training_seconds,
        }
    }
}

/// Figures about an index's compressed form.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionStats {
    /// "none", "f16", "bf16", "sq8", "sq4", "binary" or "pq".
    pub quantization: &'static str,
    /// Whether searches can run (always, without compression).
    pub trained: bool,
    /// Dimensions searched (after a prefix or PCA reduction).
    pub searched_dimensions: usize,
    /// Bytes per vector of the searched form (0 when untrained or uncompressed).
    pub code_size: usize,
    /// Code bytes of the vectors held (`slots × code_size`).
    pub code_bytes: usize,
    /// Bytes of the full-precision vectors kept for rescoring.
    pub vector_bytes: usize,
    /// Time the last training took.
    pub training_seconds: f64,
}

/// Where parallel encoding runs: the compute pool (adds, under the index's write lock), or the
/// background pool (staging a new model's codes while searches go on).
#[derive(Clone, Copy)]
enum Pool {
    Compute,
    Background,
}

/// Raw access to the code storage for parallel encoding of distinct slots.
#[derive(Clone, Copy)]
struct SharedCodes(*mut u8, usize);

// SAFETY: used only to write disjoint codes from several threads (see `encode_slots`).
unsafe impl Send for SharedCodes {}
unsafe impl Sync for SharedCodes {}

impl SharedCodes {
    /// # Safety
    /// The slot's code must lie inside the storage, and no other reference to it may exist.
    #[allow(clippy::mut_from_ref)]
    unsafe fn code(&self, slot: u32) -> &mut [u8] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(slot as usize * self.1), self.1) }
    }
}

/// A prepared query scored against the code of each slot: what the graph walks and the flat
/// scan score.
pub(crate) struct CodeQuery<'a, C: Codec> {
    pub(crate) codec: &'a C,
    pub(crate) prepared: C::Query,
    pub(crate) codes: &'a [u8],
    pub(crate) size: usize,
}

impl<'a, C: Codec> CodeQuery<'a, C> {
    pub(crate) fn new(codec: &'a C, query: &[f32], codes: &'a [u8]) -> Self {
        CodeQuery {
            codec,
            prepared: codec.prepare(query),
            codes,
            size: codec.code_size(),
        }
    }

    #[inline]
    pub(crate) fn score(&self, slot: u32) -> f32 {
        let start = slot as usize * self.size;
        self.codec
            .score(&self.prepared, &self.codes[start..start + self.size])
    }
}

impl<C: Codec> vecdex_hnsw::QueryDistance for CodeQuery<'_, C> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        self.score(node)
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.size;
        if let Some(code) = self.codes.get(start..start + self.size) {
            prefetch_bytes(code);
        }
    }
}

/// Hint that `bytes` will be read soon: its first and last cache lines (codes are at most a
/// few lines long; the hardware prefetcher follows the rest).
#[inline]
fn prefetch_bytes(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = bytes.as_ptr().cast::<i8>();
        // SAFETY: prefetching is a hint that never faults; both addresses are inside `bytes`.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            _mm_prefetch::<_MM_HINT_T0>(first.add(bytes.len().saturating_sub(1)));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// A copy of `sample` (validated rows), normalised for cosine as stored vectors are.
fn normalized_sample(sample: &[f32], dim: usize, metric: Metric) -> Result<Vec<f32>> {
    let mut rows = try_copy(sample, "the training sample")?;
    if metric == Metric::Cosine {
        rows.chunks_exact_mut(dim).for_each(normalize);
    }
    Ok(rows)
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
        RescoreParams {
            oversample: None,
            rescore: true,
        }
    }
}

impl RescoreParams {
    /// Candidates to take from the codes for `k` results.
    pub(crate) fn candidates(&self, k: usize, config: &Compression) -> Result<usize> {
        let oversample = self.oversample.unwrap_or(config.oversample());
        if !(1..=MAX_OVERSAMPLE).contains(&oversample) {
            return Err(Error::invalid(format!(
                "oversample must be between 1 and {MAX_OVERSAMPLE}, got {oversample}"
            )));
        }
        Ok(k.saturating_mul(oversample))
    }
}
