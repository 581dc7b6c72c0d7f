//! Fixed-dimensional encodings of point clouds (MUVERA, Dhulipala et al. 2024, §2.1; the
//! reference is `fixed_dimensional_encoding.cc` in google/graph-mining).
//!
//! Layout of an encoding before the final projection: repetition-major, then partition, then
//! the block of projected values: value `j` of partition `p` in repetition `r` is at
//! `(r · 2^k + p) · block + j`.
//!
//! Random draws (pinned RNG version 1, `rng.rs`):
//! - repetition `r` uses a stream seeded with `seed + r` (wrapping): first the SimHash matrix,
//!   `dimension × k` Gaussians row-major; then, for the AMS projection, per input coordinate in
//!   order, its bucket (`below(projection_dimension)`) and its sign;
//! - the final projection uses a stream seeded with `seed`: per encoding coordinate in order,
//!   its bucket (`below(final_projection_dimension)`) and its sign.

use rayon::prelude::*;

use crate::config::{try_filled, try_refill, FdeConfig, FdeError, ProjectionType};
use crate::projection::SparseSignProjection;
use crate::rng::FdeRng;
use crate::simhash::{partition_of_pattern, pattern_of_partition, SimHash};

/// Query or document side of the asymmetric encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Projected tokens are summed per partition.
    Query,
    /// Projected tokens are averaged per partition; empty partitions may be filled.
    Document,
}

#[derive(Debug, Clone)]
struct Repetition {
    simhash: SimHash,
    /// `None` for the identity projection.
    projection: Option<SparseSignProjection>,
}

/// Encodes point clouds (sets of `dimension`-dimensional tokens) into single vectors whose inner
/// product approximates Chamfer similarity: ⟨FDE_q(Q), FDE_d(P)⟩ ≈ R · Σ_{q∈Q} max_{p∈P} ⟨q, p⟩
/// for R repetitions (exact when P has one token, the projection is the identity and empty
/// partitions are filled).
#[derive(Debug, Clone)]
pub struct FdeEncoder {
    config: FdeConfig,
    repetitions: Vec<Repetition>,
    final_projection: Option<SparseSignProjection>,
}

/// Reusable buffers of one encoding call.
#[derive(Debug, Default)]
pub struct Scratch {
    raw: Vec<f32>,
    projected: Vec<f32>,
    patterns: Vec<u32>,
    counts: Vec<u32>,
}

impl FdeEncoder {
    pub fn new(config: FdeConfig) -> Result<Self, FdeError> {
        config.validate()?;
        let mut repetitions = Vec::new();
        repetitions
            .try_reserve_exact(config.num_repetitions)
            .map_err(|_| FdeError::out_of_memory("repetitions", config.num_repetitions))?;
        for r in 0..config.num_repetitions {
            let mut rng = FdeRng::new(config.seed.wrapping_add(r as u64));
            let simhash = SimHash::new(config.dimension, config.num_simhash_projections, || {
                rng.gaussian() as f32
            })?;
            let projection = match config.projection_type {
                ProjectionType::Identity => None,
                ProjectionType::AmsSketch => Some(SparseSignProjection::new(
                    config.dimension,
                    config.projection_dimension,
                    &mut rng,
                )?),
            };
            repetitions.push(Repetition {
                simhash,
                projection,
            });
        }
        let raw = config.raw_dimension().unwrap_or(usize::MAX);
        let final_projection = config
            .final_projection_dimension
            .map(|out| SparseSignProjection::new(raw, out, &mut FdeRng::new(config.seed)))
            .transpose()?;
        Ok(FdeEncoder {
            config,
            repetitions,
            final_projection,
        })
    }

    pub fn config(&self) -> &FdeConfig {
        &self.config
    }

    pub fn dimension(&self) -> usize {
        self.config.dimension
    }

    /// Length of every encoding.
    pub fn output_dimension(&self) -> usize {
        self.config.output_dimension()
    }

    /// Checks a token matrix (row-major, `tokens × dimension`) and returns its token count.
    fn check_cloud(&self, tokens: &[f32]) -> Result<usize, FdeError> {
        let dim = self.config.dimension;
        if tokens.is_empty() {
            return Err(FdeError::EmptyPointCloud(
                "a point cloud needs at least one token".into(),
            ));
        }
        if !tokens.len().is_multiple_of(dim) {
            return Err(FdeError::InvalidInput(format!(
                "a point cloud of {dim}-dimensional tokens needs a multiple of {dim} values, got {}",
                tokens.len()
            )));
        }
        Ok(tokens.len() / dim)
    }

    /// Encodes one point cloud.
    pub fn encode(&self, tokens: &[f32], side: Side) -> Result<Vec<f32>, FdeError> {
        self.check_cloud(tokens)?;
        let mut out = try_filled(self.output_dimension(), 0f32, "an encoding")?;
        self.encode_into(tokens, side, &mut out, &mut Scratch::default())?;
        Ok(out)
    }

    /// Encodes many point clouds given as CSR: cloud `i` is tokens `offsets[i]..offsets[i+1]`
    /// of `tokens` (row-major, `offsets[last] × dimension` values). Returns the encodings
    /// row-major, `clouds × output_dimension`. Runs in parallel on the current Rayon pool;
    /// `should_stop` is polled between clouds (`Ok(None)` when it fired). Every buffer is
    /// sized by the input (`clouds × output_dimension`, and per thread the scratch of the
    /// largest cloud): one that cannot be allocated is [`FdeError::OutOfMemory`], not an abort.
    pub fn encode_batch(
        &self,
        tokens: &[f32],
        offsets: &[u32],
        side: Side,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<Vec<f32>>, FdeError> {
        check_offsets(tokens.len(), offsets, self.config.dimension)?;
        let clouds = offsets.len() - 1;
        let width = self.output_dimension();
        let total = clouds
            .checked_mul(width)
            .ok_or_else(|| FdeError::out_of_memory("the encodings", usize::MAX))?;
        let mut out = try_filled(total, 0f32, "the encodings")?;
        let dim = self.config.dimension;
        let stopped = std::sync::atomic::AtomicBool::new(false);
        // The first failure of any worker; the others stop at their next cloud.
        let failure = std::sync::Mutex::new(None::<FdeError>);
        out.par_chunks_mut(width.max(1)).enumerate().for_each_init(
            Scratch::default,
            |scratch, (i, row)| {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                if should_stop() {
                    stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                let cloud = &tokens[offsets[i] as usize * dim..offsets[i + 1] as usize * dim];
                if let Err(error) = self.encode_into(cloud, side, row, scratch) {
                    stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut first) = failure.lock() {
                        first.get_or_insert(error);
                    }
                }
            },
        );
        let failure = failure
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(error) = failure {
            return Err(error);
        }
        Ok((!stopped.into_inner()).then_some(out))
    }

    /// Encodes a checked, non-empty cloud into `out` (length `output_dimension`, any contents).
    /// Fails only when the scratch (the raw encoding, the cloud's projected tokens) cannot grow.
    pub fn encode_into(
        &self,
        tokens: &[f32],
        side: Side,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) -> Result<(), FdeError> {
        let config = &self.config;
        let raw_len = config.raw_dimension().unwrap_or(0);
        let dim = config.dimension;
        let block = config.block_dimension();
        let partitions = config.num_partitions();
        let n = tokens.len() / dim;
        // Tokens × block values: sized by the input, so reserved fallibly before any work.
        let projected_len = n
            .checked_mul(block)
            .ok_or_else(|| FdeError::out_of_memory("projected tokens", usize::MAX))?;
        try_refill(
            &mut scratch.projected,
            projected_len,
            0.0,
            "projected tokens",
        )?;
        try_refill(&mut scratch.counts, partitions, 0, "partition counts")?;
        scratch.patterns.clear();
        scratch
            .patterns
            .try_reserve(n)
            .map_err(|_| FdeError::out_of_memory("sign patterns", n))?;
        let raw: &mut [f32] = if self.final_projection.is_some() {
            try_refill(&mut scratch.raw, raw_len, 0.0, "the raw encoding")?;
            &mut scratch.raw
        } else {
            out.fill(0.0);
            out
        };
        for (r, rep) in self.repetitions.iter().enumerate() {
            let fde = &mut raw[r * partitions * block..(r + 1) * partitions * block];
            // Sized above: these only reset, never grow.
            scratch.patterns.clear();
            scratch.projected.fill(0.0);
            scratch.counts.fill(0);
            for (t, token) in tokens.chunks_exact(dim).enumerate() {
                let pattern = rep.simhash.sign_pattern(token);
                scratch.patterns.push(pattern);
                let projected = &mut scratch.projected[t * block..(t + 1) * block];
                match &rep.projection {
                    Some(p) => p.add_into(token, projected),
                    None => projected.copy_from_slice(token),
                }
                let partition = partition_of_pattern(pattern) as usize;
                scratch.counts[partition] += 1;
                for (acc, v) in fde[partition * block..(partition + 1) * block]
                    .iter_mut()
                    .zip(projected.iter())
                {
                    *acc += v;
                }
            }
            if side == Side::Query {
                continue;
            }
            for (partition, &count) in scratch.counts.iter().enumerate() {
                let cell = &mut fde[partition * block..(partition + 1) * block];
                if count > 0 {
                    if count > 1 {
                        let c = count as f32;
                        cell.iter_mut().for_each(|v| *v /= c);
                    }
                } else if config.fill_empty_partitions && rep.simhash.bits() > 0 {
                    let target = pattern_of_partition(partition as u32);
                    let nearest = scratch
                        .patterns
                        .iter()
                        .enumerate()
                        .min_by_key(|&(t, &p)| ((p ^ target).count_ones(), t))
                        .map_or(0, |(t, _)| t);
                    cell.copy_from_slice(
                        &scratch.projected[nearest * block..(nearest + 1) * block],
                    );
                }
            }
        }
        if let Some(projection) = &self.final_projection {
            out.fill(0.0);
            projection.add_into(&scratch.raw, out);
        }
        Ok(())
    }
}

/// Checks CSR offsets: at least one entry, starting at 0, non-decreasing, each cloud non-empty,
/// the last equal to the token count.
pub fn check_offsets(values: usize, offsets: &[u32], dim: usize) -> Result<(), FdeError> {
    let bad = |m: String| Err(FdeError::InvalidInput(m));
    if !values.is_multiple_of(dim) {
        return bad(format!(
            "the token array must hold a multiple of {dim} values, got {values}"
        ));
    }
    let tokens = values / dim;
    let Some((&first, _)) = offsets.split_first() else {
        return bad("offsets need at least one entry (0)".into());
    };
    if first != 0 {
        return bad(format!("offsets must start at 0, got {first}"));
    }
    for (i, pair) in offsets.windows(2).enumerate() {
        if pair[1] < pair[0] {
            return bad(format!(
                "offsets must not decrease: offsets[{}] = {} < offsets[{i}] = {}",
                i + 1,
                pair[1],
                pair[0]
            ));
        }
        if pair[1] == pair[0] {
            return Err(FdeError::EmptyPointCloud(format!(
                "point cloud {i} is empty: a point cloud needs at least one token"
            )));
        }
    }
    let last = offsets[offsets.len() - 1] as usize;
    if last != tokens {
        return bad(format!(
            "the last offset ({last}) must equal the number of tokens ({tokens})"
        ));
    }
    Ok(())
}
