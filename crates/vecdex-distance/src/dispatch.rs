//! Run-time kernel choice. Pairwise kernels go through `simsimd`, whose C library picks the best
//! backend for this CPU once per process (dynamic dispatch). The blocked scan kernels in
//! [`crate::panel`] are ours (simsimd has no matrix kernels); their level is chosen here, once,
//! from the CPU's features, and can be lowered with `VECDEX_SIMD=scalar|avx2` (never raised
//! above what the CPU has) to test every path on one machine.

use std::sync::OnceLock;

use crate::metric::{ElementType, Metric};
use crate::rows::RowKernel;
use crate::scalar;
use simsimd::{BinarySimilarity, SpatialSimilarity};

/// Instruction-set level of the blocked scan kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 Foundation.
    Avx512,
}

impl SimdLevel {
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// The best level this CPU supports.
    pub fn detect() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return SimdLevel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Scalar
    }

    /// Every level this CPU can run, lowest first (for tests).
    pub fn available() -> Vec<SimdLevel> {
        let best = SimdLevel::detect();
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|l| *l <= best)
            .collect()
    }
}

/// The level used by this process, chosen on first use.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = SimdLevel::detect();
        let requested = match std::env::var("VECDEX_SIMD").ok().as_deref() {
            Some("scalar") => SimdLevel::Scalar,
            Some("avx2") => SimdLevel::Avx2,
            _ => best,
        };
        requested.min(best)
    })
}

/// The code path one family of vecdex's own kernels takes on this machine. Every x86-64 path
/// is chosen at run time from the CPU's features; on other architectures (arm64 among them)
/// vecdex's own kernels have no SIMD code of their own and run `Portable`: plain loops over
/// fixed-size lanes, vectorised by the compiler only as far as the target's baseline allows
/// (NEON is part of arm64's baseline; nothing is chosen at run time there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPath {
    /// Plain Rust loops, the same source on every architecture.
    Portable,
    /// AVX2 without FMA (x86-64): integer kernels, or loops compiled with AVX2 enabled.
    Avx2,
    /// Hand-written or compiled-for AVX2 + FMA (x86-64).
    Avx2Fma,
    /// AVX-512 Foundation (x86-64).
    Avx512,
    /// AVX-512 F, BW and VL: masked byte loads (x86-64).
    Avx512Bw,
    /// AVX-512 VNNI integer dot products, `vpdpbusd` (x86-64).
    Avx512Vnni,
    /// Plain loops compiled with the POPCNT instruction (x86-64; taken at the AVX2 level and
    /// above, so `VECDEX_SIMD=scalar` runs the portable bit count instead).
    Popcnt,
}

impl KernelPath {
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx2Fma => "avx2-fma",
            KernelPath::Avx512 => "avx512",
            KernelPath::Avx512Bw => "avx512bw",
            KernelPath::Avx512Vnni => "avx512vnni",
            KernelPath::Popcnt => "popcnt",
        }
    }
}

/// The path of bit-code kernels (binary and RaBitQ codes): [`KernelPath::Popcnt`] when this
/// process runs at [`SimdLevel::Avx2`] or above on a CPU with POPCNT, else
/// [`KernelPath::Portable`] (`u64::count_ones` compiled for the baseline target, which on
/// x86-64 is a sequence of shifts and masks). Callers dispatch on it once per run of codes.
pub fn popcount_path() -> KernelPath {
    static PATH: OnceLock<KernelPath> = OnceLock::new();
    *PATH.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if simd_level() >= SimdLevel::Avx2 && std::arch::is_x86_feature_detected!("popcnt") {
                return KernelPath::Popcnt;
            }
        }
        KernelPath::Portable
    })
}

/// Paths of this crate's kernel families in this process, read from the same decisions the
/// kernels branch on ([`crate::panel::scan_path`], [`RowKernel`]'s feature flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistanceKernelPaths {
    /// Blocked exact scans of a `FlatIndex` ([`crate::panel::scan`]).
    pub blocked_scan: KernelPath,
    /// f32 rows padded to 16 lanes: the HNSW graph walk and rescoring ([`RowKernel::dot`]).
    pub padded_rows: KernelPath,
    /// f32 weights against SQ8 / SQ4 codes ([`RowKernel::dot_u8`] and kin).
    pub sq_codes: KernelPath,
    /// i8 query against SQ8 codes, symmetric SQ8 ([`RowKernel::dot_i8_u8`]).
    pub sq8_symmetric: KernelPath,
    /// f32 query against f16 / bf16 codes ([`RowKernel::dot_half`]).
    pub half_codes: KernelPath,
}

/// Which path each of this crate's kernel families takes in this process (after `VECDEX_SIMD`).
pub fn distance_kernel_paths() -> DistanceKernelPaths {
    let rows = RowKernel::default();
    DistanceKernelPaths {
        blocked_scan: crate::panel::scan_path(simd_level()),
        padded_rows: rows.row_path(),
        sq_codes: rows.code_path(),
        sq8_symmetric: rows.i8_code_path(),
        half_codes: rows.half_path(),
    }
}

/// What runs on this machine, for benchmark reports.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Level of vecdex's own blocked scan kernels.
    pub scan_kernel: SimdLevel,
    /// The path of each of this crate's kernel families.
    pub kernels: DistanceKernelPaths,
    /// simsimd backends this CPU enables (e.g. `haswell`, `skylake`, `ice`, `sapphire`).
    pub simsimd_backends: Vec<&'static str>,
    pub simsimd_dynamic_dispatch: bool,
}

pub fn capabilities() -> Capabilities {
    use simsimd::capabilities as c;
    type Probe = (&'static str, fn() -> bool);
    let checks: [Probe; 13] = [
        ("neon", c::uses_neon),
        ("neon_f16", c::uses_neon_f16),
        ("neon_bf16", c::uses_neon_bf16),
        ("neon_i8", c::uses_neon_i8),
        ("sve", c::uses_sve),
        ("sve_f16", c::uses_sve_f16),
        ("sve_bf16", c::uses_sve_bf16),
        ("haswell", c::uses_haswell),
        ("skylake", c::uses_skylake),
        ("ice", c::uses_ice),
        ("genoa", c::uses_genoa),
        ("sapphire", c::uses_sapphire),
        ("turin", c::uses_turin),
    ];
    Capabilities {
        scan_kernel: simd_level(),
        kernels: distance_kernel_paths(),
        simsimd_backends: checks
            .iter()
            .filter(|(_, f)| f())
            .map(|(n, _)| *n)
            .collect(),
        simsimd_dynamic_dispatch: c::uses_dynamic_dispatch(),
    }
}

/// Why a pairwise distance could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    LengthMismatch {
        left: usize,
        right: usize,
    },
    /// Cosine of a zero vector is undefined.
    ZeroVector,
    /// The metric does not apply to the element type (hamming on floats, cosine on bits).
    Unsupported {
        metric: Metric,
        element: ElementType,
    },
    Empty,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelError::LengthMismatch { left, right } => {
                write!(f, "vectors differ in length: {left} and {right}")
            }
            KernelError::ZeroVector => {
                f.write_str("cosine distance is undefined for a zero vector")
            }
            KernelError::Unsupported { metric, element } => {
                write!(f, "metric {metric} does not apply to {element} vectors")
            }
            KernelError::Empty => f.write_str("vectors are empty"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Element types with a simsimd spatial kernel.
pub trait SpatialElement: SpatialSimilarity + scalar::AsF64 {
    const TYPE: ElementType;
    fn is_zero(self) -> bool;
}

impl SpatialElement for f32 {
    const TYPE: ElementType = ElementType::F32;
    fn is_zero(self) -> bool {
        self == 0.0
    }
}
impl SpatialElement for i8 {
    const TYPE: ElementType = ElementType::I8;
    fn is_zero(self) -> bool {
        self == 0
    }
}
impl SpatialElement for simsimd::f16 {
    const TYPE: ElementType = ElementType::F16;
    fn is_zero(self) -> bool {
        self.0 & 0x7fff == 0
    }
}
impl SpatialElement for simsimd::bf16 {
    const TYPE: ElementType = ElementType::BF16;
    fn is_zero(self) -> bool {
        self.0 & 0x7fff == 0
    }
}

/// Both vectors must have the same, non-zero length.
fn check_lengths(left: usize, right: usize) -> Result<(), KernelError> {
    if left != right {
        return Err(KernelError::LengthMismatch { left, right });
    }
    if left == 0 {
        return Err(KernelError::Empty);
    }
    Ok(())
}

/// Distance of `a` and `b` under `metric` (see [`crate::metric`] for the convention), computed by
/// the simsimd kernel this CPU selects.
pub fn distance<T: SpatialElement>(metric: Metric, a: &[T], b: &[T]) -> Result<f64, KernelError> {
    check_lengths(a.len(), b.len())?;
    let unsupported = KernelError::Unsupported {
        metric,
        element: T::TYPE,
    };
    let value = match metric {
        Metric::Cosine => {
            if a.iter().all(|x| x.is_zero()) || b.iter().all(|x| x.is_zero()) {
                return Err(KernelError::ZeroVector);
            }
            T::cos(a, b)
        }
        Metric::Dot => T::dot(a, b).map(|d| 1.0 - d),
        Metric::L2sq => T::l2sq(a, b),
        Metric::Hamming => return Err(unsupported),
    };
    // simsimd returns None only for unequal lengths, which was checked above.
    value.ok_or(unsupported)
}

/// Hamming distance of two packed bit strings (eight dimensions per byte).
pub fn hamming(a: &[u8], b: &[u8]) -> Result<f64, KernelError> {
    check_lengths(a.len(), b.len())?;
    u8::hamming(a, b).ok_or(KernelError::LengthMismatch {
        left: a.len(),
        right: b.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reported paths follow the level the kernels run at: never a SIMD path at the scalar
    /// level, the same path for the scan and the padded rows, and only portable loops off x86-64.
    #[test]
    fn kernel_paths_follow_the_level() {
        for level in SimdLevel::available() {
            let rows = RowKernel::new(level);
            assert_eq!(crate::panel::scan_path(level), rows.row_path(), "{level:?}");
            if level == SimdLevel::Scalar {
                assert_eq!(rows.row_path(), KernelPath::Portable);
                assert_eq!(rows.code_path(), KernelPath::Portable);
                assert_eq!(rows.i8_code_path(), KernelPath::Portable);
            }
            if level == SimdLevel::Avx2 {
                assert_eq!(rows.i8_code_path(), KernelPath::Avx2);
                assert_eq!(rows.code_path(), KernelPath::Avx2Fma);
            }
            if level == SimdLevel::Scalar {
                assert_eq!(rows.half_path(), KernelPath::Portable);
            }
        }
        let best = SimdLevel::detect();
        assert_eq!(
            crate::panel::scan_path(best) == KernelPath::Portable,
            best == SimdLevel::Scalar
        );
        #[cfg(not(target_arch = "x86_64"))]
        {
            let paths = distance_kernel_paths();
            for path in [
                paths.blocked_scan,
                paths.padded_rows,
                paths.sq_codes,
                paths.sq8_symmetric,
                paths.half_codes,
            ] {
                assert_eq!(path, KernelPath::Portable);
            }
        }
    }
}
