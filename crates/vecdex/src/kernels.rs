//! What runs on this machine: the code path each family of vecdex's own kernels takes, read
//! from the decisions those kernels dispatch on, so a report cannot claim a SIMD path that does
//! not run. On x86-64 the paths are chosen at run time from the CPU's features (and lowered by
//! `VECDEX_SIMD`); every other architecture, arm64 included, runs the portable loops. Pairwise
//! distances (`distance`, `distanceMatrix`) are simsimd's, with its own dispatch (NEON and SVE
//! on arm64): see `simsimd_backends`.

use vecdex_distance::{distance_kernel_paths, simd_level, KernelPath, SimdLevel};

/// The path of each kernel family (see [`KernelPath`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelPaths {
    /// `FlatIndex` exact search: the blocked scan with fused top-k.
    pub blocked_scan: KernelPath,
    /// f32 rows padded to 16 lanes: the HNSW walk over f32 vectors, and every rescoring.
    pub padded_rows: KernelPath,
    /// f32 query against SQ8 (asymmetric) and SQ4 codes.
    pub sq_codes: KernelPath,
    /// Symmetric SQ8 (the default): i8 query weights against u8 codes.
    pub sq8_symmetric: KernelPath,
    /// f16 and bf16 codes.
    pub half_codes: KernelPath,
    /// Binary codes: AND-popcounts of the bits with the float query's weights quantized to
    /// 4-bit planes, with the POPCNT instruction when the CPU has it (chosen at run time at the
    /// AVX2 level), else the baseline's shift-and-mask bit count.
    pub binary_codes: KernelPath,
    /// PQ lookup-table sums: plain loops on every architecture.
    pub pq_codes: KernelPath,
    /// 1-bit RaBitQ codes: AND-popcounts of the code's bits with the 4-bit query's bit planes,
    /// on the same path as binary codes (4-bit codes run on the `sq_codes` kernel).
    pub rabitq_codes: KernelPath,
    /// Exact Chamfer (multi-vector rerank and `searchExact`).
    pub chamfer: KernelPath,
    /// PCA training (second moments, tridiagonalisation).
    pub pca: KernelPath,
}

/// What runs on this machine, for `capabilities()` and benchmark reports.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The level chosen for vecdex's own kernels in this process.
    pub scan_kernel: SimdLevel,
    /// The path each kernel family takes at that level on this CPU.
    pub kernels: KernelPaths,
    /// simsimd backends this CPU enables (e.g. `haswell`, `skylake`, `neon`, `sve`).
    pub simsimd_backends: Vec<&'static str>,
    pub simsimd_dynamic_dispatch: bool,
}

pub fn capabilities() -> Capabilities {
    let distance = vecdex_distance::capabilities();
    let own = distance_kernel_paths();
    let level = simd_level();
    Capabilities {
        scan_kernel: distance.scan_kernel,
        kernels: KernelPaths {
            blocked_scan: own.blocked_scan,
            padded_rows: own.padded_rows,
            sq_codes: own.sq_codes,
            sq8_symmetric: own.sq8_symmetric,
            half_codes: own.half_codes,
            binary_codes: vecdex_distance::popcount_path(),
            pq_codes: KernelPath::Portable,
            rabitq_codes: vecdex_distance::popcount_path(),
            chamfer: vecdex_fde::chamfer_path(level),
            pca: vecdex_quant::pca::kernel_path(level),
        },
        simsimd_backends: distance.simsimd_backends,
        simsimd_dynamic_dispatch: distance.simsimd_dynamic_dispatch,
    }
}
