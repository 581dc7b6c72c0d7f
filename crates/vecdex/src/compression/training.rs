//! Training a model beside searches: learn it from a sample under shared access to the index
//! (explicitly, or by itself once it holds enough vectors), stage the codes of the stored
//! vectors on the background pool, then install it under exclusive access.

use std::time::Instant;

use rayon::prelude::*;
use vecdex_distance::Metric;
use vecdex_quant::{
    AnyCodec, Bf16Codec, BinaryCodec, ExtendedRabitqCodec, F16Codec, LeanVec, Pca, PlainCodec,
    PqCodec, RabitqCodec, Sq4Codec, Sq8Codec,
};

use super::encoder::{Encoder, Reducer};
use super::storage::{Codes, Pool};
use super::{Quantization, Reduction, AUTO_TRAINING_SAMPLE};
use crate::error::{Error, Result};
use crate::filter::IndexVersion;

/// The seed of every RaBitQ rotation. Any rotation drawn uniformly serves; a fixed one makes a
/// training deterministic, and the rotation itself is saved with the model.
const RABITQ_ROTATION_SEED: u64 = 0x5241_4249_5451;
use crate::threads;
use crate::validate::{check_matrix, normalize, out_of_memory, try_copy, try_filled};

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

impl Codes {
    /// The search form of these settings, its models learnt from `sample` (which may be empty
    /// when nothing is learnt) and, for a PCA reduction, from a sample of `queries` when one
    /// is given (LeanVec-OOD instead of PCA).
    pub(super) fn build_encoder(&self, sample: &[f32], queries: Option<&[f32]>) -> Result<Encoder> {
        let quant = Error::from;
        let searched_dim = self.searched_dim();
        let reducer = match (self.config.reduction, queries) {
            (Reduction::None, _) => Reducer::None,
            (Reduction::Prefix(dims), _) => Reducer::prefix(dims, self.metric),
            (Reduction::Pca(out_dim), Some(queries)) => Reducer::LeanVec(
                LeanVec::train(sample, queries, self.dim, out_dim)
                    .map_err(quant)?
                    .0,
            ),
            (Reduction::Pca(out_dim), None) => Reducer::Pca(
                Pca::train(sample, self.dim, Reducer::pca_config(out_dim, self.metric))
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
            Quantization::None => AnyCodec::Plain(PlainCodec::new(dim, metric)),
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
            Quantization::Rabitq { bits: 1 } => AnyCodec::Rabitq(
                RabitqCodec::train(sample, dim, metric, RABITQ_ROTATION_SEED).map_err(quant)?,
            ),
            Quantization::Rabitq { bits } => AnyCodec::ExtendedRabitq(
                ExtendedRabitqCodec::train(sample, dim, metric, RABITQ_ROTATION_SEED, bits)
                    .map_err(quant)?,
            ),
        };
        Ok(Encoder {
            reducer,
            codec,
            searched_dim,
        })
    }

    /// The model learnt from `sample` (and `queries`, see [`Self::build_encoder`]), with its
    /// training time; `self` is untouched.
    fn fit(&self, sample: &[f32], queries: Option<&[f32]>) -> Result<TrainedEncoder> {
        let started = Instant::now();
        // Off the compute pool: searches running meanwhile must not queue behind k-means.
        let encoder = threads::run_background(|| self.build_encoder(sample, queries))?;
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
    ///
    /// `queries`, a sample of the queries the index will be searched with (validated and
    /// normalised the same way), makes a `pcaDimensions` reduction learn LeanVec-OOD's pair of
    /// projections instead of PCA: for queries from another distribution than the stored
    /// vectors. Inner products only (dot and cosine), and only with `pcaDimensions`.
    pub(crate) fn fit_sample(
        &self,
        sample: &[f32],
        queries: Option<&[f32]>,
    ) -> Result<TrainedEncoder> {
        if !self.is_enabled() {
            return Err(Error::invalid(
                "train: this index has no quantization or reduction to train",
            ));
        }
        let cosine = self.metric == Metric::Cosine;
        check_matrix(sample, self.dim, "training sample", cosine)?;
        let queries = match queries {
            None => None,
            Some(_) if !matches!(self.config.reduction, Reduction::Pca(_)) => {
                return Err(Error::invalid(
                    "train: queries shape a learnt reduction (LeanVec-OOD): set pcaDimensions",
                ))
            }
            Some(_) if self.metric == Metric::L2sq => {
                return Err(Error::invalid(
                    "train: queries (LeanVec-OOD) preserve inner products: use metric dot or \
                     cosine (an l2sq ranking also needs each vector's norm)",
                ))
            }
            Some(queries) => {
                check_matrix(queries, self.dim, "training queries", cosine)?;
                if queries.len() / self.dim < 2 {
                    return Err(Error::invalid(
                        "train: queries must hold at least 2 vectors",
                    ));
                }
                Some(normalized_sample(queries, self.dim, self.metric)?)
            }
        };
        self.fit(
            &normalized_sample(sample, self.dim, self.metric)?,
            queries.as_deref(),
        )
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
        self.fit(&sample, None)
    }
}

/// A copy of `sample` (validated rows), normalised for cosine as stored vectors are.
fn normalized_sample(sample: &[f32], dim: usize, metric: Metric) -> Result<Vec<f32>> {
    let mut rows = try_copy(sample, "the training sample")?;
    if metric == Metric::Cosine {
        rows.chunks_exact_mut(dim).for_each(normalize);
    }
    Ok(rows)
}
