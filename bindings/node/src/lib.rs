//! napi-rs binding of vecdex. Converts, copies, schedules and maps errors; holds no algorithm.

#![deny(clippy::unwrap_used)]

mod abort;
mod collection;
mod compression;
mod convert;
pub mod debug;
mod error;
mod flat_index;
mod handle;
mod hnsw_index;
pub mod inspect;
mod multi_vector_index;
pub mod options;
mod order;
mod tasks;

use napi::bindgen_prelude::{
    Float32Array, Float32ArraySlice, Int8ArraySlice, Object, Uint16ArraySlice, Uint8ArraySlice,
};
use std::borrow::Cow;

use napi::Env;
use napi_derive::napi;
use vecdex_distance::{bf16, f16, KernelError};

pub use abort::NativeAbortHandle;
pub use collection::{NativeCollection, NativeCollectionOptions, NativeCollectionStats, NativeField, NativeItem};
pub use compression::{NativeCompressionOptions, NativeCompressionStats, NativeMemoryParts};
pub use flat_index::{search_into_sync_fast, NativeFlatIndex};
pub use handle::{NativeKeyFilter, NativeSearchResults};
pub use hnsw_index::{
    hnsw_search_into_sync_fast, NativeHnswIndex, NativeHnswOptions, NativeHnswStats,
};
pub use multi_vector_index::{
    chamfer_similarity, NativeFdeConfig, NativeFdeEncoder, NativeFdeOptions,
    NativeMultiVectorIndex, NativeMultiVectorOptions, NativeMultiVectorStats,
};

use crate::error::{guarded, to_napi, Result};

fn kernel_error(error: KernelError) -> crate::error::NativeError {
    let mapped = match error {
        KernelError::LengthMismatch { left, right } => vecdex::Error::DimensionMismatch {
            expected: left,
            actual: right,
            what: "distance".into(),
        },
        KernelError::ZeroVector => vecdex::Error::ZeroVector(error.to_string()),
        other => vecdex::Error::invalid(other.to_string()),
    };
    to_napi(mapped)
}

/// Distance of two f32 vectors (lower is closer).
#[napi]
pub fn distance_f32(a: Float32ArraySlice, b: Float32ArraySlice, metric: String) -> Result<f64> {
    let metric = convert::metric(&metric)?;
    f32_distance(&a, &b, metric)
}

/// Distance of two f32 vectors under the indexes' rule (finite, not so large that a distance
/// overflows: refused here as an index would refuse it, rather than answered ±∞), computed as
/// an index computes it (cosine on vectors the f32 kernel cannot hold normalised in f64 first).
fn f32_distance(a: &[f32], b: &[f32], metric: vecdex::Metric) -> Result<f64> {
    if !metric.is_spatial() || a.len() != b.len() {
        // The kernel names the unsupported metric and element type, or the two lengths.
        return vecdex_distance::distance(metric, a, b).map_err(kernel_error);
    }
    let [a, b] = guarded(|| vecdex::validate::pair_for_kernel(a, b, metric))?;
    vecdex_distance::distance(metric, &a, &b).map_err(kernel_error)
}

/// Distance of two i8 vectors.
#[napi]
pub fn distance_i8(a: Int8ArraySlice, b: Int8ArraySlice, metric: String) -> Result<f64> {
    let metric = convert::metric(&metric)?;
    vecdex_distance::distance(metric, &a, &b).map_err(kernel_error)
}

/// Distance of two 16-bit float vectors given as raw bits, decoded by `decode`.
fn distance_half<T: vecdex_distance::SpatialElement>(
    a: &[u16],
    b: &[u16],
    metric: &str,
    decode: fn(u16) -> T,
    to_f32: fn(T) -> f32,
) -> Result<f64> {
    let metric = convert::metric(metric)?;
    let a: Vec<T> = a.iter().map(|x| decode(*x)).collect();
    let b: Vec<T> = b.iter().map(|x| decode(*x)).collect();
    // bf16 has f32's range: the same rule as f32 vectors, on the decoded values; a pair the
    // half kernel cannot hold as it is (cosine) is scored as the f32 vectors it decodes to.
    let wide = |v: &[T]| v.iter().map(|x| to_f32(*x)).collect::<Vec<f32>>();
    let (wide_a, wide_b) = (wide(&a), wide(&b));
    if metric.is_spatial() && a.len() == b.len() {
        let [ready_a, ready_b] =
            guarded(|| vecdex::validate::pair_for_kernel(&wide_a, &wide_b, metric))?;
        if matches!(ready_a, Cow::Owned(_)) || matches!(ready_b, Cow::Owned(_)) {
            return vecdex_distance::distance(metric, &ready_a, &ready_b).map_err(kernel_error);
        }
    }
    vecdex_distance::distance(metric, &a, &b).map_err(kernel_error)
}

/// Distance of two f16 vectors given as raw binary16 bits.
#[napi]
pub fn distance_f16(a: Uint16ArraySlice, b: Uint16ArraySlice, metric: String) -> Result<f64> {
    distance_half(&a, &b, &metric, f16, f16::to_f32)
}

/// Distance of two bf16 vectors given as raw bits.
#[napi]
pub fn distance_bf16(a: Uint16ArraySlice, b: Uint16ArraySlice, metric: String) -> Result<f64> {
    distance_half(&a, &b, &metric, bf16, bf16::to_f32)
}

/// Hamming distance of two packed bit vectors.
#[napi]
pub fn distance_binary(a: Uint8ArraySlice, b: Uint8ArraySlice, metric: String) -> Result<f64> {
    if convert::metric(&metric)? != vecdex::Metric::Hamming {
        return Err(kernel_error(KernelError::Unsupported {
            metric: convert::metric(&metric)?,
            element: vecdex::ElementType::Binary,
        }));
    }
    vecdex_distance::hamming(&a, &b).map_err(kernel_error)
}

/// Row-major `queries × vectors` distances (blocking).
#[napi]
pub fn distance_matrix_sync(
    queries: Float32ArraySlice,
    vectors: Float32ArraySlice,
    dim: u32,
    metric: String,
) -> Result<Float32Array> {
    let metric = convert::metric(&metric)?;
    let out = guarded(|| {
        vecdex::distance_matrix(
            &queries,
            &vectors,
            dim as usize,
            metric,
            &vecdex::StopFlag::never(),
        )
    })?;
    convert::fits_one_array(out, "the distance matrix").map(Float32Array::new)
}

/// Async twin of `distanceMatrixSync`.
#[napi(ts_return_type = "Promise<Float32Array>")]
pub fn distance_matrix<'env>(
    env: &'env Env,
    queries: Float32ArraySlice,
    vectors: Float32ArraySlice,
    dim: u32,
    metric: String,
    abort: Option<&NativeAbortHandle>,
) -> Result<Object<'env>> {
    let metric = convert::metric(&metric)?;
    let (queries, vectors) = guarded(|| {
        Ok((
            vecdex::validate::try_copy(&queries, "queries")?,
            vecdex::validate::try_copy(&vectors, "vectors")?,
        ))
    })?;
    let stop = abort::flag(abort);
    tasks::spawn(
        env,
        move || vecdex::distance_matrix(&queries, &vectors, dim as usize, metric, &stop),
        |_, out| convert::fits_one_array(out, "the distance matrix").map(Float32Array::new),
    )
}

/// The most threads `VECDEX_THREADS`, `configureThreads` (or the CLI's `--threads`) may ask for; beyond it every
/// call that needs the pools fails with ERR_INVALID_ARGUMENT (see `vecdex::threads`).
#[napi]
pub const MAX_THREADS: u32 = vecdex::threads::MAX_THREADS as u32;

/// Sizes vecdex's thread pools (compute and background) before their first use, in place of
/// `VECDEX_THREADS` (see `vecdex::threads::configure_threads`): 1 to [`MAX_THREADS`]. Once the
/// pools run, a different size is ERR_INVALID_ARGUMENT.
#[napi]
pub fn configure_threads(threads: f64) -> Result<()> {
    if !(threads.is_finite() && threads.fract() == 0.0 && threads >= 0.0) {
        return Err(error::invalid(format!(
            "threads must be a whole number, got {threads}"
        )));
    }
    // Saturates beyond usize: the range check below names the limit.
    vecdex::threads::configure_threads(threads as usize).map_err(to_napi)
}

/// What runs on this machine.
#[napi(object)]
pub struct NativeCapabilities {
    /// Level chosen for vecdex's own kernels: avx512, avx2 or scalar.
    pub scan_kernel: String,
    /// The code path each family of vecdex's own kernels takes on this CPU.
    pub kernels: NativeKernelPaths,
    /// simsimd backends active on this CPU.
    pub simsimd_backends: Vec<String>,
    pub simsimd_dynamic_dispatch: bool,
    /// Threads in vecdex's pool.
    pub threads: u32,
    pub arch: String,
    pub os: String,
}

/// Per kernel family: 'avx512vnni', 'avx512bw', 'avx512', 'avx2-fma', 'avx2', 'popcnt' (x86-64, chosen at
/// run time) or 'portable' (plain loops: every path off x86-64, arm64 included).
#[napi(object)]
pub struct NativeKernelPaths {
    /// FlatIndex exact search (blocked scan with fused top-k).
    pub blocked_scan: String,
    /// HNSW walk over f32 rows, and every rescoring.
    pub padded_rows: String,
    /// SQ8 (asymmetric) and SQ4 codes.
    pub sq_codes: String,
    /// Symmetric SQ8 (the default).
    pub sq8_symmetric: String,
    /// f16 and bf16 codes.
    pub half_codes: String,
    /// Binary codes (popcount).
    pub binary_codes: String,
    /// PQ lookup tables.
    pub pq_codes: String,
    /// RaBitQ codes.
    pub rabitq_codes: String,
    /// Exact Chamfer (multi-vector).
    pub chamfer: String,
    /// PCA training.
    pub pca: String,
}

#[napi]
pub fn capabilities() -> NativeCapabilities {
    let caps = vecdex::capabilities();
    let k = caps.kernels;
    let name = |p: vecdex::KernelPath| p.name().to_string();
    NativeCapabilities {
        scan_kernel: caps.scan_kernel.name().to_string(),
        kernels: NativeKernelPaths {
            blocked_scan: name(k.blocked_scan),
            padded_rows: name(k.padded_rows),
            sq_codes: name(k.sq_codes),
            sq8_symmetric: name(k.sq8_symmetric),
            half_codes: name(k.half_codes),
            binary_codes: name(k.binary_codes),
            pq_codes: name(k.pq_codes),
            rabitq_codes: name(k.rabitq_codes),
            chamfer: name(k.chamfer),
            pca: name(k.pca),
        },
        simsimd_backends: caps
            .simsimd_backends
            .iter()
            .map(|s| s.to_string())
            .collect(),
        simsimd_dynamic_dispatch: caps.simsimd_dynamic_dispatch,
        threads: vecdex::threads::thread_count() as u32,
        arch: std::env::consts::ARCH.to_string(),
        os: std::env::consts::OS.to_string(),
    }
}

/// Makes the next guarded native call (any method that runs index code, sync or async) panic
/// inside its guard, to prove every entry point turns a panic into ERR_INTERNAL. Tests only.
#[napi]
pub fn debug_arm_panic(armed: bool) {
    crate::error::arm_panic(armed);
}

/// Panics inside native code, sync or async, to prove a panic reaches JS as ERR_INTERNAL.
/// For tests only.
#[napi]
pub fn debug_panic<'env>(env: &'env Env, asynchronous: bool) -> Result<Option<Object<'env>>> {
    if asynchronous {
        return tasks::spawn(
            env,
            || -> vecdex::Result<()> { panic!("deliberate panic (async)") },
            |_, ()| Ok(()),
        )
        .map(Some);
    }
    guarded(|| -> vecdex::Result<()> { panic!("deliberate panic (sync)") })?;
    Ok(None)
}

/// Memory read bandwidth in bytes per second: `bytes` summed over `threads` pool threads, best
/// of `repeats`. For benchmark reports (single-query scans are bounded by it).
#[napi]
pub fn measure_read_bandwidth(bytes: f64, threads: u32, repeats: u32) -> Result<f64> {
    if !(bytes.is_finite() && bytes >= 0.0 && bytes <= 64.0 * (1u64 << 30) as f64) {
        return Err(error::invalid("bytes must be between 0 and 64 GiB"));
    }
    vecdex::threads::check_thread_count(threads as usize, "threads").map_err(to_napi)?;
    guarded(|| vecdex::probe::read_bandwidth(bytes as usize, threads as usize, repeats as usize))
}
