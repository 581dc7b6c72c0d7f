//! Distance kernels for vecdex.
//!
//! - [`metric`]: metrics, element types and the one distance convention (lower is closer).
//! - [`dispatch`]: pairwise kernels through simsimd (backend chosen at run time for the CPU),
//!   and the choice of level for our own blocked kernels.
//! - [`scalar`]: the plain oracle every SIMD path is tested against.
//! - [`panel`]: blocked storage of f32 vectors and the tiled exact-scan kernels.
//! - [`rows`]: one-to-one kernels over zero-padded rows, for graph search.
//! - [`topk`]: bounded top-k selection.
//! - [`memory`]: huge-page hints for large randomly accessed buffers.

pub mod dispatch;
pub mod memory;
pub mod metric;
pub mod panel;
pub mod rows;
pub mod scalar;
pub mod topk;

pub use dispatch::{
    capabilities, distance, distance_kernel_paths, hamming, popcount_path, simd_level, Capabilities,
    DistanceKernelPaths, KernelError, KernelPath, SimdLevel, SpatialElement,
};
pub use memory::{advise_huge_pages, advise_huge_pages_range};
pub use metric::{ElementType, Metric, UnknownMetric};
pub use panel::{Expansion, PanelMatrix, QueryRows, TileSink, TileTransform, LANES};
pub use rows::{
    nibble_split, padded_len, prefetch_row, HalfFloat, RowKernel, NIBBLE_BLOCK, ROW_LANES,
};
pub use simsimd::{bf16, f16};
pub use topk::{Neighbor, TopK};

/// Inner product of two equal-length f32 slices through simsimd (0 if the lengths differ).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    <f32 as simsimd::SpatialSimilarity>::dot(a, b).unwrap_or(0.0) as f32
}
