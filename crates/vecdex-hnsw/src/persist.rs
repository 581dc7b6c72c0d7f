//! The graph as saved, and rebuilt from saved words after checking every link.
//!
//! Saved form of nodes `0 .. used` (little-endian u32 words):
//! - layer 0: `used × (1 + 2m)` words, node `v` at `v·(1 + 2m)`: link count, then `2m` id slots
//!   (slots past the count are ignored);
//! - upper layers: for each node of level `l ≥ 1`, in node order, `l × (1 + m)` words for
//!   layers `1 ..= l`, each a count then `m` id slots.
//!
//! Levels are not saved: they are a function of the seed and the slot
//! ([`HnswParams::level_of`]), so a file cannot disagree with them.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::HnswParams;
use crate::graph::Graph;

/// Saved graph words, borrowed from a file.
#[derive(Debug, Clone, Copy)]
pub struct SavedGraph<'a> {
    /// Nodes saved (`0 .. used`).
    pub used: usize,
    /// Layer-0 words as little-endian bytes.
    pub layer0: &'a [u8],
    /// Upper-layer words as little-endian bytes.
    pub upper: &'a [u8],
    /// Entry point node, if any; its level is its own.
    pub entry: Option<u32>,
}

fn word(bytes: &[u8], index: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[index * 4..index * 4 + 4]);
    u32::from_le_bytes(b)
}

impl Graph {
    /// Layer-0 words of nodes `0 .. used` as little-endian bytes (a snapshot: links written
    /// meanwhile by another thread may or may not be in it, and every id in it is a node).
    pub fn saved_layer0(&self, used: usize) -> Vec<u8> {
        let words = &self.layer0_words()[..used.min(self.capacity()) * self.layer0_stride()];
        let mut out = Vec::with_capacity(words.len() * 4);
        for w in words {
            out.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
        }
        out
    }

    /// Upper-layer words of nodes `0 .. used` as little-endian bytes (see the module docs).
    pub fn saved_upper(&self, used: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for node in 0..used.min(self.capacity()) {
            for w in self.upper_words(node as u32) {
                out.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
            }
        }
        out
    }

    /// Rebuilds a graph from saved words. Every rule a walk relies on is checked first: sizes
    /// equal to the node count times the list sizes (checked arithmetic), link counts within
    /// the layer's capacity, ids below `used` and not the node itself, every link on layer `l`
    /// leading to a node that has layer `l`, links only between nodes `held` admits, and an
    /// entry point that is a held node (present whenever some node is held).
    pub fn from_saved(
        params: HnswParams,
        saved: SavedGraph<'_>,
        held: &dyn Fn(u32) -> bool,
    ) -> Result<Graph, String> {
        let SavedGraph {
            used,
            layer0,
            upper,
            entry,
        } = saved;
        if used > u32::MAX as usize {
            return Err(format!("{used} nodes exceed the 2^32 − 1 a graph holds"));
        }
        let stride0 = 1 + 2 * params.m;
        let expected0 = used.checked_mul(stride0 * 4);
        if expected0 != Some(layer0.len()) {
            return Err(format!(
                "layer 0 has {} bytes, not {used} nodes × {stride0} words",
                layer0.len()
            ));
        }
        let mut graph = Graph::new(params);
        // Levels first (they size the upper lists); links are stored below.
        graph.reserve_levels(used);
        let stride_up = 1 + params.m;
        let upper_words: usize = (0..used as u32).map(|n| graph.level(n) * stride_up).sum();
        if upper.len() != upper_words * 4 {
            return Err(format!(
                "upper layers have {} bytes, not the {upper_words} words the node levels need",
                upper.len()
            ));
        }
        let check_list = |node: u32, layer: usize, list: &[u8], max: usize| -> Result<(), String> {
            let count = word(list, 0) as usize;
            if count > max {
                return Err(format!(
                    "node {node} has {count} links on layer {layer}, above its {max}"
                ));
            }
            let node_held = held(node);
            if !node_held && count > 0 {
                return Err(format!("free node {node} has links on layer {layer}"));
            }
            for i in 1..=count {
                let id = word(list, i);
                if id as usize >= used || id == node {
                    return Err(format!(
                        "node {node} links to {id} on layer {layer} (nodes are 0 .. {used}, not itself)"
                    ));
                }
                if !held(id) {
                    return Err(format!("node {node} links to free node {id}"));
                }
                if graph.level(id) < layer {
                    return Err(format!(
                        "node {node} links to {id} on layer {layer}, above that node's level"
                    ));
                }
            }
            Ok(())
        };
        for node in 0..used {
            let list = &layer0[node * stride0 * 4..(node + 1) * stride0 * 4];
            check_list(node as u32, 0, list, 2 * params.m)?;
        }
        let mut at = 0;
        for node in 0..used as u32 {
            for layer in 1..=graph.level(node) {
                let list = &upper[at * 4..(at + stride_up) * 4];
                check_list(node, layer, list, params.m)?;
                at += stride_up;
            }
        }
        match entry {
            Some(node) if node as usize >= used || !held(node) => {
                return Err(format!("entry point {node} is not a held node"));
            }
            None if (0..used as u32).any(held) => {
                return Err("the graph holds nodes but has no entry point".into());
            }
            _ => {}
        }
        graph.fill_links(used, layer0, upper);
        graph.set_entry(entry.map(|n| (n, graph.level(n))));
        Ok(graph)
    }
}

/// Decodes little-endian words into atomics.
pub(crate) fn atomic_words(bytes: &[u8]) -> impl Iterator<Item = AtomicU32> + '_ {
    bytes.chunks_exact(4).map(|w| {
        let mut b = [0u8; 4];
        b.copy_from_slice(w);
        AtomicU32::new(u32::from_le_bytes(b))
    })
}
