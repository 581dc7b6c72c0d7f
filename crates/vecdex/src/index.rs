//! The contract every index kind keeps ([`FlatIndex`], [`HnswIndex`], [`MultiVectorIndex`]):
//! size and memory figures, reads by key, persistence, and compression state. Code that serves
//! all three (the Node binding's lifecycle, loaders and persistence) is written once against it.
//!
//! Writes follow one phased protocol on every kind: the slow part is planned with shared
//! access (searches go on), and applied with exclusive access in a brief step:
//! - adds: `prepare` (exclusive, brief) → `link` (shared) → `commit` / `abandon` (exclusive);
//!   a multi-vector index first encodes its documents (shared);
//! - compaction: `relink_removed` (shared) → `release_removed` (exclusive);
//! - training: `fit` (shared) → `install_training` (exclusive).

use std::path::Path;

use crate::compression::{CompressionStats, TrainedEncoder};
use crate::error::Result;
use crate::{FlatIndex, HnswIndex, MultiVectorIndex, StopFlag};

/// What the binding's lifecycle needs of anything it holds (every index kind and a
/// [`Collection`](crate::Collection)): size and memory figures, and persistence.
pub trait Persistent: Sized + Send + Sync + 'static {
    /// Live entries (vectors, documents, or a collection's items).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes held in memory by the whole index.
    fn memory_bytes(&self) -> usize;
    /// Saves atomically (temporary file, fsync, rename, folder fsync).
    fn save_to(&self, path: &Path) -> Result<()>;
    /// The file image `save_to` writes.
    fn image(&self) -> Result<Vec<u8>>;
    /// Loads a saved index, checking the whole file first.
    fn load_from(path: &Path) -> Result<Self>;
    /// Rebuilds an index from a file image, checked like a file.
    fn from_image(bytes: &[u8]) -> Result<Self>;
}

/// What every index kind offers; see the module docs.
pub trait Index: Persistent {
    fn contains(&self, key: u64) -> bool;
    /// The stored vector of a key (a multi-vector index: its document's tokens, row-major); an
    /// error when the index can no longer read it (a view whose file changed in place).
    fn vector(&self, key: u64) -> Result<Option<Vec<f32>>>;
    /// Every key, in storage order.
    fn key_list(&self) -> Vec<u64>;
    /// Whether searches can run (an uncompressed index always can).
    fn is_trained(&self) -> bool;
    fn compression_stats(&self) -> CompressionStats;
}

/// [`Persistent`] of a type with inherent `len`, `memory_bytes`, `save`, `to_bytes`, `load` and
/// `from_bytes`.
macro_rules! persistent {
    ($kind:ty) => {
        impl Persistent for $kind {
            fn len(&self) -> usize {
                <$kind>::len(self)
            }
            fn memory_bytes(&self) -> usize {
                <$kind>::memory_bytes(self)
            }
            fn save_to(&self, path: &std::path::Path) -> Result<()> {
                <$kind>::save(self, path)
            }
            fn image(&self) -> Result<Vec<u8>> {
                <$kind>::to_bytes(self)
            }
            fn load_from(path: &std::path::Path) -> Result<Self> {
                <$kind>::load(path)
            }
            fn from_image(bytes: &[u8]) -> Result<Self> {
                <$kind>::from_bytes(bytes)
            }
        }
    };
}
pub(crate) use persistent;

/// The methods every kind has inherently, forwarded: the trait names the contract, the
/// inherent methods stay the kinds' own API.
macro_rules! index_contract {
    ($kind:ty, vector: $vector:expr, keys: $keys:expr) => {
        persistent!($kind);

        impl Index for $kind {
            fn contains(&self, key: u64) -> bool {
                <$kind>::contains(self, key)
            }
            fn vector(&self, key: u64) -> Result<Option<Vec<f32>>> {
                $vector(self, key)
            }
            fn key_list(&self) -> Vec<u64> {
                $keys(self)
            }
            fn is_trained(&self) -> bool {
                <$kind>::is_trained(self)
            }
            fn compression_stats(&self) -> CompressionStats {
                <$kind>::compression_stats(self)
            }
        }
    };
}

index_contract!(FlatIndex, vector: |i: &FlatIndex, k| Ok(i.get(k)), keys: |i: &FlatIndex| i.keys().to_vec());
index_contract!(HnswIndex, vector: HnswIndex::try_get, keys: HnswIndex::keys);
index_contract!(MultiVectorIndex, vector: |i: &MultiVectorIndex, k| Ok(i.get(k)), keys: MultiVectorIndex::keys);

/// Bytes a single-vector index holds in memory, by part: allocated capacity, as
/// [`Persistent::memory_bytes`] counts it (that figure is their sum). Rows of a view that live
/// in its file's mapping are not counted: the page cache holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryParts {
    /// Full-precision vectors (kept beside the codes for rescoring when compressed).
    pub vectors: usize,
    /// Compressed codes (0 without compression, or before training).
    pub codes: usize,
    /// Graph links, levels and their locks (0 for a flat index).
    pub graph: usize,
    /// Keys, the key-to-slot map and slot bookkeeping.
    pub ids: usize,
}

impl MemoryParts {
    /// The whole index.
    pub fn total(&self) -> usize {
        self.vectors + self.codes + self.graph + self.ids
    }
}

/// Where an index keeps its full-precision vectors (option `fullVectors`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FullVectors {
    /// In the index's memory (the default).
    #[default]
    Memory,
    /// In a file of their own at this path, memory-mapped read-only: a compressed index reads
    /// only the rows of the candidates it rescores.
    Disk(std::path::PathBuf),
}

/// The single-vector kinds: rows under keys, and compression training in two phases.
pub trait VectorIndex: Index {
    /// Bytes in memory by part; they add up to [`Persistent::memory_bytes`].
    fn memory_parts(&self) -> MemoryParts;
    fn add_rows(&mut self, keys: &[u64], vectors: &[f32], stop: &StopFlag) -> Result<()>;
    /// Learns a compression model from `sample` (and a sample of `queries`, see
    /// [`HnswIndex::fit_with_queries`](crate::HnswIndex::fit_with_queries)) without changing
    /// the index (shared access).
    fn fit(&self, sample: &[f32], queries: Option<&[f32]>) -> Result<TrainedEncoder>;
    /// Puts a model from [`fit`](Self::fit) in place (exclusive access).
    fn install_training(&mut self, trained: TrainedEncoder) -> Result<()>;
}

macro_rules! vector_contract {
    ($kind:ty) => {
        impl VectorIndex for $kind {
            fn memory_parts(&self) -> MemoryParts {
                <$kind>::memory_parts(self)
            }
            fn add_rows(&mut self, keys: &[u64], vectors: &[f32], stop: &StopFlag) -> Result<()> {
                <$kind>::add(self, keys, vectors, stop)
            }
            fn fit(&self, sample: &[f32], queries: Option<&[f32]>) -> Result<TrainedEncoder> {
                <$kind>::fit_with_queries(self, sample, queries)
            }
            fn install_training(&mut self, trained: TrainedEncoder) -> Result<()> {
                <$kind>::install_training(self, trained)
            }
        }
    };
}

vector_contract!(FlatIndex);
vector_contract!(HnswIndex);

/// The graph kinds: removed entries stay as waypoints until compaction relinks around them, in
/// two phases (see the module docs).
pub trait Compactable: Index {
    /// Whether enough entries were removed for an add to compact first.
    fn should_compact(&self) -> bool;
    /// Phase 1, with shared access: relinks the graph around the removed entries.
    fn relink_removed(&self, stop: &StopFlag) -> Result<crate::RelinkedSlots>;
    /// Phase 2, with exclusive access: frees the relinked slots; returns how many.
    fn release_removed(&mut self, relinked: crate::RelinkedSlots) -> usize;
}

macro_rules! compactable {
    ($kind:ty) => {
        impl Compactable for $kind {
            fn should_compact(&self) -> bool {
                <$kind>::should_compact(self)
            }
            fn relink_removed(&self, stop: &StopFlag) -> Result<crate::RelinkedSlots> {
                <$kind>::relink_removed(self, stop)
            }
            fn release_removed(&mut self, relinked: crate::RelinkedSlots) -> usize {
                <$kind>::release_removed(self, relinked)
            }
        }
    };
}

compactable!(HnswIndex);
compactable!(MultiVectorIndex);
