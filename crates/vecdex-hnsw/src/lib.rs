//! Hierarchical Navigable Small World graph (Malkov & Yashunin, "Efficient and robust approximate
//! nearest neighbor search using Hierarchical Navigable Small World graphs", arXiv 1603.09320).
//!
//! The graph never owns vectors: it asks a [`Scorer`] for distances, so the same graph serves
//! f32 rows or compressed codes. Names follow the paper: `m` (links per node on upper layers,
//! `2m` on layer 0), `ef_construction`, `ef_search`, level multiplier `mL = 1/ln(m)`, and the
//! neighbour-selection heuristic (Algorithm 4).
//!
//! - [`config`]: validated parameters and the level of each slot.
//! - [`graph`]: link storage (lock-free reads, per-node locks for writes) and the entry point.
//! - [`search`]: greedy descent and the layer search (Algorithm 2) with a reusable context.
//! - [`build`]: insertion (Algorithm 1), parallel batches and compaction.
//! - [`heuristic`]: neighbour selection (Algorithm 4).
//! - [`visited`]: the generation-stamped visited set.

pub mod build;
pub mod config;
pub mod graph;
pub mod heuristic;
pub mod persist;
pub mod reach;
pub mod scorer;
pub mod search;
pub mod visited;

pub use config::{splitmix64, HnswParams, ParamError, MAX_EF, MAX_LEVEL, MAX_M, MIN_M};
pub use graph::{Graph, GraphStats, Layer0, SharedWords};
pub use persist::SavedGraph;
pub use reach::Connectivity;
pub use scorer::{QueryDistance, Scorer};
pub use search::{Scored, SearchContext};
