//! A [`MultiVectorIndex`] as a file (kind 3), and back.
//!
//! The header's dimensions are the token dimension, its metric the token similarity, its count
//! the live documents. Configuration bytes (little-endian):
//! ```text
//! FDE: u64 dimension, u64 numRepetitions, u32 numSimhashProjections, u64 seed,
//!      u8 projection (0 identity, 1 AMS sketch), u64 projectionDimension,
//!      u8 fillEmptyPartitions, u64 finalProjectionDimension (0 = none),
//!      u32 RNG version (vecdex_fde::RNG_VERSION: the random draws depend on it)
//! u64 candidates, u8 ball carving on, f32 τ, u8 strategy (0 rerank, 1 walk, 2 tokens),
//! u8 FDE metric (persist::metric_code)
//! ```
//! Sections:
//! ```text
//! FDE_INDEX      a whole HNSW index file (kind 2) over the document FDEs, keyed by document key
//! TOKENS         tokens × dimension f32, row-major, every document's tokens in document order
//! TOKEN_STARTS   (documents + 1) u32: document d owns tokens starts[d] .. starts[d + 1]
//! KEYS           documents × u64: each document's key
//! SLOT_STATES    documents × u8: 1 live, 0 removed (its tokens await compaction)
//! ```

use std::collections::HashMap;

use vecdex_fde::{FdeConfig, FdeEncoder, ProjectionType, TokenStore, RNG_VERSION};
use vecdex_store::{FileHeader, IndexKind};

use super::{fde_error, MultiVectorConfig, MultiVectorIndex, Strategy};
use crate::error::{Error, Result};
use crate::hnsw_index::HnswIndex;
use crate::persist::{
    as_le_bytes, corrupt, metric_code, metric_from_code, section, ConfigReader, ConfigWriter,
    SectionSource,
};
use crate::validate::out_of_memory;

crate::persist::persist_methods!(MultiVectorIndex, IndexKind::MultiVector);

/// The settings of a multi-vector file (all but the FDE graph's, which its nested file holds),
/// decoded; the FDE random generator must be the one this build draws with.
pub(crate) struct StoredSettings {
    pub fde: FdeConfig,
    pub metric: vecdex_distance::Metric,
    pub candidates: usize,
    pub ball_carving: Option<f32>,
    pub strategy: Strategy,
    pub fde_metric: vecdex_distance::Metric,
}

impl StoredSettings {
    pub fn read(header: &FileHeader) -> Result<Self> {
        let metric = metric_from_code(header.metric)?;
        let mut input = ConfigReader::new(&header.config);
        let fde = FdeConfig {
            dimension: input.usize()?,
            num_repetitions: input.usize()?,
            num_simhash_projections: input.u32()?,
            seed: input.u64()?,
            projection_type: match input.u8()? {
                0 => ProjectionType::Identity,
                1 => ProjectionType::AmsSketch,
                t => return Err(corrupt(format!("projection type {t}"))),
            },
            projection_dimension: input.usize()?,
            fill_empty_partitions: match input.u8()? {
                0 => false,
                1 => true,
                b => return Err(corrupt(format!("fillEmptyPartitions flag {b}"))),
            },
            final_projection_dimension: match input.usize()? {
                0 => None,
                n => Some(n),
            },
        };
        let rng_version = input.u32()?;
        let candidates = input.usize()?;
        let carving_on = input.u8()?;
        let tau = f32::from_bits(input.u32()?);
        let strategy = match input.u8()? {
            0 => Strategy::Rerank,
            1 => Strategy::Walk,
            2 => Strategy::Tokens,
            s => return Err(corrupt(format!("strategy {s}"))),
        };
        let fde_metric = metric_from_code(input.u8()?)?;
        input.finish()?;
        if rng_version != RNG_VERSION {
            return Err(Error::UnsupportedFormat(format!(
            "FDE random generator version {rng_version}; this build draws with version {RNG_VERSION}"
        )));
        }
        if fde.dimension != header.dimensions as usize {
            return Err(corrupt("the FDE dimension differs from the header's"));
        }
        let ball_carving = match carving_on {
            0 if tau.to_bits() == 0 => None,
            1 => Some(tau),
            _ => return Err(corrupt("ball carving settings")),
        };
        Ok(StoredSettings {
            fde,
            metric,
            candidates,
            ball_carving,
            strategy,
            fde_metric,
        })
    }
}

impl MultiVectorIndex {
    fn write_file(
        &self,
        out: impl FnOnce(&FileHeader, &[(u32, &[u8])]) -> Result<()>,
    ) -> Result<()> {
        let fde = &self.config.fde;
        let mut config = ConfigWriter::default();
        config
            .u64(fde.dimension as u64)
            .u64(fde.num_repetitions as u64)
            .u32(fde.num_simhash_projections)
            .u64(fde.seed)
            .u8(match fde.projection_type {
                ProjectionType::Identity => 0,
                ProjectionType::AmsSketch => 1,
            })
            .u64(fde.projection_dimension as u64)
            .u8(u8::from(fde.fill_empty_partitions))
            .u64(fde.final_projection_dimension.unwrap_or(0) as u64)
            .u32(RNG_VERSION)
            .u64(self.config.candidates as u64)
            .u8(u8::from(self.config.ball_carving.is_some()))
            .u32(self.config.ball_carving.unwrap_or(0.0).to_bits())
            .u8(match self.config.strategy {
                Strategy::Rerank => 0,
                Strategy::Walk => 1,
                Strategy::Tokens => 2,
            })
            .u8(metric_code(self.config.fde_metric));
        let header = FileHeader {
            kind: IndexKind::MultiVector,
            metric: metric_code(self.config.metric),
            dimensions: fde.dimension as u32,
            count: self.len() as u64,
            config: config.0,
        };
        let fdes = self.fdes.to_bytes()?;
        let (values, starts) = self.tokens.parts();
        let keys: Vec<u64> = self.document_keys.iter().map(|k| k.unwrap_or(0)).collect();
        let live: Vec<u8> = self
            .document_keys
            .iter()
            .map(|k| u8::from(k.is_some()))
            .collect();
        let (values, starts, keys) = (as_le_bytes(values), as_le_bytes(starts), as_le_bytes(&keys));
        out(
            &header,
            &[
                (section::FDE_INDEX, &fdes),
                (section::TOKENS, &values),
                (section::TOKEN_STARTS, &starts),
                (section::KEYS, &keys),
                (section::SLOT_STATES, &live),
            ],
        )
    }

    fn from_source(source: &mut impl SectionSource) -> Result<Self> {
        let header = source.header().clone();
        let stored = StoredSettings::read(&header)?;
        let fde = stored.fde;
        fde.validate()
            .map_err(|e| corrupt(fde_error(e).to_string()))?;
        // The FDE graph (whose size the file bounds) must match the encoding before the encoder
        // draws its random matrices, so a crafted configuration cannot make it allocate much.
        let nested = source.required_vec(section::FDE_INDEX, "FDE index")?;
        let fdes = HnswIndex::from_bytes(&nested).map_err(|e| match e {
            Error::CorruptFile(m) => corrupt(format!("FDE index: {m}")),
            other => other,
        })?;
        if fdes.dim() != fde.output_dimension() || fdes.metric() != vecdex_distance::Metric::Dot {
            return Err(corrupt("the FDE index does not match the encoding"));
        }
        let encoder = FdeEncoder::new(fde).map_err(|e| corrupt(fde_error(e).to_string()))?;
        let config = MultiVectorConfig {
            fde,
            metric: stored.metric,
            graph: fdes.config(),
            compression: *fdes.compression(),
            candidates: stored.candidates,
            ball_carving: stored.ball_carving,
            strategy: stored.strategy,
            fde_metric: stored.fde_metric,
        };
        // Checks the settings as a new index would.
        MultiVectorIndex::new(config.clone()).map_err(|e| corrupt(e.to_string()))?;

        let live = source.required_vec(section::SLOT_STATES, "document states")?;
        let documents_count = live.len();
        if let Some(s) = live.iter().find(|&&s| s > 1) {
            return Err(corrupt(format!("document state {s}")));
        }
        let keys: Vec<u64> =
            source.required_values(section::KEYS, documents_count, "document keys")?;
        let starts: Vec<u32> =
            source.required_values(section::TOKEN_STARTS, documents_count + 1, "token starts")?;
        let token_values = source
            .section_len(section::TOKENS)
            .ok_or_else(|| corrupt("the tokens section is missing"))?;
        if !token_values.is_multiple_of(4) {
            return Err(corrupt("tokens: not whole f32 values"));
        }
        let values: Vec<f32> =
            source.required_values(section::TOKENS, token_values / 4, "tokens")?;
        let tokens = TokenStore::from_parts(fde.dimension, values, starts)
            .map_err(|m| corrupt(format!("tokens: {m}")))?;

        let mut documents = HashMap::new();
        documents
            .try_reserve(documents_count)
            .map_err(|_| out_of_memory("document map", documents_count))?;
        let mut document_keys = Vec::new();
        document_keys
            .try_reserve_exact(documents_count)
            .map_err(|_| out_of_memory("document keys", documents_count))?;
        let mut live_tokens = 0;
        for (number, (&key, &state)) in keys.iter().zip(&live).enumerate() {
            if state == 1 {
                if documents.insert(key, number as u32).is_some() {
                    return Err(corrupt(format!("key {key} is live twice")));
                }
                if key == crate::validate::NO_KEY {
                    return Err(corrupt(format!("key {key} is reserved")));
                }
                if !fdes.contains(key) {
                    return Err(corrupt(format!("document {key} has no FDE")));
                }
                live_tokens += tokens.token_range(number as u32).len();
                document_keys.push(Some(key));
            } else {
                // A removed slot is saved with key 0: any other value is not a file vecdex
                // wrote (and would not survive a save, so the file would not round-trip).
                if key != 0 {
                    return Err(corrupt(format!(
                        "removed document slot {number} holds key {key}"
                    )));
                }
                document_keys.push(None);
            }
        }
        if documents.len() != fdes.len() || documents.len() as u64 != header.count {
            return Err(corrupt(format!(
                "{} live documents, {} FDEs, {} in the header",
                documents.len(),
                fdes.len(),
                header.count
            )));
        }
        Ok(MultiVectorIndex {
            config,
            encoder,
            fdes,
            tokens,
            documents,
            document_keys,
            live_tokens,
            store_generation: 0,
            token_index: std::sync::RwLock::new(None),
        })
    }
}
