//! Connectivity of layer 0. A search descends to some node of layer 0 and walks links from
//! there, so it can find every node only if layer 0 is strongly connected: every node is
//! reachable from the entry point (no node is *unreachable*) and the entry point is reachable
//! from every node (no node is a *dead end*, in a region a walk enters and never leaves).
//!
//! Local rules cannot promise this. Pruning a full list drops links; a node's remaining
//! in-links may all come from nodes that are cut off themselves, and a group of nodes may end
//! up linking only among themselves (many copies of one vector do). Two threads pruning at
//! once, or a compaction, can drop the last links into or out of a group. So every write ends
//! with [`Graph::reconnect`]:
//! - The cheap proof: the write recorded every layer-0 link it cut (`Graph::cut_links`). If the
//!   graph was strongly connected before, and a short walk from each cut link's source still
//!   reaches its target, it still is (see `cuts_rerouted`).
//! - Otherwise (a large batch, a compaction, a load, or a cut with no short way around), the
//!   whole check: the strongly connected components of layer 0 from the entry point (Tarjan,
//!   "Depth-first search and linear graph algorithms", SIAM J. Comput. 1972), and as few new
//!   links as they need: one into each part no walk reaches, one out of each bottom component
//!   that cannot walk back. It reads each link once: about 40 ms per 100,000 GloVe nodes on a
//!   2-core VM.

use std::sync::atomic::Ordering;

use crate::graph::Graph;
use crate::scorer::{QueryDistance, Scorer};
use crate::search::Scored;

/// Repair rounds before [`Graph::reconnect`] gives up: links into unreached parts, then out of
/// bottom components, then a check that finds nothing left make three.
const MAX_ROUNDS: usize = 8;

/// Past `capacity / CUTS_PER_WHOLE_CHECK` cut links (a large batch), one walk over the whole
/// graph costs less than a bounded walk per cut link.
const CUTS_PER_WHOLE_CHECK: usize = 16;

/// Nodes a walk looking for a path around one cut link expands before it gives up (and the
/// whole graph is checked instead). The pruning that cuts a link `a → v` keeps a node nearer to
/// `v`, which usually links to it, so most paths are two links long; on GloVe a bound of 512
/// still sent a third of small adds to the whole check.
const REROUTE_VISITS: usize = 16_384;

/// `Tarjan::index` of a node the walk has not visited.
const UNVISITED: u32 = u32::MAX;

/// A set of node ids below a fixed capacity.
struct NodeSet(Vec<u64>);

impl NodeSet {
    fn new(capacity: usize) -> Self {
        NodeSet(vec![0; capacity.div_ceil(64)])
    }

    #[inline]
    fn contains(&self, node: u32) -> bool {
        self.0
            .get(node as usize / 64)
            .is_some_and(|word| word >> (node % 64) & 1 == 1)
    }

    /// Adds `node`; true if it was not there.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        match self.0.get_mut(node as usize / 64) {
            Some(word) if *word >> (node % 64) & 1 == 0 => {
                *word |= 1 << (node % 64);
                true
            }
            _ => false,
        }
    }
}

/// Layer 0 as seen from the entry point.
struct Components {
    /// Nodes a walk from the entry point reaches.
    reached: NodeSet,
    /// Reached nodes that can walk back to the entry point (its strongly connected component).
    rooted: NodeSet,
    /// The members of each bottom component other than the entry point's: reached, but no link
    /// leaves it. Every other reached node that cannot walk back leads into one of these.
    bottoms: Vec<Vec<u32>>,
}

/// Health of layer 0 (see the module docs), over the nodes a caller counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connectivity {
    /// Counted nodes no walk from the entry point reaches: no search can return them.
    pub unreachable: usize,
    /// Counted nodes reached from the entry point that cannot walk back to it: a search that
    /// descends to one of them explores only the part of the graph it leads to.
    pub dead_ends: usize,
}

impl Graph {
    /// The counted nodes below `used` that are unreachable or dead ends on layer 0.
    pub fn connectivity(&self, used: usize, counted: &dyn Fn(u32) -> bool) -> Connectivity {
        let used = used.min(self.capacity()) as u32;
        let parts = self.components();
        let mut health = Connectivity::default();
        for node in (0..used).filter(|&n| counted(n)) {
            if !parts.reached.contains(node) {
                health.unreachable += 1;
            } else if !parts.rooted.contains(node) {
                health.dead_ends += 1;
            }
        }
        health
    }

    /// The `i`-th link of `node` on layer 0, if it has that many.
    #[inline]
    fn link0(&self, node: u32, i: usize) -> Option<u32> {
        let stride = self.layer0_stride();
        let list = &self.layer0_words()[node as usize * stride..][..stride];
        let count = (list[0].load(Ordering::Acquire) as usize).min(stride - 1);
        (i < count).then(|| list[1 + i].load(Ordering::Acquire))
    }

    /// Tarjan's strongly connected components of layer 0, from the entry point, without
    /// recursion. Needs the lists to stay still meanwhile (writes are serialised; see
    /// [`Self::reconnect`]).
    fn components(&self) -> Components {
        let capacity = self.capacity();
        let mut parts = Components {
            reached: NodeSet::new(capacity),
            rooted: NodeSet::new(capacity),
            bottoms: Vec::new(),
        };
        let Some((entry, _)) = self.entry() else {
            return parts;
        };
        // Visit order of each node, the lowest order it reaches through its subtree and back
        // links, and (once its component is closed) the component's number.
        let mut index = vec![UNVISITED; capacity];
        let mut low = vec![0u32; capacity];
        let mut component = vec![UNVISITED; capacity];
        let mut on_stack = NodeSet::new(capacity);
        let mut stack: Vec<u32> = Vec::new();
        // The walk's path: each node with the position of its next link to follow.
        let mut path: Vec<(u32, usize)> = Vec::new();
        let mut visited = 0u32;
        let mut components = 0u32;
        index[entry as usize] = 0;
        low[entry as usize] = 0;
        visited += 1;
        stack.push(entry);
        on_stack.insert(entry);
        path.push((entry, 0));
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(target) = self.link0(node, *next) {
                *next += 1;
                if target as usize >= capacity {
                    continue;
                }
                if index[target as usize] == UNVISITED {
                    index[target as usize] = visited;
                    low[target as usize] = visited;
                    visited += 1;
                    stack.push(target);
                    on_stack.insert(target);
                    path.push((target, 0));
                } else if on_stack.contains(target) {
                    low[node as usize] = low[node as usize].min(index[target as usize]);
                }
                continue;
            }
            path.pop();
            if let Some(&(parent, _)) = path.last() {
                low[parent as usize] = low[parent as usize].min(low[node as usize]);
            }
            if low[node as usize] != index[node as usize] {
                continue;
            }
            // `node` closes a component: it and everything above it on the stack.
            let at = stack.iter().rposition(|&n| n == node).unwrap_or(0);
            let members = stack.split_off(at);
            for &member in &members {
                component[member as usize] = components;
                parts.reached.insert(member);
                // A cleared bit: `on_stack` is only ever tested, never reset otherwise.
                on_stack.0[member as usize / 64] &= !(1 << (member % 64));
            }
            if members.contains(&entry) {
                for &member in &members {
                    parts.rooted.insert(member);
                }
            } else {
                // Components close after every component they lead to, so the numbers of
                // those are final: a link to another number leaves this one.
                let leaves = members.iter().any(|&member| {
                    (0..)
                        .map_while(|i| self.link0(member, i))
                        .any(|t| (t as usize) < capacity && component[t as usize] != components)
                });
                if !leaves {
                    parts.bottoms.push(members);
                }
            }
            components += 1;
        }
        parts
    }

    /// Every node reached on layer 0 from `start` that is not in `reached` yet joins it.
    fn reach_from(&self, start: u32, reached: &mut NodeSet) {
        if !reached.insert(start) {
            return;
        }
        let mut queue = vec![start];
        let mut links = Vec::new();
        while let Some(node) = queue.pop() {
            links.clear();
            self.neighbors_into(node, 0, &mut links);
            for &next in &links {
                if reached.insert(next) {
                    queue.push(next);
                }
            }
        }
    }

    /// Makes layer 0 strongly connected over the nodes `linkable` admits (see the module docs):
    /// first the cheap proof from the links cut since the last call, then, if that fails, the
    /// whole check and its repairs. A node no walk reaches gets a link
    /// from the nearest reached node with room in its list; a bottom component gets a link from
    /// one of its members to the nearest node that walks back to the entry point. Nearest nodes
    /// come from a search from the entry point, `ef_construction` wide, or a scan when none of
    /// those has room. A member with a full list gives up the link to its neighbour with the
    /// most in-links, and that neighbour gets a link from a reached node with room instead, so
    /// no repair cuts off another node (as long as some reached list has room). Returns the
    /// links added.
    ///
    /// Callers serialise writes; searches may run meanwhile. Nodes `linkable` rejects (removed
    /// ones not yet compacted) may be walked through and are kept connected, but are never
    /// linked to. A read-only graph is left as it is.
    pub fn reconnect<S: Scorer + ?Sized>(
        &self,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        scorer: &S,
    ) -> usize {
        let _guard = self.reconnect_lock.lock();
        if self.is_shared() {
            return 0;
        }
        let cut = std::mem::take(&mut *self.cut_links.lock());
        if !self.unchecked.swap(false, Ordering::AcqRel)
            && cut.len() <= self.capacity() / CUTS_PER_WHOLE_CHECK
            && self.cuts_rerouted(cut)
        {
            return 0;
        }
        let mut added = 0;
        for _ in 0..MAX_ROUNDS {
            let links = self.reconnect_round(linkable, scorer);
            if links == 0 {
                // The whole graph was just checked: the repairs' own cuts need no other check.
                self.cut_links.lock().clear();
                self.unchecked.store(false, Ordering::Release);
                return added;
            }
            added += links;
        }
        // Not proven whole after the last round: the next write checks again.
        self.mark_unchecked();
        added
    }

    /// Whether every cut link `(from, to)` is replaced by a path from `from` to `to`, each found
    /// by a breadth-first walk of at most [`REROUTE_VISITS`] nodes. If so, and layer 0 was
    /// strongly connected before the cuts, it still is: the writes that cut them only added
    /// links otherwise, and each new node got a link to a node reached before it and (meant) a
    /// link from one, so any walk that used a cut link can take the path instead.
    fn cuts_rerouted(&self, mut cut: Vec<(u32, u32)>) -> bool {
        cut.sort_unstable();
        cut.dedup();
        cut.retain(|&(from, to)| from != to);
        let mut queue = Vec::new();
        let mut missing: Vec<u32> = Vec::new();
        self.with_context(|ctx| {
            // One walk per source finds all the targets cut from its list (a pruned list
            // usually drops several links at once).
            cut.chunk_by(|a, b| a.0 == b.0).all(|group| {
                let from = group[0].0;
                if from as usize >= ctx.capacity {
                    return true;
                }
                missing.clear();
                missing.extend(group.iter().map(|&(_, to)| to));
                ctx.visited.clear(ctx.capacity);
                ctx.visited.insert(from);
                queue.clear();
                queue.push(from);
                let mut next = 0;
                while next < queue.len() && next < REROUTE_VISITS {
                    ctx.neighbors.clear();
                    self.neighbors_into(queue[next], 0, &mut ctx.neighbors);
                    next += 1;
                    missing.retain(|to| !ctx.neighbors.contains(to));
                    if missing.is_empty() {
                        return true;
                    }
                    for &n in &ctx.neighbors {
                        if ctx.visited.insert(n) {
                            queue.push(n);
                        }
                    }
                }
                false
            })
        })
    }

    /// One pass of [`Self::reconnect`]: links into unreached nodes when there are any, else out
    /// of bottom components. Returns the links added (0: layer 0 is strongly connected).
    fn reconnect_round<S: Scorer + ?Sized>(
        &self,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        scorer: &S,
    ) -> usize {
        let Some((entry, _)) = self.entry() else {
            return 0;
        };
        let parts = self.components();
        let mut reached = parts.reached;
        let mut added = 0;
        let stranded: Vec<u32> = (0..self.capacity() as u32)
            .filter(|&node| linkable(node) && !reached.contains(node))
            .collect();
        for &node in &stranded {
            // Linking an earlier one may have brought this one in with it.
            if reached.contains(node) {
                continue;
            }
            let admit = |n: u32| n != node && linkable(n) && reached.contains(n);
            let from = self
                .nearest_with_room(node, &admit, scorer)
                .unwrap_or(entry);
            self.add_repair_link(from, node);
            added += 1;
            self.reach_from(node, &mut reached);
        }
        if added > 0 {
            // The components changed: the bottoms are found again next round.
            return added;
        }
        let full = self.params.max_links(0);
        let mut links = Vec::new();
        for members in &parts.bottoms {
            let from = members
                .iter()
                .copied()
                .find(|&m| self.degree0(m, &mut links) < full)
                .unwrap_or(members[0]);
            let admit = |n: u32| linkable(n) && parts.rooted.contains(n);
            let to = self.nearest(from, &admit, scorer).unwrap_or(entry);
            if let Some(evicted) = self.add_repair_link(from, to) {
                // Paths into `from` never needed its own links, so every member still reaches
                // `from` and through it the entry point; only `evicted` may have lost its way
                // in, and gets one from a reached node with room.
                let admit = |n: u32| n != evicted && linkable(n) && reached.contains(n);
                let back = self
                    .nearest_with_room(evicted, &admit, scorer)
                    .unwrap_or(entry);
                self.add_repair_link(back, evicted);
                added += 1;
            }
            added += 1;
        }
        added
    }

    /// Links of `node` on layer 0 (`buf` is scratch).
    fn degree0(&self, node: u32, buf: &mut Vec<u32>) -> usize {
        buf.clear();
        self.neighbors_into(node, 0, buf);
        buf.len()
    }

    /// The nearest admitted nodes to `node`, nearest first, found by a search from the entry
    /// point `ef_construction` wide.
    fn nearest_candidates<S: Scorer + ?Sized>(
        &self,
        node: u32,
        admit: &dyn Fn(u32) -> bool,
        scorer: &S,
    ) -> Vec<Scored> {
        let query = scorer.node_query(node);
        let ef = self.params.ef_construction;
        let mut found: Vec<Scored> = Vec::new();
        self.with_context(|ctx| self.search(&query, ef, ef, &admit, ctx, &mut found));
        found
    }

    /// The admitted node nearest to `node` (by a search from the entry point).
    fn nearest<S: Scorer + ?Sized>(
        &self,
        node: u32,
        admit: &dyn Fn(u32) -> bool,
        scorer: &S,
    ) -> Option<u32> {
        self.nearest_candidates(node, admit, scorer)
            .first()
            .map(|s| s.node)
    }

    /// The admitted node nearest to `node` whose layer-0 list has room: among a search's
    /// candidates, else by a scan of every node; else the nearest admitted node (whose list
    /// will give up a link).
    fn nearest_with_room<S: Scorer + ?Sized>(
        &self,
        node: u32,
        admit: &dyn Fn(u32) -> bool,
        scorer: &S,
    ) -> Option<u32> {
        let full = self.params.max_links(0);
        let mut links = Vec::new();
        let found = self.nearest_candidates(node, admit, scorer);
        if let Some(roomy) = found
            .iter()
            .find(|c| self.degree0(c.node, &mut links) < full)
        {
            return Some(roomy.node);
        }
        let query = scorer.node_query(node);
        let scanned = (0..self.capacity() as u32)
            .filter(|&n| admit(n) && self.degree0(n, &mut links) < full)
            .map(|n| Scored {
                distance: query.distance(n),
                node: n,
            })
            .min();
        scanned.or(found.first().copied()).map(|s| s.node)
    }

    /// Adds the layer-0 link `from → to`; a full list gives up its link to the neighbour with
    /// the most in-links (the one most likely reached another way), which it returns.
    pub(crate) fn add_repair_link(&self, from: u32, to: u32) -> Option<u32> {
        let _guard = self.lock(from);
        let mut links = Vec::new();
        self.neighbors_into(from, 0, &mut links);
        if links.contains(&to) || self.push_link(from, 0, to) {
            return None;
        }
        let place = (0..links.len()).max_by_key(|&i| self.in_degree(links[i]))?;
        let evicted = std::mem::replace(&mut links[place], to);
        self.write_list(from, 0, &links);
        Some(evicted)
    }
}
