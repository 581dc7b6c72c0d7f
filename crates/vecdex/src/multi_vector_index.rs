//! Multi-vector (late-interaction) retrieval: MUVERA (Dhulipala et al., NeurIPS 2024, arXiv
//! 2405.19504). Each document is a set of token vectors; its fixed-dimensional encoding (FDE)
//! goes into an HNSW index (optionally compressed) under the document's key, and its tokens into
//! a row-major [`TokenStore`]. A search ([`Strategy::Rerank`]) encodes the query's tokens, takes
//! the `candidates` best FDE matches (by angle, or by inner product with `fde_metric: Dot`), and
//! reranks them by exact Chamfer similarity `Σ_{q∈Q} max_{p∈P} ⟨q, p⟩` with the stored tokens;
//! [`Strategy::Walk`] instead walks the FDE graph scoring each visited document by exact Chamfer.
//! `search_exact` scores every document.
//!
//! Distances follow vecdex's convention (lower is closer): a hit's distance is `−Chamfer`.

pub(crate) mod persist;
mod token_index;

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use vecdex_distance::{simd_level, Metric};
use vecdex_fde::{check_offsets, FdeConfig, FdeEncoder, FdeError, PreparedQuery, Side, TokenStore};

use crate::cancel::StopFlag;
use crate::compression::{Compression, CompressionStats, TrainedEncoder};
use crate::error::{Error, Result};
use crate::filter::KeyFilter;
use crate::flat_index::SearchResults;
use crate::hnsw_index::{HnswConfig, HnswIndex, LinkMode, PendingBatch};
use crate::threads;
use crate::validate::{check_tokens, normalize, try_copy, MAX_SQUARED_NORM};

/// The encoding a multi-vector index uses unless told otherwise: one repetition, no SimHash bit,
/// identity projection: the token mean of a document and the token sum of a query, as many
/// values as a token. It was the best measured configuration on contextual token vectors
/// (all-MiniLM-L6-v2 tokens of 116,697 WordNet definitions, README "Multi-vector retrieval"):
/// more recall at every speed than the SimHash-partitioned encodings, including the paper's
/// 10,240-value trade-off (the [`FdeConfig::new`] defaults), at a fraction of their memory and
/// build time. Partitioned encodings are one option away (`numSimhashProjections`, …).
pub fn default_fde(dimension: usize) -> FdeConfig {
    FdeConfig::with_defaults(dimension, &MULTI_VECTOR_FDE)
}

/// The parameters of [`default_fde`]. `projection_dimension` applies when a user picks the AMS
/// sketch.
pub const MULTI_VECTOR_FDE: vecdex_fde::FdeDefaults = vecdex_fde::FdeDefaults {
    num_repetitions: 1,
    num_simhash_projections: 0,
    projection_type: vecdex_fde::ProjectionType::Identity,
    ..vecdex_fde::ENCODER_DEFAULTS
};

/// How the FDE graph compares encodings by default (see [`MultiVectorConfig::fde_metric`]).
pub const DEFAULT_FDE_METRIC: Metric = Metric::Cosine;

/// Default number of FDE candidates reranked by exact Chamfer per query.
pub const DEFAULT_CANDIDATES: usize = 100;
/// Largest `candidates` (as the largest efSearch).
pub const MAX_CANDIDATES: usize = 65_536;
/// Distinct document tokens retrieved per query token by the `tokens` strategy, by default.
pub const DEFAULT_TOKEN_NEIGHBOURS: usize = 16;
/// Largest `token_neighbours`.
pub const MAX_TOKEN_NEIGHBOURS: usize = 4096;

/// How a search finds its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// MUVERA: the `candidates` best documents by FDE inner product (a graph search with the
    /// query's FDE), reranked by exact Chamfer.
    Rerank,
    /// A walk of the FDE graph that scores every document it visits by exact Chamfer (keeping
    /// `candidates` of them): the FDE graph gives the neighbourhoods, the true similarity steers.
    Walk,
    /// Token retrieval (ColBERT's end-to-end retrieval with XTR's imputation, see
    /// `token_index.rs`): each query token's `token_neighbours` nearest distinct document tokens
    /// give every document an estimated Chamfer; the `candidates` best are reranked exactly.
    /// Needs no FDE; its index of distinct tokens is built by the first such search after
    /// documents are added.
    Tokens,
}

impl Strategy {
    /// The strategy of a search that names none: MUVERA's.
    pub const DEFAULT: Strategy = Strategy::Rerank;

    /// The strategy named as the `strategy` option spells it (see [`crate::options`]).
    pub fn from_name(name: &str) -> Result<Self> {
        match crate::options::choice("strategy", name, crate::options::STRATEGIES)? {
            "walk" => Ok(Strategy::Walk),
            "tokens" => Ok(Strategy::Tokens),
            _ => Ok(Strategy::Rerank),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Strategy::Rerank => "rerank",
            Strategy::Walk => "walk",
            Strategy::Tokens => "tokens",
        }
    }
}

impl Default for Strategy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Settings of a [`MultiVectorIndex`].
#[derive(Debug, Clone)]
pub struct MultiVectorConfig {
    /// The encoding; `fde.dimension` is the token dimension.
    pub fde: FdeConfig,
    /// Token similarity: `Dot` (tokens as given) or `Cosine` (tokens normalised on add and in
    /// queries, as ColBERT's are). Chamfer is the sum of per-token maxima of this similarity.
    pub metric: Metric,
    /// Graph settings of the FDE index (`m`, `ef_construction`, `ef_search`, `seed`); its
    /// dimension and metric (inner product) are set from the encoding.
    pub graph: HnswConfig,
    /// Compressed form of the FDEs in the graph walk (rescored with the full FDEs).
    pub compression: Compression,
    /// FDE candidates reranked per query unless a search gives its own.
    pub candidates: usize,
    /// Query ball carving threshold τ (paper §3): before the rerank, query tokens whose inner
    /// product with an earlier cluster's first token is ≥ τ join that cluster, and each cluster
    /// scores as the sum of its tokens. Fewer rows make the rerank faster; scores become
    /// approximate (never above the exact Chamfer). `None`: off.
    pub ball_carving: Option<f32>,
    /// Search strategy unless a search gives its own.
    pub strategy: Strategy,
    /// How the graph compares FDEs: `Cosine` (default) scales every document FDE to unit length
    /// first, so candidates rank by the angle between encodings; `Dot` keeps MUVERA's plain
    /// inner product. On WordNet glosses the angle found more of the exact Chamfer top-10 from
    /// the same number of candidates (README, multivector benchmark): the inner product favours
    /// documents whose encodings are long, not those whose tokens match.
    pub fde_metric: Metric,
}

impl MultiVectorConfig {
    pub fn new(fde: FdeConfig, metric: Metric) -> Self {
        MultiVectorConfig {
            fde,
            metric,
            graph: HnswConfig::new(fde.output_dimension().max(1), Metric::Dot),
            compression: Compression::default(),
            candidates: DEFAULT_CANDIDATES,
            ball_carving: None,
            strategy: Strategy::default(),
            fde_metric: DEFAULT_FDE_METRIC,
        }
    }
}

/// Figures about a [`MultiVectorIndex`].
#[derive(Debug, Clone, PartialEq)]
pub struct MultiVectorStats {
    pub documents: usize,
    /// Tokens of live documents.
    pub tokens: usize,
    /// Tokens of removed or replaced documents still held (dropped by compaction).
    pub dead_tokens: usize,
    pub fde_dimension: usize,
    /// Bytes of the token store.
    pub token_bytes: usize,
    /// Bytes of the FDE index (graph, FDEs, codes).
    pub fde_bytes: usize,
}

/// A batch of documents checked, normalised and encoded, ready for [`MultiVectorIndex::prepare`].
#[derive(Debug)]
pub struct EncodedDocuments {
    keys: Vec<u64>,
    tokens: Vec<f32>,
    offsets: Vec<u32>,
    fdes: Vec<f32>,
}

/// A batch between [`MultiVectorIndex::prepare`] and [`MultiVectorIndex::commit`].
#[derive(Debug)]
pub struct PendingDocuments {
    documents: EncodedDocuments,
    graph: PendingBatch,
}

pub struct MultiVectorIndex {
    config: MultiVectorConfig,
    encoder: FdeEncoder,
    fdes: HnswIndex,
    tokens: TokenStore,
    /// Key → document number in `tokens`.
    documents: HashMap<u64, u32>,
    /// Per document number: its key, or `None` once removed or replaced.
    document_keys: Vec<Option<u64>>,
    live_tokens: usize,
    /// Bumped when the token store is rewritten (document numbers change).
    store_generation: u64,
    /// The `tokens` strategy's index, built and caught up by the searches that use it.
    token_index: std::sync::RwLock<Option<token_index::TokenIndex>>,
}

fn fde_error(error: FdeError) -> Error {
    Error::from(error)
}

/// Encodes point clouds (CSR: cloud `i` is tokens `offsets[i]..offsets[i+1]` of the row-major
/// `tokens`) with `encoder`, on vecdex's pool: the [`FdeEncoder`] entry point of the bindings.
/// Tokens are checked by the token rule ([`check_tokens`]), so every encoding is finite; the
/// output (`clouds × output_dimension` values) is allocated fallibly.
pub fn encode_point_clouds(
    encoder: &FdeEncoder,
    tokens: &[f32],
    offsets: &[u32],
    side: Side,
    stop: &StopFlag,
) -> Result<Vec<f32>> {
    let dim = encoder.dimension();
    check_offsets(tokens.len(), offsets, dim)
        .map_err(|e| csr_error(e, tokens.len(), dim, "tokens"))?;
    check_tokens(tokens, dim, "tokens", false)?;
    threads::run(|| {
        encoder
            .encode_batch(tokens, offsets, side, &|| stop.is_stopped())
            .map_err(fde_error)
    })?
    .ok_or(Error::Aborted)
}

/// Exact Chamfer similarity `Σ_q max_d ⟨q, d⟩` of two token matrices (row-major, `dim` wide),
/// under the token rule of every multi-vector entry point, so it is always finite.
pub fn chamfer_similarity(query: &[f32], document: &[f32], dim: usize) -> Result<f64> {
    if dim == 0 || dim > crate::validate::MAX_DIMENSIONS {
        return Err(Error::invalid(format!(
            "dim must be from 1 to {}, got {dim}",
            crate::validate::MAX_DIMENSIONS
        )));
    }
    check_tokens(query, dim, "query", false)?;
    check_tokens(document, dim, "document", false)?;
    Ok(f64::from(vecdex_fde::chamfer(query, document, dim)))
}

/// CSR errors with the part named: a length that is not whole tokens is a dimension mismatch.
fn csr_error(error: FdeError, values: usize, dim: usize, what: &str) -> Error {
    match error {
        FdeError::InvalidInput(m) if !values.is_multiple_of(dim) => Error::DimensionMismatch {
            expected: dim,
            actual: values % dim,
            what: format!("{what}: {m}"),
        },
        other => match fde_error(other) {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{what}: {m}")),
            e => e,
        },
    }
}

impl MultiVectorIndex {
    pub fn new(config: MultiVectorConfig) -> Result<Self> {
        if !matches!(config.metric, Metric::Dot | Metric::Cosine) {
            return Err(Error::invalid(format!(
                "a multi-vector index scores tokens by inner product: use 'cosine' or 'dot', got '{}'",
                config.metric
            )));
        }
        if config.candidates == 0 || config.candidates > MAX_CANDIDATES {
            return Err(Error::invalid(format!(
                "candidates must be from 1 to {MAX_CANDIDATES}, got {}",
                config.candidates
            )));
        }
        check_ball_carving(config.ball_carving)?;
        if !matches!(config.fde_metric, Metric::Dot | Metric::Cosine) {
            return Err(Error::invalid(format!(
                "fdeMetric must be 'cosine' or 'dot', got '{}'",
                config.fde_metric
            )));
        }
        let encoder = FdeEncoder::new(config.fde).map_err(fde_error)?;
        let graph = HnswConfig {
            dim: encoder.output_dimension(),
            metric: Metric::Dot,
            ..config.graph
        };
        let fdes = HnswIndex::with_compression(graph, config.compression)?;
        let config = MultiVectorConfig { graph, ..config };
        Ok(MultiVectorIndex {
            tokens: TokenStore::new(config.fde.dimension),
            config,
            encoder,
            fdes,
            documents: HashMap::new(),
            document_keys: Vec::new(),
            live_tokens: 0,
            store_generation: 0,
            token_index: std::sync::RwLock::new(None),
        })
    }

    pub fn config(&self) -> &MultiVectorConfig {
        &self.config
    }

    pub fn encoder(&self) -> &FdeEncoder {
        &self.encoder
    }

    /// Token dimension.
    pub fn dim(&self) -> usize {
        self.config.fde.dimension
    }

    pub fn metric(&self) -> Metric {
        self.config.metric
    }

    /// Documents stored.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    pub fn contains(&self, key: u64) -> bool {
        self.documents.contains_key(&key)
    }

    pub fn keys(&self) -> Vec<u64> {
        self.document_keys.iter().flatten().copied().collect()
    }

    /// The stored tokens of `key` (row-major; normalised for cosine).
    pub fn get(&self, key: u64) -> Option<Vec<f32>> {
        self.documents.get(&key).map(|&d| self.tokens.document(d))
    }

    pub fn memory_bytes(&self) -> usize {
        self.fdes.memory_bytes()
            + self.tokens.memory_bytes()
            + self.documents.capacity() * 16
            + self.document_keys.capacity() * 16
            + self
                .token_index
                .read()
                .map_or(0, |t| t.as_ref().map_or(0, |t| t.memory_bytes()))
    }

    pub fn stats(&self) -> MultiVectorStats {
        MultiVectorStats {
            documents: self.len(),
            tokens: self.live_tokens,
            dead_tokens: self.tokens.tokens() - self.live_tokens,
            fde_dimension: self.encoder.output_dimension(),
            token_bytes: self.tokens.memory_bytes(),
            fde_bytes: self.fdes.memory_bytes(),
        }
    }

    pub fn is_trained(&self) -> bool {
        self.fdes.is_trained()
    }

    pub fn compression_stats(&self) -> CompressionStats {
        self.fdes.compression_stats()
    }

    /// Checks query or document tokens in CSR form and returns them normalised for cosine.
    fn checked_tokens(&self, tokens: &[f32], offsets: &[u32], what: &str) -> Result<Vec<f32>> {
        let dim = self.dim();
        check_offsets(tokens.len(), offsets, dim)
            .map_err(|e| csr_error(e, tokens.len(), dim, what))?;
        let cosine = self.metric() == Metric::Cosine;
        check_tokens(tokens, dim, what, cosine)?;
        let mut tokens = try_copy(tokens, what)?;
        if cosine {
            tokens.chunks_exact_mut(dim).for_each(normalize);
        }
        Ok(tokens)
    }

    /// Phase 1 of an add, needing only shared access: checks the batch (documents in CSR form:
    /// document `i` is tokens `offsets[i]..offsets[i+1]` of the row-major `tokens`), normalises
    /// and encodes it in parallel. Nothing changes.
    pub fn encode_documents(
        &self,
        keys: &[u64],
        tokens: &[f32],
        offsets: &[u32],
        stop: &StopFlag,
    ) -> Result<EncodedDocuments> {
        stop.check()?;
        if offsets.len() != keys.len() + 1 {
            return Err(Error::invalid(format!(
                "{} keys need {} offsets (one more than the documents), got {}",
                keys.len(),
                keys.len() + 1,
                offsets.len()
            )));
        }
        if keys.is_empty() {
            return Err(Error::invalid(
                "documents: empty batch, give at least one document",
            ));
        }
        crate::validate::check_new_keys(keys)?;
        let tokens = self.checked_tokens(tokens, offsets, "documents")?;
        if !self.tokens.fits(keys.len(), tokens.len() / self.dim()) {
            return Err(Error::invalid(
                "the index cannot hold more than 2^32 − 1 tokens",
            ));
        }
        let fdes = self.document_fdes(&tokens, offsets, stop)?;
        Ok(EncodedDocuments {
            keys: try_copy(keys, "document keys")?,
            tokens,
            offsets: try_copy(offsets, "document offsets")?,
            fdes,
        })
    }

    /// Document FDEs of checked tokens, in parallel; unit length under the cosine FDE metric (a
    /// zero encoding stays zero: it matches nothing, but is no error).
    fn document_fdes(&self, tokens: &[f32], offsets: &[u32], stop: &StopFlag) -> Result<Vec<f32>> {
        let width = self.encoder.output_dimension();
        let cosine = self.config.fde_metric == Metric::Cosine;
        threads::run(|| {
            let mut fdes = self
                .encoder
                .encode_batch(tokens, offsets, Side::Document, &|| stop.is_stopped())
                .map_err(fde_error)?
                .ok_or(Error::Aborted)?;
            if cosine {
                fdes.par_chunks_mut(width.max(1)).for_each(normalize);
            }
            Ok(fdes)
        })
    }

    /// Phase 2 (exclusive access, brief): slots and rows of the FDE graph, and room for the
    /// batch in the token store and the key tables, so that [`commit`](Self::commit) cannot
    /// fail (or abort) on memory.
    pub fn prepare(&mut self, documents: EncodedDocuments) -> Result<PendingDocuments> {
        let count = documents.keys.len();
        self.tokens
            .try_reserve(count, documents.tokens.len() / self.dim())
            .map_err(fde_error)?;
        self.document_keys
            .try_reserve(count)
            .map_err(|_| crate::validate::out_of_memory("document keys", count))?;
        self.documents
            .try_reserve(count)
            .map_err(|_| crate::validate::out_of_memory("document keys", count))?;
        let graph = self.fdes.prepare(&documents.keys, &documents.fdes)?;
        Ok(PendingDocuments { documents, graph })
    }

    /// Phase 3 (shared access, the long part): links the FDEs into the graph in parallel.
    pub fn link(&self, pending: &PendingDocuments, stop: &StopFlag) -> Result<()> {
        self.fdes.link(&pending.graph, stop, LinkMode::auto())
    }

    /// Phase 4 (exclusive access, brief): stores the tokens and makes the batch visible.
    pub fn commit(&mut self, pending: PendingDocuments) {
        let PendingDocuments { documents, graph } = pending;
        self.fdes.commit(graph);
        let dim = self.dim();
        for (i, key) in documents.keys.iter().enumerate() {
            let (start, end) = (
                documents.offsets[i] as usize,
                documents.offsets[i + 1] as usize,
            );
            let number = self.tokens.push(&documents.tokens[start * dim..end * dim]);
            self.document_keys.push(Some(*key));
            self.live_tokens += end - start;
            if let Some(old) = self.documents.insert(*key, number) {
                self.forget(old);
            }
        }
        self.compact_tokens_if_sparse();
    }

    /// Gives back what [`prepare`](Self::prepare) took after a failed or aborted link.
    pub fn abandon(&mut self, pending: PendingDocuments) {
        self.fdes.abandon(pending.graph);
    }

    /// Adds documents (see [`encode_documents`](Self::encode_documents) for the layout); a
    /// key already present has its document replaced. On error or abort nothing changes.
    pub fn add(
        &mut self,
        keys: &[u64],
        tokens: &[f32],
        offsets: &[u32],
        stop: &StopFlag,
    ) -> Result<()> {
        let encoded = self.encode_documents(keys, tokens, offsets, stop)?;
        if self.fdes.should_compact() {
            self.fdes.compact(stop)?;
        }
        let pending = self.prepare(encoded)?;
        match self.link(&pending, stop) {
            Ok(()) => {
                self.commit(pending);
                Ok(())
            }
            Err(error) => {
                self.abandon(pending);
                Err(error)
            }
        }
    }

    /// Whether the FDE graph has enough removed nodes to be worth compacting.
    pub fn should_compact(&self) -> bool {
        self.fdes.should_compact()
    }

    /// Relinks the FDE graph around removed documents (see [`HnswIndex::compact`]).
    pub fn compact(&mut self, stop: &StopFlag) -> Result<usize> {
        let relinked = self.relink_removed(stop)?;
        Ok(self.release_removed(relinked))
    }

    /// Phase 1 of [`compact`](Self::compact), with shared access (searches go on): relinks
    /// the FDE graph around removed documents.
    pub fn relink_removed(&self, stop: &StopFlag) -> Result<crate::RelinkedSlots> {
        self.fdes.relink_removed(stop)
    }

    /// Phase 2 of [`compact`](Self::compact), with exclusive access: the relinked slots are freed.
    pub fn release_removed(&mut self, relinked: crate::RelinkedSlots) -> usize {
        self.fdes.release_removed(relinked)
    }

    /// Trains the compressed FDE form on a sample of documents (CSR) and re-encodes the
    /// stored FDEs.
    pub fn train(&mut self, tokens: &[f32], offsets: &[u32]) -> Result<()> {
        let trained = self.fit(tokens, offsets, &StopFlag::never())?;
        self.install_training(trained)
    }

    /// The slow half of [`train`](Self::train), with shared access (searches go on): encodes
    /// the sample documents, learns the model from their FDEs and encodes the stored FDEs
    /// with it. `stop` is checked between the steps; the index is unchanged until
    /// [`install_training`](Self::install_training).
    pub fn fit(&self, tokens: &[f32], offsets: &[u32], stop: &StopFlag) -> Result<TrainedEncoder> {
        let tokens = self.checked_tokens(tokens, offsets, "training documents")?;
        let fdes = self.document_fdes(&tokens, offsets, stop)?;
        stop.check()?;
        let trained = self.fdes.fit(&fdes)?;
        stop.check()?;
        Ok(trained)
    }

    /// The quick half of [`train`](Self::train), with exclusive access: the model from
    /// [`fit`](Self::fit) is put in place.
    pub fn install_training(&mut self, trained: TrainedEncoder) -> Result<()> {
        self.fdes.install_training(trained)
    }

    /// Removes documents; returns how many were present.
    pub fn remove(&mut self, keys: &[u64]) -> Result<usize> {
        let removed = self.fdes.remove(keys)?;
        for key in keys {
            if let Some(document) = self.documents.remove(key) {
                self.forget(document);
            }
        }
        self.compact_tokens_if_sparse();
        Ok(removed)
    }

    fn forget(&mut self, document: u32) {
        self.document_keys[document as usize] = None;
        self.live_tokens -= self.tokens.token_range(document).len();
    }

    /// Rewrites the token store without dead documents once they hold half its tokens.
    fn compact_tokens_if_sparse(&mut self) {
        let dead = self.tokens.tokens() - self.live_tokens;
        if dead < 4096 || dead < self.live_tokens {
            return;
        }
        let keep: Vec<u32> = (0..self.document_keys.len() as u32)
            .filter(|&d| self.document_keys[d as usize].is_some())
            .collect();
        // Compaction only saves memory: when its copy cannot be allocated, keep the store as
        // it is (still correct) and try again after a later change.
        let Ok(compacted) = self.tokens.select(&keep) else {
            return;
        };
        self.tokens = compacted;
        self.store_generation += 1;
        self.document_keys = keep
            .iter()
            .map(|&d| self.document_keys[d as usize])
            .collect();
        for (number, key) in self.document_keys.iter().enumerate() {
            if let Some(key) = key {
                self.documents.insert(*key, number as u32);
            }
        }
    }

    /// Whether document number `d` is live and, with a filter, one of its keys.
    fn admits(&self, d: u32, allowed: Option<&HashSet<u64>>) -> bool {
        self.document_keys[d as usize].is_some_and(|key| allowed.is_none_or(|a| a.contains(&key)))
    }

    /// The token index, caught up with the documents (built on first use; see `token_index.rs`).
    fn ready_token_index(
        &self,
        stop: &StopFlag,
    ) -> Result<std::sync::RwLockReadGuard<'_, Option<token_index::TokenIndex>>> {
        let poisoned = || Error::Internal("the token index lock is poisoned".into());
        {
            let guard = self.token_index.read().map_err(|_| poisoned())?;
            if guard
                .as_ref()
                .is_some_and(|t| !t.is_stale(&self.tokens, self.store_generation))
            {
                return Ok(guard);
            }
        }
        {
            let mut guard = self.token_index.write().map_err(|_| poisoned())?;
            if guard.is_none() {
                let graph = &self.config.graph;
                *guard = Some(token_index::TokenIndex::new(
                    self.dim(),
                    graph.m,
                    graph.ef_construction,
                    graph.seed,
                )?);
            }
            if let Some(index) = guard.as_mut() {
                if index.is_stale(&self.tokens, self.store_generation) {
                    let updated =
                        threads::run(|| index.update(&self.tokens, self.store_generation, stop));
                    if let Err(error) = updated {
                        // An aborted update leaves ids without graph nodes: start over next time.
                        *guard = None;
                        return Err(error);
                    }
                }
            }
        }
        self.token_index.read().map_err(|_| poisoned())
    }

    /// Approximate top-`k` documents for each query of a batch (CSR, as documents): FDE
    /// candidates from the graph (`candidates` of them, the configured number when `None`;
    /// `ef_search` at least that), reranked by exact Chamfer (after ball carving when
    /// configured). Filters restrict the candidates to the listed keys.
    pub fn search(
        &self,
        queries: &[f32],
        offsets: &[u32],
        params: MultiVectorSearch,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        let k = check_k(params.k)?;
        let candidates = params.candidates.unwrap_or(self.config.candidates);
        if candidates == 0 || candidates > MAX_CANDIDATES {
            return Err(Error::invalid(format!(
                "candidates must be from 1 to {MAX_CANDIDATES}, got {candidates}"
            )));
        }
        let carving = params.ball_carving.or(self.config.ball_carving);
        check_ball_carving(carving)?;
        let queries = self.checked_tokens(queries, offsets, "queries")?;
        let count = offsets.len() - 1;
        let mut results = empty_results(count, k.min(self.len()))?;
        if results.k == 0 {
            return Ok(results);
        }
        // No more hits than documents: a huge k must not size any buffer below.
        let k = results.k;
        let ef = params
            .ef_search
            .unwrap_or(self.config.graph.ef_search)
            .max(candidates);
        let dim = self.dim();
        let level = simd_level();
        let strategy = params.strategy.unwrap_or(self.config.strategy);
        let neighbours = params.token_neighbours.unwrap_or(DEFAULT_TOKEN_NEIGHBOURS);
        if neighbours == 0 || neighbours > MAX_TOKEN_NEIGHBOURS {
            return Err(Error::invalid(format!(
                "tokenNeighbours must be from 1 to {MAX_TOKEN_NEIGHBOURS}, got {neighbours}"
            )));
        }
        let token_index = match strategy {
            Strategy::Tokens => Some(self.ready_token_index(stop)?),
            _ => None,
        };
        // The FDE strategies filter inside the graph; token retrieval filters document numbers.
        let allowed = match strategy {
            Strategy::Tokens => allowed_keys(filter),
            _ => None,
        };
        let live = |d: u32| self.admits(d, allowed.as_ref());
        let one = |q: usize| -> Result<Vec<(u64, f32)>> {
            stop.check()?;
            let tokens = &queries[offsets[q] as usize * dim..offsets[q + 1] as usize * dim];
            let prepared = match carving {
                Some(tau) => PreparedQuery::new(&carve_balls(tokens, dim, tau), dim),
                None => PreparedQuery::new(tokens, dim),
            }
            .map_err(fde_error)?;
            let mut hits: Vec<(u64, f32)> = match strategy {
                Strategy::Rerank => {
                    let mut fde = self
                        .encoder
                        .encode(tokens, Side::Query)
                        .map_err(fde_error)?;
                    fit_query_fde(&mut fde);
                    let found =
                        self.fdes
                            .search(&fde, candidates, Some(ef), filter, &StopFlag::never())?;
                    let hits: Vec<(u64, u32)> = found.keys[..found.counts[0] as usize]
                        .iter()
                        .filter_map(|key| Some((*key, *self.documents.get(key)?)))
                        .collect();
                    // Candidates sit anywhere in the store: fetch the next one's tokens while
                    // this one is scored, so the kernel does not wait on memory.
                    hits.iter()
                        .enumerate()
                        .map(|(i, &(key, d))| {
                            if let Some(&(_, next)) = hits.get(i + 1) {
                                self.tokens.prefetch(next);
                            }
                            (key, self.tokens.chamfer(level, &prepared, d))
                        })
                        .collect()
                }
                Strategy::Tokens => {
                    let index = token_index
                        .as_ref()
                        .and_then(|guard| guard.as_ref())
                        .ok_or_else(|| Error::Internal("the token index is missing".into()))?;
                    let found = index.candidates(
                        tokens,
                        neighbours,
                        candidates,
                        self.tokens.len(),
                        &live,
                    )?;
                    found
                        .iter()
                        .enumerate()
                        .filter_map(|(i, &d)| {
                            if let Some(&next) = found.get(i + 1) {
                                self.tokens.prefetch(next);
                            }
                            let key = self.document_keys[d as usize]?;
                            Some((key, self.tokens.chamfer(level, &prepared, d)))
                        })
                        .collect()
                }
                Strategy::Walk => {
                    let distance = |key: u64| {
                        self.documents.get(&key).map_or(f32::INFINITY, |&d| {
                            -self.tokens.chamfer(level, &prepared, d)
                        })
                    };
                    self.fdes
                        .walk_by_key(&distance, k, ef, filter)?
                        .into_iter()
                        .map(|(key, d)| (key, -d))
                        .collect()
                }
            };
            hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            hits.truncate(k);
            Ok(hits)
        };
        let hits: Vec<Vec<(u64, f32)>> = if count == 1 {
            vec![one(0)?]
        } else {
            threads::run(|| (0..count).into_par_iter().map(one).collect::<Result<_>>())?
        };
        fill_results(&mut results, &hits);
        Ok(results)
    }

    /// Exact top-`k` documents by Chamfer similarity for each query of a batch (CSR), scoring
    /// every document ([`TokenStore::search`]: the SIMD kernel over chunks of documents in parallel).
    /// Ground truth for the approximate search.
    pub fn search_exact(
        &self,
        queries: &[f32],
        offsets: &[u32],
        k: usize,
        filter: Option<&KeyFilter>,
        stop: &StopFlag,
    ) -> Result<SearchResults> {
        let k = check_k(k)?;
        let queries = self.checked_tokens(queries, offsets, "queries")?;
        let count = offsets.len() - 1;
        let mut results = empty_results(count, k.min(self.len()))?;
        if results.k == 0 {
            return Ok(results);
        }
        let k = results.k;
        let allowed = allowed_keys(filter);
        let accept = |d: u32| self.admits(d, allowed.as_ref());
        let found = threads::run(|| {
            self.tokens
                .search(simd_level(), &queries, offsets, k, &accept, &|| {
                    stop.is_stopped()
                })
                .map_err(fde_error)?
                .ok_or(Error::Aborted)
        })?;
        let hits: Vec<Vec<(u64, f32)>> = found
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .filter_map(|(d, s)| self.document_keys[d as usize].map(|key| (key, s)))
                    .collect()
            })
            .collect();
        fill_results(&mut results, &hits);
        Ok(results)
    }
}

/// Per-search settings of [`MultiVectorIndex::search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiVectorSearch {
    pub k: usize,
    /// FDE candidates to rerank (the index's default when `None`).
    pub candidates: Option<usize>,
    /// Graph candidates kept (at least `candidates`; the index's default when `None`).
    pub ef_search: Option<usize>,
    /// Ball carving threshold for this search (the index's setting when `None`).
    pub ball_carving: Option<f32>,
    /// Search strategy (the index's setting when `None`).
    pub strategy: Option<Strategy>,
    /// `tokens` strategy: distinct document tokens retrieved per query token
    /// ([`DEFAULT_TOKEN_NEIGHBOURS`] when `None`).
    pub token_neighbours: Option<usize>,
}

impl MultiVectorSearch {
    pub fn new(k: usize) -> Self {
        MultiVectorSearch {
            k,
            candidates: None,
            ef_search: None,
            ball_carving: None,
            strategy: None,
            token_neighbours: None,
        }
    }
}

/// A filter's keys as a set, for filtering document numbers.
fn allowed_keys(filter: Option<&KeyFilter>) -> Option<HashSet<u64>> {
    filter.map(|f| f.keys().iter().copied().collect())
}

fn check_k(k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    Ok(k)
}

fn check_ball_carving(tau: Option<f32>) -> Result<()> {
    match tau {
        Some(t) if !t.is_finite() => Err(Error::invalid(format!(
            "ballCarving must be a finite inner-product threshold, got {t}"
        ))),
        _ => Ok(()),
    }
}

/// Greedy ball carving of query tokens (MUVERA §3): each token joins the first cluster whose
/// first token has inner product ≥ `tau` with it, or starts a new one; each cluster is replaced
/// by the sum of its tokens.
pub fn carve_balls(tokens: &[f32], dim: usize, tau: f32) -> Vec<f32> {
    let mut centres: Vec<usize> = Vec::new();
    let mut sums: Vec<f32> = Vec::new();
    for (t, token) in tokens.chunks_exact(dim).enumerate() {
        let joined = centres.iter().position(|&c| {
            let centre = &tokens[c * dim..(c + 1) * dim];
            centre.iter().zip(token).map(|(a, b)| a * b).sum::<f32>() >= tau
        });
        match joined {
            Some(cluster) => sums[cluster * dim..(cluster + 1) * dim]
                .iter_mut()
                .zip(token)
                .for_each(|(s, x)| *s += x),
            None => {
                centres.push(t);
                sums.extend_from_slice(token);
            }
        }
    }
    sums
}

/// Brings a query FDE inside the single-vector bound of the FDE graph when it is not: scaled
/// (in f64) to unit length, which keeps its ranking by inner product. Every value of an FDE of
/// accepted tokens is finite, but a query sums its tokens per partition, so a very long query
/// of large tokens can have a norm past what the graph accepts; the document side (averages)
/// cannot (see [`vecdex_fde::MAX_TOKEN_SQUARED_NORM`]).
fn fit_query_fde(fde: &mut [f32]) {
    let squared: f64 = fde.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if squared > MAX_SQUARED_NORM {
        normalize(fde);
    }
}

fn empty_results(queries: usize, columns: usize) -> Result<SearchResults> {
    SearchResults::padded(queries, columns)
}

/// Writes `(key, similarity)` hits, best first, as `−similarity` distances.
fn fill_results(results: &mut SearchResults, hits: &[Vec<(u64, f32)>]) {
    let columns = results.k;
    for (q, row) in hits.iter().enumerate() {
        let n = row.len().min(columns);
        for (c, (key, score)) in row[..n].iter().enumerate() {
            results.keys[q * columns + c] = *key;
            results.distances[q * columns + c] = -score;
        }
        results.counts[q] = n as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query FDE past the graph's single-vector bound (a very long query of large tokens)
    /// is scaled to unit length, which keeps its ranking by inner product; any other is left
    /// as it is.
    #[test]
    fn query_fdes_are_scaled_only_past_the_graph_bound() {
        let documents = [[1.0f32, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]];
        let rank = |q: &[f32]| {
            let mut order: Vec<usize> = (0..documents.len()).collect();
            let score = |d: usize| -> f32 { q.iter().zip(&documents[d]).map(|(a, b)| a * b).sum() };
            order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
            order
        };
        for (fde, scaled) in [
            (vec![3.0f32, 2.0, 1.0], false),
            (vec![1e18, 9e17, 2e17], false),
            (vec![1e19, 9e18, 2e18], true),
            (vec![3e37, 2e37, 1e37], true),
            (vec![f32::MAX / 2.0, f32::MAX / 3.0, 1e30], true),
        ] {
            let mut fitted = fde.clone();
            fit_query_fde(&mut fitted);
            if scaled {
                let norm: f64 = fitted
                    .iter()
                    .map(|&x| f64::from(x).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!((norm - 1.0).abs() < 1e-6, "{fde:?} → {fitted:?}");
                assert_eq!(rank(&fitted), rank(&fde));
            } else {
                assert_eq!(fitted, fde);
            }
        }
    }
}
