//! Every public option of every vecdex class, in one table: its name, kind, limits and default.
//!
//! The table is the single source of the contract. The index configs take their defaults from
//! the same constants ([`HnswConfig::new`], [`crate::multi_vector_index::default_fde`], …); the
//! binding exports the table to JS ([`tables_json`]), where the TS layer checks option objects
//! against it (unknown keys, types, ranges) before calling in, so no limit or default is written
//! twice; the README's options table is generated from it and checked by a test.
//!
//! An option set is named as its TypeScript interface (`HnswIndexOptions`, `HnswSearchOptions`,
//! …). A set may include others (`CompressionOptions` in every index's options).

use crate::compression::{Quantization, RescoreParams, MAX_OVERSAMPLE};
use crate::error::{Error, Result};
use crate::hnsw_index::{DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M, DEFAULT_SEED};
use crate::insertion_order::InsertionOrder;
use crate::multi_vector_index::{
    Strategy, DEFAULT_CANDIDATES, DEFAULT_TOKEN_NEIGHBOURS, MAX_CANDIDATES, MAX_TOKEN_NEIGHBOURS,
    MULTI_VECTOR_FDE,
};
use crate::threads::MAX_THREADS;
use crate::validate::MAX_DIMENSIONS;
use vecdex_distance::Metric;

/// Largest integer a JS number holds exactly (2^53 − 1): the bound of seeds, which cross as
/// numbers.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Largest `k` of a search (results are counted in u32).
pub const MAX_K: u64 = u32::MAX as u64;
/// Largest key: [`NO_KEY`](crate::validate::NO_KEY) is reserved (it marks the empty cells of a
/// result row).
pub const MAX_KEY: u64 = crate::validate::NO_KEY - 1;
/// Largest `trainingSize`.
pub const MAX_TRAINING_SIZE: u64 = u32::MAX as u64;
/// Largest `batchSize` of a stream: 2^24 rows per native call.
pub const MAX_STREAM_BATCH: u64 = 1 << 24;
/// Rows per native add of `addStream`, by default.
pub const DEFAULT_ADD_STREAM_BATCH: u64 = 4096;
/// Documents per native add of a multi-vector `addStream`, by default (a document is many
/// token rows).
pub const DEFAULT_DOCUMENT_STREAM_BATCH: u64 = 1024;
/// Query rows per native search of `searchStream`, by default.
pub const DEFAULT_SEARCH_STREAM_BATCH: u64 = 256;

/// What values an option takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A whole number in `min ..= max`.
    Integer {
        min: u64,
        max: u64,
    },
    /// A finite number in `min ..= max` (`min ..< max` when `max_exclusive`).
    Number {
        min: f64,
        max: f64,
        max_exclusive: bool,
    },
    Boolean,
    /// One of these names.
    Choice(&'static [&'static str]),
    /// A nested options object of the named set.
    Object(&'static str),
    /// One of `choices` by name, or an object of the named set whose `type` is one of them.
    NameOrObject {
        choices: &'static [&'static str],
        set: &'static str,
    },
    /// A vector key: a whole number in `0 ..= MAX_KEY` (a number or a bigint in JS).
    Key,
    /// An allow-list of keys (an array of keys, a BigUint64Array, or a prepared `KeyFilter`).
    Keys,
    /// An `AbortSignal`.
    Signal,
    /// A JS callback.
    Function,
    /// A metadata filter object (the filter language of [`crate::collection::filter`]).
    Filter,
    /// Vectors: rows, or one flat `Float32Array` of whole rows (checked where converted).
    Vectors,
    /// A non-empty string (a file path).
    Text,
    /// Declared metadata fields: an object mapping each field name to one of these types.
    Fields(&'static [&'static str]),
}

/// What an option is when it is not given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    /// It must be given.
    Required,
    Integer(u64),
    Number(f64),
    Boolean(bool),
    Text(&'static str),
    /// Off (no value; the feature is not used).
    Off,
    /// Depends on other settings, as the text says.
    Derived(&'static str),
}

/// One option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionSpec {
    /// camelCase, as JS spells it.
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
}

/// The options of one object, named as its TS interface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionSet {
    pub name: &'static str,
    /// Sets whose options this one also takes.
    pub includes: &'static [&'static str],
    pub options: &'static [OptionSpec],
}

const fn spec(name: &'static str, kind: Kind, default: Default) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        default,
    }
}

const fn int(min: u64, max: u64) -> Kind {
    Kind::Integer { min, max }
}

const MAX_DIMS: u64 = MAX_DIMENSIONS as u64;
const MAX_EF: u64 = vecdex_hnsw::MAX_EF as u64;
const MAX_FDE: u64 = vecdex_fde::MAX_FDE_DIMENSION as u64;

/// The metric of an index whose options name none: cosine, the usual one of text embeddings
/// (vectors are normalised when added).
const DEFAULT_METRIC: Default = Default::Text(Metric::Cosine.name());

/// The single-vector metrics, and the multi-vector ones (a Chamfer sum needs an inner product).
pub const METRICS: &[&str] = &[
    Metric::Cosine.name(),
    Metric::Dot.name(),
    Metric::L2sq.name(),
];
pub const TOKEN_METRICS: &[&str] = &[Metric::Cosine.name(), Metric::Dot.name()];
/// Every metric a pair of vectors can be compared by (`distance`), Hamming on packed bits too.
pub const ALL_METRICS: &[&str] = &[
    Metric::Cosine.name(),
    Metric::Dot.name(),
    Metric::L2sq.name(),
    Metric::Hamming.name(),
];
pub const QUANTIZATIONS: &[&str] = &[
    "none", "f16", "bf16", "sq8", "sq4", "binary", "pq", "rabitq",
];
pub const INSERTION_ORDERS: &[&str] = &["given", "random", "lid"];
pub const STRATEGIES: &[&str] = &["rerank", "walk", "tokens"];
pub const PROJECTION_TYPES: &[&str] = &["identity", "amsSketch"];
pub const DTYPES: &[&str] = &["f32", "f16", "bf16", "i8", "binary"];
pub const COLLECTION_INDEXES: &[&str] = &["hnsw", "flat"];
/// The index a collection builds unless told otherwise.
pub const DEFAULT_COLLECTION_INDEX: &str = "hnsw";
/// Items per native upsert of `upsertStream`, by default.
pub const DEFAULT_UPSERT_STREAM_BATCH: u64 = 1024;

const DIMENSIONS: OptionSpec = spec("dimensions", int(1, MAX_DIMS), Default::Required);
const K: OptionSpec = spec("k", int(1, MAX_K), Default::Required);
const FILTER: OptionSpec = spec("filter", Kind::Keys, Default::Off);
const SIGNAL: OptionSpec = spec("signal", Kind::Signal, Default::Off);
const SEED: OptionSpec = spec(
    "seed",
    int(0, MAX_SAFE_INTEGER),
    Default::Integer(DEFAULT_SEED),
);
/// Where an index (or a collection) keeps its full vectors.
const FULL_VECTORS: OptionSpec = spec(
    "fullVectors",
    Kind::NameOrObject {
        choices: &["memory"],
        set: "FullVectorsOptions",
    },
    Default::Text("memory"),
);
const GRAPH: [OptionSpec; 3] = [
    spec(
        "m",
        int(vecdex_hnsw::MIN_M as u64, vecdex_hnsw::MAX_M as u64),
        Default::Integer(DEFAULT_M as u64),
    ),
    spec(
        "efConstruction",
        int(1, MAX_EF),
        Default::Integer(DEFAULT_EF_CONSTRUCTION as u64),
    ),
    spec(
        "efSearch",
        int(1, MAX_EF),
        Default::Integer(DEFAULT_EF_SEARCH as u64),
    ),
];

/// FDE options with the given defaults (the encoder's and a multi-vector index's differ).
const fn fde_options(defaults: &vecdex_fde::FdeDefaults) -> [OptionSpec; 7] {
    [
        spec(
            "numRepetitions",
            int(1, MAX_FDE),
            Default::Integer(defaults.num_repetitions as u64),
        ),
        spec(
            "numSimhashProjections",
            int(0, vecdex_fde::MAX_SIMHASH_PROJECTIONS as u64),
            Default::Integer(defaults.num_simhash_projections as u64),
        ),
        spec(
            "seed",
            int(0, MAX_SAFE_INTEGER),
            Default::Integer(defaults.seed),
        ),
        spec(
            "projectionType",
            Kind::Choice(PROJECTION_TYPES),
            Default::Text(defaults.projection_type.name()),
        ),
        spec(
            "projectionDimension",
            int(1, MAX_FDE),
            match defaults.projection_type {
                vecdex_fde::ProjectionType::AmsSketch => {
                    Default::Integer(defaults.projection_dimension as u64)
                }
                vecdex_fde::ProjectionType::Identity => Default::Derived(
                    "the token dimension with 'identity'; FdeEncoderOptions' default with 'amsSketch' (giving a size with no projectionType picks 'amsSketch')",
                ),
            },
        ),
        spec(
            "fillEmptyPartitions",
            Kind::Boolean,
            Default::Boolean(defaults.fill_empty_partitions),
        ),
        spec("finalProjectionDimension", int(1, MAX_FDE), Default::Off),
    ]
}

const ENCODER_FDE: [OptionSpec; 7] = fde_options(&vecdex_fde::ENCODER_DEFAULTS);
const INDEX_FDE: [OptionSpec; 7] = fde_options(&MULTI_VECTOR_FDE);

/// Every option set, in the order the README lists them.
pub static OPTION_SETS: &[OptionSet] = &[
    OptionSet {
        name: "FlatIndexOptions",
        includes: &["CompressionOptions"],
        options: &[
            DIMENSIONS,
            spec("metric", Kind::Choice(METRICS), DEFAULT_METRIC),
            FULL_VECTORS,
        ],
    },
    OptionSet {
        name: "HnswIndexOptions",
        includes: &["CompressionOptions"],
        options: &[
            DIMENSIONS,
            spec("metric", Kind::Choice(METRICS), DEFAULT_METRIC),
            GRAPH[0],
            GRAPH[1],
            GRAPH[2],
            SEED,
            spec(
                "insertionOrder",
                Kind::Choice(INSERTION_ORDERS),
                Default::Text(InsertionOrder::DEFAULT.name()),
            ),
            FULL_VECTORS,
        ],
    },
    OptionSet {
        name: "FullVectorsOptions",
        includes: &[],
        options: &[spec("path", Kind::Text, Default::Required)],
    },
    OptionSet {
        name: "MultiVectorIndexOptions",
        includes: &["CompressionOptions"],
        options: &[
            DIMENSIONS,
            spec("metric", Kind::Choice(TOKEN_METRICS), DEFAULT_METRIC),
            spec("fde", Kind::Object("MultiVectorFdeOptions"), Default::Derived("see MultiVectorFdeOptions")),
            GRAPH[0],
            GRAPH[1],
            GRAPH[2],
            SEED,
            spec(
                "candidates",
                int(1, MAX_CANDIDATES as u64),
                Default::Integer(DEFAULT_CANDIDATES as u64),
            ),
            spec(
                "ballCarving",
                Kind::Number {
                    min: f64::MIN,
                    max: f64::MAX,
                    max_exclusive: false,
                },
                Default::Off,
            ),
            spec("strategy", Kind::Choice(STRATEGIES), Default::Text(Strategy::DEFAULT.name())),
            spec("fdeMetric", Kind::Choice(TOKEN_METRICS), Default::Text(crate::multi_vector_index::DEFAULT_FDE_METRIC.name())),
        ],
    },
    OptionSet {
        name: "CollectionOptions",
        includes: &["CompressionOptions"],
        options: &[
            DIMENSIONS,
            spec("metric", Kind::Choice(METRICS), DEFAULT_METRIC),
            spec("index", Kind::Choice(COLLECTION_INDEXES), Default::Text(DEFAULT_COLLECTION_INDEX)),
            spec("fields", Kind::Fields(crate::collection::FIELD_TYPES), Default::Off),
            GRAPH[0],
            GRAPH[1],
            GRAPH[2],
            SEED,
            spec(
                "insertionOrder",
                Kind::Choice(INSERTION_ORDERS),
                Default::Text(InsertionOrder::DEFAULT.name()),
            ),
            FULL_VECTORS,
        ],
    },
    OptionSet {
        name: "CompressionOptions",
        includes: &[],
        options: &[
            spec(
                "quantization",
                Kind::NameOrObject {
                    choices: QUANTIZATIONS,
                    set: "QuantizationOptions",
                },
                Default::Text(Quantization::None.name()),
            ),
            spec(
                "oversample",
                int(1, MAX_OVERSAMPLE as u64),
                Default::Derived(OVERSAMPLE_DEFAULT),
            ),
            spec(
                "trainingSize",
                int(1, MAX_TRAINING_SIZE),
                Default::Derived(TRAINING_SIZE_DEFAULT),
            ),
            spec("prefixDimensions", int(1, MAX_DIMS - 1), Default::Off),
            spec("pcaDimensions", int(1, MAX_DIMS - 1), Default::Off),
        ],
    },
    OptionSet {
        name: "QuantizationOptions",
        includes: &[],
        options: &[
            spec("type", Kind::Choice(QUANTIZATIONS), Default::Required),
            spec(
                "clipQuantile",
                Kind::Number {
                    min: 0.0,
                    max: vecdex_quant::MAX_CLIP_QUANTILE,
                    max_exclusive: true,
                },
                Default::Number(vecdex_quant::SqConfig::DEFAULT.clip_quantile),
            ),
            spec(
                "symmetric",
                Kind::Boolean,
                Default::Derived("true for 'sq8' (the query is quantized too); 'sq4' has no symmetric form"),
            ),
            spec(
                "subspaces",
                int(1, MAX_DIMS),
                Default::Derived("a quarter of the searched dimensions (at least 1)"),
            ),
            spec(
                "iterations",
                int(1, vecdex_quant::MAX_PQ_ITERATIONS as u64),
                Default::Integer(vecdex_quant::DEFAULT_PQ_ITERATIONS as u64),
            ),
            spec("bits", int(1, 4), Default::Derived(RABITQ_BITS_DEFAULT)),
        ],
    },
    OptionSet {
        name: "MultiVectorFdeOptions",
        includes: &[],
        options: &INDEX_FDE,
    },
    OptionSet {
        name: "FdeEncoderOptions",
        includes: &[],
        options: &[
            DIMENSIONS,
            ENCODER_FDE[0],
            ENCODER_FDE[1],
            ENCODER_FDE[2],
            ENCODER_FDE[3],
            ENCODER_FDE[4],
            ENCODER_FDE[5],
            ENCODER_FDE[6],
        ],
    },
    OptionSet {
        name: "SearchOptions",
        includes: &[],
        options: &[
            K,
            FILTER,
            SIGNAL,
            spec(
                "oversample",
                int(1, MAX_OVERSAMPLE as u64),
                Default::Derived("the index's oversample"),
            ),
            spec("rescore", Kind::Boolean, Default::Boolean(RescoreParams::DEFAULT.rescore)),
        ],
    },
    OptionSet {
        name: "HnswSearchOptions",
        includes: &["SearchOptions"],
        options: &[spec(
            "efSearch",
            int(1, MAX_EF),
            Default::Derived("the index's efSearch (at least k)"),
        )],
    },
    OptionSet {
        name: "MultiVectorSearchOptions",
        includes: &[],
        options: &[
            K,
            spec(
                "candidates",
                int(1, MAX_CANDIDATES as u64),
                Default::Derived("the index's candidates"),
            ),
            spec(
                "efSearch",
                int(1, MAX_EF),
                Default::Derived("the index's efSearch (at least candidates)"),
            ),
            spec(
                "ballCarving",
                Kind::Number {
                    min: f64::MIN,
                    max: f64::MAX,
                    max_exclusive: false,
                },
                Default::Derived("the index's ballCarving"),
            ),
            spec("strategy", Kind::Choice(STRATEGIES), Default::Derived("the index's strategy")),
            spec(
                "tokenNeighbours",
                int(1, MAX_TOKEN_NEIGHBOURS as u64),
                Default::Integer(DEFAULT_TOKEN_NEIGHBOURS as u64),
            ),
            FILTER,
            SIGNAL,
        ],
    },
    OptionSet {
        name: "CollectionSearchOptions",
        includes: &[],
        options: &[
            K,
            spec("filter", Kind::Filter, Default::Off),
            spec(
                "efSearch",
                int(1, MAX_EF),
                Default::Derived("the collection's efSearch (at least k)"),
            ),
            spec("includeMetadata", Kind::Boolean, Default::Boolean(true)),
            spec("includeVectors", Kind::Boolean, Default::Boolean(false)),
            SIGNAL,
            spec(
                "oversample",
                int(1, MAX_OVERSAMPLE as u64),
                Default::Derived("the collection's oversample"),
            ),
            spec("rescore", Kind::Boolean, Default::Boolean(RescoreParams::DEFAULT.rescore)),
        ],
    },
    OptionSet {
        name: "CollectionGetOptions",
        includes: &[],
        options: &[spec("includeVectors", Kind::Boolean, Default::Boolean(true))],
    },
    OptionSet {
        name: "CollectionCountOptions",
        includes: &[],
        options: &[spec("filter", Kind::Filter, Default::Off), SIGNAL],
    },
    OptionSet {
        name: "UpsertStreamOptions",
        includes: &[],
        options: &[
            spec(
                "batchSize",
                int(1, MAX_STREAM_BATCH),
                Default::Integer(DEFAULT_UPSERT_STREAM_BATCH),
            ),
            SIGNAL,
            spec("onProgress", Kind::Function, Default::Off),
        ],
    },
    OptionSet {
        name: "ExactSearchOptions",
        includes: &[],
        options: &[K, FILTER, SIGNAL],
    },
    OptionSet {
        name: "SignalOptions",
        includes: &[],
        options: &[SIGNAL],
    },
    OptionSet {
        name: "TrainSyncOptions",
        includes: &[],
        options: &[spec(
            "queries",
            Kind::Vectors,
            Default::Derived("none: a pcaDimensions reduction learns PCA"),
        )],
    },
    OptionSet {
        name: "TrainOptions",
        includes: &["TrainSyncOptions"],
        options: &[SIGNAL],
    },
    OptionSet {
        name: "AddStreamOptions",
        includes: &[],
        options: &[
            spec(
                "batchSize",
                int(1, MAX_STREAM_BATCH),
                Default::Integer(DEFAULT_ADD_STREAM_BATCH),
            ),
            spec("startKey", Kind::Key, Default::Integer(0)),
            SIGNAL,
            spec("onProgress", Kind::Function, Default::Off),
        ],
    },
    OptionSet {
        name: "DocumentStreamOptions",
        includes: &[],
        options: &[
            spec(
                "batchSize",
                int(1, MAX_STREAM_BATCH),
                Default::Integer(DEFAULT_DOCUMENT_STREAM_BATCH),
            ),
            SIGNAL,
            spec("onProgress", Kind::Function, Default::Off),
        ],
    },
    OptionSet {
        name: "SearchStreamOptions",
        includes: &[],
        options: &[spec(
            "batchSize",
            int(1, MAX_STREAM_BATCH),
            Default::Integer(DEFAULT_SEARCH_STREAM_BATCH),
        )],
    },
    OptionSet {
        name: "DistanceOptions",
        includes: &[],
        options: &[spec(
            "dtype",
            Kind::Choice(DTYPES),
            Default::Derived("from the array type: Float32Array f32, Int8Array i8, Uint8Array binary (Uint16Array needs it)"),
        )],
    },
    OptionSet {
        name: "DistanceArguments",
        includes: &[],
        options: &[spec("metric", Kind::Choice(ALL_METRICS), Default::Required)],
    },
    OptionSet {
        name: "DistanceMatrixOptions",
        includes: &[],
        options: &[
            DIMENSIONS,
            spec("metric", Kind::Choice(METRICS), Default::Required),
            SIGNAL,
        ],
    },
    OptionSet {
        name: "ConfigureOptions",
        includes: &[],
        options: &[spec(
            "threads",
            int(1, MAX_THREADS as u64),
            Default::Derived("VECDEX_THREADS, or one per CPU core"),
        )],
    },
];

/// Derived defaults in words; a test checks them against the constants they describe.
const OVERSAMPLE_DEFAULT: &str = "10 for 'pq', 'binary' and 1-bit 'rabitq', 4 otherwise";
const RABITQ_BITS_DEFAULT: &str = "1 for 'rabitq' (4: the extended codes)";
const TRAINING_SIZE_DEFAULT: &str =
    "10,000 for 'pq', 1,000 otherwise; with pcaDimensions at least 10 × dimensions (up to 32,768)";

/// The set named `name`.
pub fn set(name: &str) -> Option<&'static OptionSet> {
    OPTION_SETS.iter().find(|s| s.name == name)
}

/// Every option a set takes, its included sets' first.
pub fn options_of(set: &OptionSet) -> Vec<&'static OptionSpec> {
    let mut all = Vec::new();
    for included in set.includes {
        if let Some(inner) = self::set(included) {
            all.extend(options_of(inner));
        }
    }
    // Safety of 'static: every set lives in the static table.
    let own: &'static [OptionSpec] = match self::set(set.name) {
        Some(s) => s.options,
        None => &[],
    };
    all.extend(own.iter());
    all
}

/// The option `name` of set `set_name`.
pub fn spec_of(set_name: &str, name: &str) -> Option<&'static OptionSpec> {
    let set = set(set_name)?;
    options_of(set).into_iter().find(|o| o.name == name)
}

/// The error for an option name a set does not take: it names the key and the closest valid
/// one ("did you mean efSearch?"), or lists the valid ones when none is close.
pub fn unknown_option(set_name: &str, key: &str) -> Error {
    let names: Vec<&str> = set(set_name)
        .map(|s| options_of(s).iter().map(|o| o.name).collect())
        .unwrap_or_default();
    let shown = key.chars().take(64).collect::<String>();
    match closest(key, &names) {
        Some(near) => Error::invalid(format!(
            "unknown option '{shown}' in {set_name}: did you mean {near}?"
        )),
        None => Error::invalid(format!(
            "unknown option '{shown}' in {set_name}: it takes {}",
            names.join(", ")
        )),
    }
}

/// The candidate closest to `name` by edit distance, when it is close enough to be a slip: at
/// most a third of the longer name's letters, ignoring case (`ef` → `efSearch` by prefix too).
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &candidate in candidates {
        let other = candidate.to_lowercase();
        let distance = if other.starts_with(&lower) && lower.len() >= 2 {
            // A prefix ("ef" for "efSearch") counts as one edit: the user shortened the name.
            1
        } else {
            edit_distance(&lower, &other)
        };
        let limit = (lower.chars().count().max(other.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions (optimal string alignment), over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = best;
        }
    }
    rows[a.len() * width + b.len()]
}

/// Checks an integer option given as a JS number against its spec: the one place a numeric
/// option's range is enforced for values that reach the core.
pub fn integer(set_name: &str, name: &str, value: f64) -> Result<u64> {
    let Some(OptionSpec {
        kind: Kind::Integer { min, max },
        ..
    }) = spec_of(set_name, name)
    else {
        return Err(Error::Internal(format!(
            "{set_name}.{name} is not an integer option"
        )));
    };
    if !(value.fract() == 0.0 && value >= *min as f64 && value <= *max as f64) {
        return Err(Error::invalid(format!(
            "{name} must be an integer from {min} to {max}, got {value}"
        )));
    }
    Ok(value as u64)
}

/// Checks a choice option: the name, or ERR_INVALID_ARGUMENT listing the choices.
pub fn choice(name: &str, value: &str, choices: &[&'static str]) -> Result<&'static str> {
    choices
        .iter()
        .copied()
        .find(|c| *c == value)
        .ok_or_else(|| {
            let listed = choices
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let shown = value.chars().take(64).collect::<String>();
            Error::invalid(format!("{name} must be one of {listed}, got '{shown}'"))
        })
}

/// The whole table as JSON, for the binding to hand to JS:
/// `{ "SetName": { "includes": [..], "options": { "name": { "kind": .., "min": .., .. } } } }`.
pub fn tables_json() -> String {
    let mut out = String::from("{");
    for (i, set) in OPTION_SETS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"{}\":{{\"includes\":[", set.name));
        out.push_str(&quoted_list(set.includes));
        out.push_str("],\"options\":{");
        for (j, option) in set.options.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!("\"{}\":{{{}}}", option.name, spec_json(option)));
        }
        out.push_str("}}");
    }
    out.push('}');
    out
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// A number as JSON: integers above 2^53 (no such bound today) would lose precision in JS,
/// so bounds are printed exactly as integers.
fn spec_json(option: &OptionSpec) -> String {
    let kind = match option.kind {
        Kind::Integer { min, max } => format!("\"kind\":\"integer\",\"min\":{min},\"max\":{max}"),
        Kind::Number {
            min,
            max,
            max_exclusive,
        } => {
            // Unbounded sides are omitted: JSON has no infinities.
            let mut s = String::from("\"kind\":\"number\"");
            if min > f64::MIN {
                s.push_str(&format!(",\"min\":{min}"));
            }
            if max < f64::MAX {
                s.push_str(&format!(",\"max\":{max}"));
            }
            if max_exclusive {
                s.push_str(",\"maxExclusive\":true");
            }
            s
        }
        Kind::Boolean => "\"kind\":\"boolean\"".into(),
        Kind::Choice(choices) => {
            format!("\"kind\":\"choice\",\"choices\":[{}]", quoted_list(choices))
        }
        Kind::Object(set) => format!("\"kind\":\"object\",\"set\":\"{set}\""),
        Kind::NameOrObject { choices, set } => format!(
            "\"kind\":\"nameOrObject\",\"choices\":[{}],\"set\":\"{set}\"",
            quoted_list(choices)
        ),
        Kind::Key => format!("\"kind\":\"key\",\"min\":0,\"max\":\"{MAX_KEY}\""),
        Kind::Keys => "\"kind\":\"keys\"".into(),
        Kind::Signal => "\"kind\":\"signal\"".into(),
        Kind::Function => "\"kind\":\"function\"".into(),
        Kind::Filter => "\"kind\":\"filter\"".into(),
        Kind::Vectors => "\"kind\":\"vectors\"".into(),
        Kind::Text => "\"kind\":\"text\"".into(),
        Kind::Fields(types) => {
            format!("\"kind\":\"fields\",\"choices\":[{}]", quoted_list(types))
        }
    };
    let default = match option.default {
        Default::Required => "\"required\":true".to_string(),
        Default::Integer(v) => format!("\"default\":{v}"),
        Default::Number(v) => format!("\"default\":{v}"),
        Default::Boolean(v) => format!("\"default\":{v}"),
        Default::Text(v) => format!("\"default\":\"{v}\""),
        Default::Off => "\"off\":true".to_string(),
        Default::Derived(text) => format!("\"derived\":\"{}\"", text.replace('"', "'")),
    };
    format!("{kind},{default}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_included_set_exists_and_names_are_unique() {
        for set in OPTION_SETS {
            for included in set.includes {
                assert!(
                    self::set(included).is_some(),
                    "{} includes {included}",
                    set.name
                );
            }
            let names: Vec<_> = options_of(set).iter().map(|o| o.name).collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{}: {names:?}", set.name);
            for option in options_of(set) {
                match option.kind {
                    Kind::Object(s) | Kind::NameOrObject { set: s, .. } => {
                        assert!(self::set(s).is_some(), "{}.{} → {s}", set.name, option.name)
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn derived_defaults_name_the_constants_they_describe() {
        use crate::compression::{COARSE_OVERSAMPLE, DEFAULT_OVERSAMPLE};
        assert_eq!((COARSE_OVERSAMPLE, DEFAULT_OVERSAMPLE), (10, 4));
        assert!(OVERSAMPLE_DEFAULT.contains(&COARSE_OVERSAMPLE.to_string()));
        assert!(OVERSAMPLE_DEFAULT.contains(&DEFAULT_OVERSAMPLE.to_string()));
        use crate::compression::{Compression, Quantization};
        let rabitq = |bits| Compression {
            quantization: Quantization::Rabitq { bits },
            ..Compression::default()
        };
        assert_eq!(
            (rabitq(1).oversample(), rabitq(4).oversample()),
            (COARSE_OVERSAMPLE, DEFAULT_OVERSAMPLE)
        );
        assert!(RABITQ_BITS_DEFAULT.starts_with(&format!(
            "{} for",
            crate::compression::DEFAULT_RABITQ_BITS
        )));
        let pq = Compression {
            quantization: Quantization::Pq(vecdex_quant::PqConfig::new(8)),
            ..Compression::default()
        };
        let sq = Compression {
            quantization: Quantization::Sq8(vecdex_quant::SqConfig::default()),
            ..Compression::default()
        };
        assert_eq!(
            (pq.training_size(100), sq.training_size(100)),
            (
                crate::compression::PQ_TRAINING_SIZE,
                crate::compression::TRAINING_SIZE
            )
        );
        assert!(TRAINING_SIZE_DEFAULT.starts_with("10,000 for 'pq', 1,000"));
        use crate::compression::{Reduction, AUTO_TRAINING_SAMPLE, PCA_ROWS_PER_DIMENSION};
        let pca = |quantization| Compression {
            quantization,
            reduction: Reduction::Pca(64),
            ..Compression::default()
        };
        let sq_pca = pca(sq.quantization);
        let pq_pca = pca(pq.quantization);
        // 768 dimensions: 7,680 rows for the covariance, above both codecs' own sizes but PQ's.
        assert_eq!(sq_pca.training_size(768), 7_680);
        assert_eq!(
            pq_pca.training_size(768),
            crate::compression::PQ_TRAINING_SIZE
        );
        assert_eq!(sq_pca.training_size(50), crate::compression::TRAINING_SIZE);
        assert_eq!(sq_pca.training_size(100_000), AUTO_TRAINING_SAMPLE);
        let configured = Compression {
            training_size: Some(500),
            ..sq_pca
        };
        assert_eq!(configured.training_size(768), 500);
        assert!(TRAINING_SIZE_DEFAULT.contains(&format!("{PCA_ROWS_PER_DIMENSION} × dimensions")));
        assert!(TRAINING_SIZE_DEFAULT.contains("32,768") && AUTO_TRAINING_SAMPLE == 32_768);
    }

    #[test]
    fn closest_names_catch_slips_and_nothing_else() {
        let hnsw: Vec<_> = options_of(set("HnswSearchOptions").unwrap())
            .iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(closest("ef", &hnsw), Some("efSearch"));
        assert_eq!(closest("efsearch", &hnsw), Some("efSearch"));
        assert_eq!(closest("efSerach", &hnsw), Some("efSearch"));
        assert_eq!(closest("filters", &hnsw), Some("filter"));
        assert_eq!(closest("colour", &hnsw), None);
        let mv: Vec<_> = options_of(set("MultiVectorSearchOptions").unwrap())
            .iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(closest("tokenNeighbors", &mv), Some("tokenNeighbours"));
        let message = unknown_option("HnswSearchOptions", "ef").to_string();
        assert!(
            message.contains("'ef'") && message.contains("did you mean efSearch?"),
            "{message}"
        );
    }

    #[test]
    fn integers_are_checked_against_the_table() {
        assert_eq!(integer("HnswIndexOptions", "m", 16.0).unwrap(), 16);
        for bad in [1.0, 257.0, 16.5, f64::NAN, f64::INFINITY, -1.0] {
            let error = integer("HnswIndexOptions", "m", bad).unwrap_err();
            assert_eq!(error.code(), "ERR_INVALID_ARGUMENT", "{bad}");
        }
    }

    #[test]
    fn the_json_table_parses_as_the_sets_it_lists() {
        let json = tables_json();
        for set in OPTION_SETS {
            assert!(json.contains(&format!("\"{}\":{{", set.name)));
        }
        assert!(json.contains("\"m\":{\"kind\":\"integer\",\"min\":2,\"max\":256,\"default\":16}"));
    }
}
