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

use rayon::prelude::*;

use crate::config::HnswParams;
use crate::graph::{Graph, Layer0};

/// Saved graph words, as read from a file.
#[derive(Debug)]
pub struct SavedGraph<'a> {
    /// Nodes saved (`0 .. used`).
    pub used: usize,
    /// Layer-0 words (in machine order), taken over by the graph: owned (a load) or a
    /// read-only mapping (a view).
    pub layer0: Layer0,
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

/// Nodes per parallel job of the layer-0 check.
const CHECK_CHUNK: usize = 4096;

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
        held: &(dyn Fn(u32) -> bool + Sync),
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
        let words = match &layer0 {
            Layer0::Owned(words) => words.as_slice(),
            Layer0::Shared(shared) => shared.words(),
        };
        if used.checked_mul(stride0) != Some(words.len()) {
            return Err(format!(
                "layer 0 has {} words, not {used} nodes × {stride0}",
                words.len()
            ));
        }
        let mut graph = Graph::new(params);
        // Levels first (they size the upper lists); links are installed below.
        graph.reserve_levels(used);
        let stride_up = 1 + params.m;
        let upper_words: usize = (0..used as u32).map(|n| graph.level(n) * stride_up).sum();
        if upper.len() != upper_words * 4 {
            return Err(format!(
                "upper layers have {} bytes, not the {upper_words} words the node levels need",
                upper.len()
            ));
        }
        let levels = &graph;
        let check_list = |node: u32,
                          layer: usize,
                          list: &[AtomicU32],
                          max: usize|
         -> Result<(), String> {
            let count = list[0].load(Ordering::Relaxed) as usize;
            if count > max {
                return Err(format!(
                    "node {node} has {count} links on layer {layer}, above its {max}"
                ));
            }
            if count > 0 && !held(node) {
                return Err(format!("free node {node} has links on layer {layer}"));
            }
            for id in &list[1..=count] {
                let id = id.load(Ordering::Relaxed);
                if id as usize >= used || id == node {
                    return Err(format!(
                        "node {node} links to {id} on layer {layer} (nodes are 0 .. {used}, not itself)"
                    ));
                }
                if !held(id) {
                    return Err(format!("node {node} links to free node {id}"));
                }
                if layer > 0 && levels.level(id) < layer {
                    return Err(format!(
                        "node {node} links to {id} on layer {layer}, above that node's level"
                    ));
                }
            }
            Ok(())
        };
        words
            .par_chunks(stride0 * CHECK_CHUNK)
            .enumerate()
            .try_for_each(|(chunk, lists)| {
                lists
                    .chunks_exact(stride0)
                    .enumerate()
                    .try_for_each(|(i, list)| {
                        check_list((chunk * CHECK_CHUNK + i) as u32, 0, list, 2 * params.m)
                    })
            })?;
        let upper_lists: Vec<u32> = (0..upper.len() / 4).map(|i| word(upper, i)).collect();
        let upper_atomic: Vec<AtomicU32> = upper_lists.iter().map(|&w| AtomicU32::new(w)).collect();
        let mut at = 0;
        for node in 0..used as u32 {
            for layer in 1..=graph.level(node) {
                check_list(node, layer, &upper_atomic[at..at + stride_up], params.m)?;
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
        graph.fill_links(used, layer0, &upper_lists);
        graph.set_entry(entry.map(|n| (n, graph.level(n))));
        Ok(graph)
    }
}

/// Words as atomics, without copying.
pub(crate) fn into_atomic(words: Vec<u32>) -> Vec<AtomicU32> {
    let mut words = std::mem::ManuallyDrop::new(words);
    // SAFETY: `AtomicU32` has the same size, alignment and bit validity as `u32`; the vector's
    // allocation is handed over whole (pointer, length, capacity) and never used again.
    unsafe {
        Vec::from_raw_parts(
            words.as_mut_ptr().cast::<AtomicU32>(),
            words.len(),
            words.capacity(),
        )
    }
}
