//! Graph walks: greedy descent through the upper layers and the layer search of the paper's
//! Algorithm 2, with a context (visited set, heaps, buffers) reused across calls.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::graph::Graph;
use crate::scorer::QueryDistance;
use crate::visited::VisitedSet;

/// Neighbours whose data is requested ahead of scoring them.
const PREFETCH_AHEAD: usize = 6;

/// A node and its distance to the query; ordered by distance, then id (total order, NaN last).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub distance: f32,
    pub node: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Scored {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Scored {
    /// A u64 with the same order as `Scored` (distance by IEEE total order, then node), so the
    /// walk's heaps compare plain integers.
    #[inline]
    fn key(self) -> u64 {
        let bits = self.distance.to_bits();
        // Negative floats: flip every bit; positive: flip the sign bit (monotone in value).
        let ordered = bits ^ ((((bits as i32) >> 31) as u32) | 0x8000_0000);
        (u64::from(ordered) << 32) | u64::from(self.node)
    }

    #[inline]
    fn from_key(key: u64) -> Scored {
        let ordered = (key >> 32) as u32;
        let bits = if ordered & 0x8000_0000 != 0 {
            ordered ^ 0x8000_0000
        } else {
            !ordered
        };
        Scored {
            distance: f32::from_bits(bits),
            node: key as u32,
        }
    }
}

/// Scratch space of one walk. Get one from [`Graph::with_context`].
#[derive(Debug, Default)]
pub struct SearchContext {
    pub(crate) visited: VisitedSet,
    /// Nodes to expand, nearest on top ([`Scored::key`] order).
    candidates: BinaryHeap<Reverse<u64>>,
    /// The best admitted nodes so far, worst on top.
    results: BinaryHeap<u64>,
    pub(crate) neighbors: Vec<u32>,
    pub(crate) capacity: usize,
}

impl SearchContext {
    pub(crate) fn prepare(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    pub(crate) fn bytes(&self) -> usize {
        self.visited.bytes()
            + (self.candidates.capacity() + self.results.capacity()) * std::mem::size_of::<Scored>()
            + self.neighbors.capacity() * 4
    }

    /// The results of the last [`Graph::search_layer`], best first (consumes them).
    pub(crate) fn take_sorted(&mut self, out: &mut Vec<Scored>) {
        out.clear();
        out.extend(self.results.drain().map(Scored::from_key));
        out.sort_unstable();
    }
}

impl Graph {
    /// From `start` on layer `from`, moves greedily to ever closer nodes down to layer `to`
    /// (exclusive): the paper's search with `ef = 1` on each upper layer.
    pub(crate) fn descend<Q: QueryDistance>(
        &self,
        query: &Q,
        start: Scored,
        from: usize,
        to: usize,
        ctx: &mut SearchContext,
    ) -> Scored {
        let mut best = start;
        for layer in (to + 1..=from).rev() {
            loop {
                ctx.neighbors.clear();
                self.neighbors_into(best.node, layer, &mut ctx.neighbors);
                let mut moved = false;
                for &node in &ctx.neighbors {
                    let distance = query.distance(node);
                    if distance < best.distance {
                        best = Scored { distance, node };
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        best
    }

    /// Algorithm 2: the `ef` nearest admitted nodes reachable on `layer` from `entries`, left in
    /// the context's result heap. Every reachable node may be walked through; only nodes with
    /// `admit(node)` enter the results, so filters and deletions keep the graph navigable.
    pub(crate) fn search_layer<Q: QueryDistance, A: Fn(u32) -> bool>(
        &self,
        query: &Q,
        entries: &[Scored],
        layer: usize,
        ef: usize,
        ctx: &mut SearchContext,
        admit: &A,
    ) {
        self.search_layer_within(query, entries, layer, ef, ctx, admit, usize::MAX);
    }

    /// [`search_layer`](Self::search_layer) that stops once it has scored more than `budget`
    /// nodes; returns whether it finished within it.
    #[allow(clippy::too_many_arguments)] // search_layer's, and the budget
    pub(crate) fn search_layer_within<Q: QueryDistance, A: Fn(u32) -> bool>(
        &self,
        query: &Q,
        entries: &[Scored],
        layer: usize,
        ef: usize,
        ctx: &mut SearchContext,
        admit: &A,
        budget: usize,
    ) -> bool {
        let mut scored = 0usize;
        ctx.visited.clear(ctx.capacity);
        ctx.candidates.clear();
        ctx.results.clear();
        for &entry in entries {
            if ctx.visited.insert(entry.node) {
                ctx.candidates.push(Reverse(entry.key()));
                if admit(entry.node) {
                    ctx.results.push(entry.key());
                    if ctx.results.len() > ef {
                        ctx.results.pop();
                    }
                }
            }
        }
        let mut bound = worst(&ctx.results, ef);
        while let Some(Reverse(current)) = ctx.candidates.pop() {
            let current = Scored::from_key(current);
            if current.distance > bound {
                break;
            }
            ctx.neighbors.clear();
            self.neighbors_into(current.node, layer, &mut ctx.neighbors);
            ctx.neighbors.retain(|&n| ctx.visited.insert(n));
            scored += ctx.neighbors.len();
            if scored > budget {
                return false;
            }
            for &n in ctx.neighbors.iter().take(PREFETCH_AHEAD) {
                query.prefetch(n);
            }
            // The list of the next node to expand is fetched ahead: the current best candidate's
            // now, and any neighbour that overtakes it as soon as it is scored.
            let mut next_best = ctx.candidates.peek().map_or(u64::MAX, |&Reverse(key)| key);
            if next_best != u64::MAX {
                self.prefetch_links(next_best as u32, layer);
            }
            for i in 0..ctx.neighbors.len() {
                if let Some(&ahead) = ctx.neighbors.get(i + PREFETCH_AHEAD) {
                    query.prefetch(ahead);
                }
                let node = ctx.neighbors[i];
                let distance = query.distance(node);
                if distance < bound || ctx.results.len() < ef {
                    let key = Scored { distance, node }.key();
                    if key < next_best {
                        next_best = key;
                        self.prefetch_links(node, layer);
                    }
                    ctx.candidates.push(Reverse(key));
                    if admit(node) {
                        ctx.results.push(key);
                        if ctx.results.len() > ef {
                            ctx.results.pop();
                        }
                        bound = worst(&ctx.results, ef);
                    }
                }
            }
        }
        true
    }

    /// The `k` nearest admitted nodes to `query`, best first, exploring `max(ef, k)` candidates
    /// on layer 0 after a greedy descent from the entry point.
    pub fn search<Q: QueryDistance, A: Fn(u32) -> bool>(
        &self,
        query: &Q,
        k: usize,
        ef: usize,
        admit: &A,
        ctx: &mut SearchContext,
        out: &mut Vec<Scored>,
    ) {
        self.search_within(query, k, ef, admit, usize::MAX, ctx, out);
    }

    /// [`search`](Self::search) that gives up once layer 0 has scored more than `budget` nodes
    /// (a filter whose admitted nodes lie far from the query can make a walk visit most of the
    /// graph): returns false then, with `out` empty, for the caller to take another way.
    #[allow(clippy::too_many_arguments)] // search's, and the budget
    pub fn search_within<Q: QueryDistance, A: Fn(u32) -> bool>(
        &self,
        query: &Q,
        k: usize,
        ef: usize,
        admit: &A,
        budget: usize,
        ctx: &mut SearchContext,
        out: &mut Vec<Scored>,
    ) -> bool {
        out.clear();
        let Some((entry, top)) = self.entry() else {
            return true;
        };
        let start = Scored {
            distance: query.distance(entry),
            node: entry,
        };
        let nearest = self.descend(query, start, top, 0, ctx);
        if !self.search_layer_within(query, &[nearest], 0, ef.max(k), ctx, admit, budget) {
            return false;
        }
        ctx.take_sorted(out);
        out.truncate(k);
        true
    }
}

/// The distance a newcomer must beat: the worst result once `ef` are held, else +∞.
#[inline]
fn worst(results: &BinaryHeap<u64>, ef: usize) -> f32 {
    if results.len() < ef {
        f32::INFINITY
    } else {
        results
            .peek()
            .map_or(f32::INFINITY, |&key| Scored::from_key(key).distance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_scored() {
        let values = [
            f32::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-30,
            0.5,
            2.0,
            f32::INFINITY,
            f32::NAN,
        ];
        let mut all: Vec<Scored> = Vec::new();
        for (i, &distance) in values.iter().enumerate() {
            for node in [0u32, 7, u32::MAX] {
                all.push(Scored {
                    distance,
                    node: node ^ i as u32,
                });
            }
        }
        for a in &all {
            assert_eq!(
                Scored::from_key(a.key()).distance.to_bits(),
                a.distance.to_bits()
            );
            for b in &all {
                assert_eq!(a.key().cmp(&b.key()), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
