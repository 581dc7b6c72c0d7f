//! Metrics and the one distance convention used everywhere in vecdex.
//!
//! **Lower is closer.** Every kernel, index and result in vecdex returns a distance where a
//! smaller value means a better match:
//!
//! | metric    | distance returned                  | range for unit vectors |
//! |-----------|------------------------------------|------------------------|
//! | `cosine`  | `1 − ⟨a,b⟩ / (‖a‖·‖b‖)`            | `[0, 2]`               |
//! | `dot`     | `1 − ⟨a,b⟩` (as usearch, hnswlib)  | `[0, 2]`               |
//! | `l2sq`    | `Σ (aᵢ − bᵢ)²` (squared Euclidean) | `[0, 4]`               |
//! | `hamming` | number of differing bits           | `[0, bits]`            |
//!
//! Cosine is undefined for a zero vector; callers get an error rather than a made-up value.
//! Indexes store cosine vectors normalised at insert time, so cosine search is `1 − ⟨q̂, x̂⟩`.

use std::fmt;
use std::str::FromStr;

/// A distance metric. See the module docs for the convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Cosine,
    Dot,
    L2sq,
    Hamming,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Cosine, Metric::Dot, Metric::L2sq, Metric::Hamming];

    /// The name used in JS and in files.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2sq => "l2sq",
            Metric::Hamming => "hamming",
        }
    }

    /// Whether the metric applies to real-valued (float or i8) vectors.
    pub fn is_spatial(self) -> bool {
        !matches!(self, Metric::Hamming)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name was not one of `cosine`, `dot`, `l2sq`, `hamming`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMetric(pub String);

impl fmt::Display for UnknownMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown metric {:?}: expected one of cosine, dot, l2sq, hamming",
            self.0
        )
    }
}

impl std::error::Error for UnknownMetric {}

impl FromStr for Metric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMetric(s.to_string()))
    }
}

/// Element types the kernels accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    F32,
    /// IEEE 754 binary16, stored as raw `u16` bits.
    F16,
    /// bfloat16 (the top 16 bits of an f32), stored as raw `u16` bits.
    BF16,
    I8,
    /// Packed bits, eight dimensions per byte; only `hamming` applies.
    Binary,
}

impl ElementType {
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
            ElementType::BF16 => "bf16",
            ElementType::I8 => "i8",
            ElementType::Binary => "binary",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
