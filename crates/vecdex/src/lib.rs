//! vecdex facade: composes indexes from the kernel crates. The only crate the binding uses;
//! it sees raw user input and validates it before inner crates get typed, checked data.

pub mod cancel;
pub mod collection;
pub mod compression;
pub mod error;
pub mod filter;
pub mod flat_index;
pub mod hnsw_index;
pub mod index;
pub mod insertion_order;
pub mod inspect;
pub mod kernels;
pub(crate) mod mapped;
pub mod matrix;
pub mod memory;
pub mod multi_vector_index;
pub mod options;
pub(crate) mod persist;
pub mod probe;
mod row_file;
pub mod threads;
pub mod validate;

pub use cancel::StopFlag;
pub use compression::{
    Compression, CompressionStats, Quantization, Reduction, RescoreParams, TrainedEncoder,
    COARSE_OVERSAMPLE, DEFAULT_OVERSAMPLE,
};
pub use error::{catch_panic, Error, Result};
pub use filter::{IndexVersion, KeyFilter, SlotSet};
pub use flat_index::{CheckedBatch, FlatConfig, FlatIndex, GrownStorage, SearchResults};
pub use hnsw_index::{HnswConfig, HnswIndex, HnswStats, LinkMode, PendingBatch, RelinkedSlots};
pub use collection::{Collection, CollectionConfig, CollectionSnapshot, CollectionStats, IndexSettings, ItemBatch, ItemId};
pub use index::{Compactable, FullVectors, Index, MemoryParts, Persistent, VectorIndex};
pub use insertion_order::InsertionOrder;
pub use inspect::{inspect_file, FileInfo, SectionInfo, Setting};
pub use kernels::{capabilities, Capabilities, KernelPaths};
pub use matrix::distance_matrix;
pub use multi_vector_index::{
    carve_balls, EncodedDocuments, MultiVectorConfig, MultiVectorIndex, MultiVectorSearch,
    MultiVectorStats, PendingDocuments, Strategy, DEFAULT_CANDIDATES,
};
pub use vecdex_distance::{ElementType, KernelPath, Metric};
pub use vecdex_fde::{chamfer, FdeConfig, FdeEncoder, ProjectionType, Side, RNG_VERSION};
pub use vecdex_hnsw::GraphStats;
pub use vecdex_quant::{PqConfig, SqConfig};
