//! The codes of an index, one per slot, in 64-byte aligned storage: growth, encoding (in
//! parallel for large batches), moves, and the figures reported about them.

use rayon::prelude::*;
use vecdex_distance::Metric;

use super::encoder::Encoder;
use super::{Compression, Reduction};
use crate::error::{Error, Result};
use crate::threads;
use crate::validate::out_of_memory;

/// The codes of an index, one per slot, in 64-byte aligned storage, and the model that makes
/// them (absent until trained).
#[derive(Debug, Clone)]
pub(crate) struct Codes {
    pub(super) config: Compression,
    pub(super) dim: usize,
    pub(super) metric: Metric,
    pub(super) encoder: Option<Encoder>,
    /// `capacity × code_size` bytes (zero until trained).
    pub(super) blocks: Vec<Block>,
    pub(super) training_seconds: f64,
}

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Block([u8; 64]);

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
            codes.encoder = Some(codes.build_encoder(&[], None)?);
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
                self.config.training_size(self.dim)
            ))
        })
    }

    /// Whether an index that holds `held` vectors should now train by itself.
    pub(crate) fn wants_training(&self, held: usize) -> bool {
        self.is_enabled() && self.encoder.is_none() && held >= self.config.training_size(self.dim)
    }

    /// Dimensions of the searched (reduced) vectors.
    pub(crate) fn searched_dim(&self) -> usize {
        match self.config.reduction {
            Reduction::None => self.dim,
            Reduction::Prefix(n) | Reduction::Pca(n) => n,
        }
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

    pub(super) fn grow_bytes(&mut self, bytes: usize) -> Result<()> {
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

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
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
    pub(super) fn encode_slots_in(
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

    /// The figures of an index holding `slots` codes and `vector_bytes` of full vectors, whose
    /// allocated memory is `memory`.
    pub(crate) fn figures(
        &self,
        slots: usize,
        vector_bytes: usize,
        memory: crate::MemoryParts,
    ) -> CompressionStats {
        CompressionStats {
            quantization: self.config.quantization.name(),
            trained: !self.is_enabled() || self.is_trained(),
            searched_dimensions: self.searched_dim(),
            code_size: self.encoder.as_ref().map_or(0, Encoder::code_size),
            code_bytes: self.encoder.as_ref().map_or(0, |e| e.code_size() * slots),
            vector_bytes,
            full_vectors: "memory",
            training_seconds: self.training_seconds,
            memory,
        }
    }
}

/// Figures about an index's compressed form.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionStats {
    /// "none", "f16", "bf16", "sq8", "sq4", "binary", "pq" or "rabitq".
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
    /// Where the full vectors are: "memory", or "disk" (a row file, read only to rescore).
    pub full_vectors: &'static str,
    /// Time the last training took.
    pub training_seconds: f64,
    /// The whole index's allocated memory by part, read with the figures above: `code_bytes`
    /// and `vector_bytes` are what the held vectors need, these are what is allocated for them
    /// (room for growth and row padding included) beside the graph and the ids.
    pub memory: crate::MemoryParts,
}

/// Where parallel encoding runs: the compute pool (adds, under the index's write lock), or the
/// background pool (staging a new model's codes while searches go on).
#[derive(Clone, Copy)]
pub(super) enum Pool {
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
