//! Compression in an index file: the trained model (the `CODEC_MODEL` section) and the codes
//! of the stored vectors (the `CODES` section), written and checked on load.

use vecdex_distance::Metric;
use vecdex_quant::{
    AnyCodec, Bf16Codec, BinaryCodec, ExtendedRabitqCodec, F16Codec, LeanVec, Pca, PlainCodec,
    PqCodec, QuantError, RabitqCodec, Sq4Codec, Sq8Codec,
};

use super::encoder::{Encoder, Reducer};
use super::storage::Codes;
use super::{Compression, Quantization, Reduction};
use crate::error::{Error, Result};

impl Codes {
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
            Reducer::LeanVec(lean) => lean.model_bytes(),
            _ => Vec::new(),
        };
        let mut out = (reducer.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&reducer);
        out.extend_from_slice(&encoder.codec.model_bytes());
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
            // A LeanVec model starts with its tag, which no PCA model can (see MODEL_TAG).
            Reduction::Pca(out_dim) if reducer_bytes.starts_with(&vecdex_quant::leanvec::MODEL_TAG) => {
                Reducer::LeanVec(
                    LeanVec::from_model_bytes(reducer_bytes, self.dim, out_dim).map_err(bad)?,
                )
            }
            Reduction::Pca(out_dim) => Reducer::Pca(
                Pca::from_model_bytes(
                    reducer_bytes,
                    self.dim,
                    Reducer::pca_config(out_dim, self.metric),
                )
                .map_err(bad)?,
            ),
            _ if !reducer_bytes.is_empty() => {
                return Err(corrupt("codec model: a reduction model without PCA"))
            }
            Reduction::Prefix(dims) => Reducer::prefix(dims, self.metric),
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
            Quantization::None => no_model(AnyCodec::Plain(PlainCodec::new(dim, metric)))?,
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
            Quantization::Rabitq { bits: 1 } => AnyCodec::Rabitq(
                RabitqCodec::from_model_bytes(codec_bytes, dim, metric).map_err(bad)?,
            ),
            Quantization::Rabitq { bits } => AnyCodec::ExtendedRabitq(
                ExtendedRabitqCodec::from_model_bytes(codec_bytes, dim, metric, bits)
                    .map_err(bad)?,
            ),
        };
        Ok(Encoder {
            reducer,
            codec,
            searched_dim,
        })
    }
}
