//! Test hooks that let tests see how much work ran and which way it went; exported by the
//! generated loader (index.js) but not by the package's API (dist/). Tests only.

use napi_derive::napi;
use vecdex::cancel::trace;

/// While on, the abort handles made for calls given an AbortSignal count every check of their
/// flag in one process-wide count (reset to 0 here), and all read as aborted from check number
/// `stopAtCheck` on (never when omitted). Proves an abort stops the work early, measured in
/// checks made (each one a piece of work done) rather than in time.
#[napi]
pub fn debug_trace_aborts(on: bool, stop_at_check: Option<f64>) {
    let stop_at = stop_at_check
        .filter(|n| n.is_finite() && *n >= 1.0)
        .map(|n| n as u64);
    trace::reset(stop_at);
    crate::abort::trace_new_handles(on);
}

/// Sets the most bytes one result typed array may hold (omitted: Node-API's 4 GiB), so tests
/// can reach the ERR_OUT_OF_MEMORY of a result too large for one array without gigabytes.
#[napi]
pub fn debug_set_max_result_bytes(bytes: Option<f64>) {
    crate::convert::set_max_result_bytes(
        bytes.map_or(crate::convert::DEFAULT_MAX_RESULT_BYTES, |b| {
            b.max(0.0) as usize
        }),
    );
}

/// Checks made by traced abort handles since `debugTraceAborts`.
#[napi]
pub fn debug_abort_checks() -> f64 {
    trace::checks() as f64
}

/// Which way HNSW searches went (one count per query) since `debugCountSearchPaths(true)`.
#[napi(object)]
pub struct NativeSearchPaths {
    /// Walked the graph; the walk's hits were the answer.
    pub walks: f64,
    /// Scanned the admitted vectors exactly without walking (a filter that admits few).
    pub scans: f64,
    /// Walked, found fewer hits than the filter admits, then scanned exactly.
    pub rescans: f64,
}

/// Turns the count of HNSW search paths on (from zero) or off (`vecdex::hnsw_index::trace`).
#[napi]
pub fn debug_count_search_paths(on: bool) {
    vecdex::hnsw_index::trace::count_paths(on);
}

/// The HNSW search paths counted since `debugCountSearchPaths(true)`.
#[napi]
pub fn debug_search_paths() -> NativeSearchPaths {
    let paths = vecdex::hnsw_index::trace::paths();
    NativeSearchPaths {
        walks: paths.walks as f64,
        scans: paths.scans as f64,
        rescans: paths.rescans as f64,
    }
}
