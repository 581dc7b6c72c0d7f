//! Construction (the paper's Algorithm 1), in parallel batches, and compaction, which relinks
//! every neighbourhood around removed nodes so their slots can be reused.
//!
//! A removed node's slot is reused only after compaction: links are one-way, so only a scan of
//! every list finds all the links that lead to a node. Relinking a reused slot without that
//! scan leaves stale links that point at its new data; they look like in-links to the
//! reachability rule of `choose_list`, which then lets the node's real neighbours drop it.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::graph::Graph;
use crate::heuristic::select_neighbors;
use crate::scorer::{QueryDistance, Scorer};
use crate::search::{Scored, SearchContext};

/// The paper's `keepPrunedConnections` for a new node's own lists: a list the heuristic leaves
/// shorter than `m` is filled to `m` with the candidates it pruned, nearest first (see
/// `set_own_links`), so a new node has at least `m` ways out even in a tight cluster.
const KEEP_PRUNED_OWN: bool = true;
/// ... and not when a full list is re-chosen: lists would then stay full, so every later link
/// to that node would pay a re-selection, for no measured gain in recall.
const KEEP_PRUNED_REVERSE: bool = false;

/// In-links on layer 0 below which a node that lost some gets more (see
/// [`Graph::restore_in_links`]): `m` after a compaction, `m / 2` after an add. In churned GloVe
/// graphs (the `graph-health` reliability part), nodes left with fewer were missed by their
/// own queries at efSearch 256 and recall fell below a fresh build's. Each node restored costs
/// one search; after small adds, the `m / 2` floor cost little more than none, `m` twice as much.
fn in_link_floor(m: usize, after_compaction: bool) -> u32 {
    if after_compaction {
        m as u32
    } else {
        (m / 2) as u32
    }
}

/// Scratch buffers of one insertion.
#[derive(Default)]
struct InsertBuffers {
    found: Vec<Scored>,
    selected: Vec<Scored>,
    pool: Vec<Scored>,
    ids: Vec<u32>,
}

impl Graph {
    /// Links `node` into the graph (its slot is reserved and its data readable through `scorer`).
    /// Safe to call from many threads at once for different nodes, and while searches run.
    /// Unlike [`Self::insert_batch`], it leaves [`Self::reconnect`] to the caller.
    pub fn insert<S: Scorer>(&self, node: u32, scorer: &S) {
        self.insert_in_order(&[node], scorer, &|_| true, &|| false);
    }

    /// Links every node of `nodes`, in that order with one thread (deterministic), or spread over
    /// the current Rayon pool when `parallel`. New nodes link only to nodes `linkable` admits
    /// (the walk still passes through the others, e.g. removed nodes not yet compacted); every
    /// node in `nodes` must be linkable. `stop` is polled between nodes; returns how many nodes
    /// were linked (a prefix of `nodes` when sequential). When all are linked, the graph is then
    /// [reconnected](Self::reconnect): every linkable node is reachable from the entry point.
    pub fn insert_batch<S: Scorer>(
        &self,
        nodes: &[u32],
        scorer: &S,
        parallel: bool,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> usize {
        let done = if parallel {
            // The first nodes go in one by one: a parallel start from a near-empty graph would
            // race on the top level and make a poorly linked core.
            let serial = nodes.len().min(256);
            let done = self.insert_in_order(&nodes[..serial], scorer, linkable, stop);
            if done < serial {
                return done;
            }
            // Once a chunk stops short, no further chunk starts (each would only poll `stop`).
            let linked = AtomicUsize::new(done);
            let _stopped = nodes[serial..].par_chunks(64).try_for_each(|chunk| {
                let done = self.insert_in_order(chunk, scorer, linkable, stop);
                linked.fetch_add(done, Ordering::Relaxed);
                if done < chunk.len() {
                    Err(())
                } else {
                    Ok(())
                }
            });
            linked.into_inner()
        } else {
            self.insert_in_order(nodes, scorer, linkable, stop)
        };
        if done == nodes.len() {
            self.restore_in_links(nodes, linkable, scorer, parallel, false);
            self.reconnect(linkable, scorer);
        }
        done
    }

    /// Links `nodes` one after another on this thread until `stop`; returns how many.
    fn insert_in_order<S: Scorer>(
        &self,
        nodes: &[u32],
        scorer: &S,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        stop: &(dyn Fn() -> bool + Sync),
    ) -> usize {
        let mut buffers = InsertBuffers::default();
        self.with_context(|ctx| {
            let mut done = 0;
            for &node in nodes {
                if stop() {
                    break;
                }
                self.insert_with(node, scorer, linkable, ctx, &mut buffers);
                done += 1;
            }
            done
        })
    }

    fn insert_with<S: Scorer>(
        &self,
        node: u32,
        scorer: &S,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        ctx: &mut SearchContext,
        buf: &mut InsertBuffers,
    ) {
        let level = self.level(node);
        let query = scorer.node_query(node);
        // An insertion that may raise the top level holds the top lock throughout, so the entry
        // point only ever moves to a fully linked node.
        let mut top_guard = None;
        let (entry, top) = loop {
            match self.entry() {
                None => {
                    let guard = top_guard.take().unwrap_or_else(|| self.top_lock.lock());
                    if self.entry().is_none() {
                        self.set_entry(Some((node, level)));
                        return;
                    }
                    top_guard = Some(guard);
                }
                Some((_, top)) if level > top && top_guard.is_none() => {
                    top_guard = Some(self.top_lock.lock());
                }
                Some(found) => break found,
            }
        };
        if entry == node {
            return;
        }
        let start = Scored {
            distance: query.distance(entry),
            node: entry,
        };
        let nearest = self.descend(&query, start, top, level, ctx);
        let mut entries = vec![nearest];
        let admit = |n: u32| n != node && linkable(n);
        // First the node's own lists on every layer, top down; only then the links that lead to
        // it, bottom up. A node is reachable only through links to it, so no walk can arrive at
        // a node whose lower lists are still empty (a dead end for concurrent inserts).
        let linked_layers = level.min(top);
        let mut chosen: Vec<Vec<Scored>> = vec![Vec::new(); linked_layers + 1];
        for layer in (0..=linked_layers).rev() {
            self.search_layer(
                &query,
                &entries,
                layer,
                self.params.ef_construction,
                ctx,
                &admit,
            );
            ctx.take_sorted(&mut buf.found);
            if buf.found.is_empty() {
                continue;
            }
            select_neighbors(
                scorer,
                node,
                &buf.found,
                self.params.m,
                KEEP_PRUNED_OWN,
                &mut buf.selected,
            );
            self.set_own_links(node, layer, scorer, buf);
            chosen[layer].extend_from_slice(&buf.selected);
            entries.clear();
            entries.extend_from_slice(&buf.found);
        }
        if chosen[0].is_empty() {
            // Nothing linkable was found (e.g. every other node is removed): no link leads here.
            self.mark_unchecked();
        }
        for (layer, selected) in chosen.iter().enumerate() {
            for neighbor in selected {
                self.add_link(neighbor.node, node, neighbor.distance, layer, scorer, buf);
            }
        }
        if level > top {
            self.set_entry(Some((node, level)));
        }
        drop(top_guard);
    }

    /// Chooses `base`'s list on `layer` from `pool` (sorted nearest first) by the heuristic.
    /// On layer 0 a node the heuristic drops keeps its place if this list holds its only
    /// in-link (or it has none yet, like a node being inserted): it takes the place of the worst
    /// kept node that has another in-link. `uncounted(n)` of `n`'s in-links do not count (those
    /// held by nodes a compaction removes). This keeps most nodes linked cheaply; it cannot
    /// promise reachability (an in-link may come from a node that is cut off itself, and two
    /// threads may each drop one of a node's two in-links), which [`Self::reconnect`] does.
    #[allow(clippy::too_many_arguments)]
    fn choose_list<S: Scorer>(
        &self,
        base: u32,
        layer: usize,
        pool: &[Scored],
        old: &[u32],
        keep_pruned: bool,
        uncounted: &dyn Fn(u32) -> u32,
        scorer: &S,
        out: &mut Vec<Scored>,
    ) {
        select_neighbors(
            scorer,
            base,
            pool,
            self.params.max_links(layer),
            keep_pruned,
            out,
        );
        if layer != 0 {
            return;
        }
        let has_other_link =
            |n: u32| self.in_degree(n).saturating_sub(uncounted(n)) > u32::from(old.contains(&n));
        for candidate in pool {
            if out.iter().any(|kept| kept.node == candidate.node) || has_other_link(candidate.node)
            {
                continue;
            }
            if out.len() < self.params.max_links(0) {
                out.push(*candidate);
            } else if let Some(place) = out.iter().rposition(|kept| has_other_link(kept.node)) {
                out[place] = *candidate;
            }
        }
        out.sort_unstable();
    }

    /// Writes `buf.selected` as `node`'s list on `layer`, merged with links other insertions
    /// already made to `node` (possible for a reused slot) so none is lost.
    fn set_own_links<S: Scorer>(
        &self,
        node: u32,
        layer: usize,
        scorer: &S,
        buf: &mut InsertBuffers,
    ) {
        let _guard = self.lock(node);
        buf.ids.clear();
        self.neighbors_into(node, layer, &mut buf.ids);
        let old = std::mem::take(&mut buf.ids);
        buf.pool.clear();
        buf.pool.extend_from_slice(&buf.selected);
        buf.pool.extend(
            old.iter()
                .filter(|id| !buf.selected.iter().any(|s| s.node == **id))
                .map(|&id| Scored {
                    distance: scorer.between(node, id),
                    node: id,
                }),
        );
        buf.pool.sort_unstable();
        let mut kept = Vec::new();
        self.choose_list(
            node,
            layer,
            &buf.pool,
            &old,
            false,
            &|_| 0,
            scorer,
            &mut kept,
        );
        if KEEP_PRUNED_OWN && kept.len() < self.params.m {
            // The heuristic's choice, filled to `m` with what it pruned from the new node's own
            // selection (copies of the node excluded there already), nearest first.
            for candidate in &buf.selected {
                if kept.len() >= self.params.m {
                    break;
                }
                if !kept.iter().any(|k| k.node == candidate.node) {
                    kept.push(*candidate);
                }
            }
            kept.sort_unstable();
        }
        let ids: Vec<u32> = kept.iter().map(|s| s.node).collect();
        self.write_list(node, layer, &ids);
        buf.ids = old;
    }

    /// Adds the link `target → node` on `layer`; a full list is re-chosen by [`Self::choose_list`].
    fn add_link<S: Scorer>(
        &self,
        target: u32,
        node: u32,
        distance: f32,
        layer: usize,
        scorer: &S,
        buf: &mut InsertBuffers,
    ) {
        let _guard = self.lock(target);
        buf.ids.clear();
        self.neighbors_into(target, layer, &mut buf.ids);
        if buf.ids.contains(&node) || self.push_link(target, layer, node) {
            return;
        }
        buf.pool.clear();
        buf.pool.push(Scored { distance, node });
        buf.pool.extend(buf.ids.iter().map(|&id| Scored {
            distance: scorer.between(target, id),
            node: id,
        }));
        buf.pool.sort_unstable();
        let mut kept = Vec::new();
        self.choose_list(
            target,
            layer,
            &buf.pool,
            &buf.ids,
            KEEP_PRUNED_REVERSE,
            &|_| 0,
            scorer,
            &mut kept,
        );
        if layer == 0 && !kept.iter().any(|k| k.node == node) {
            // A link the insertion meant to make: `reconnect` checks that a path replaces it.
            self.cut_links.lock().push((target, node));
        }
        let ids: Vec<u32> = kept.iter().map(|s| s.node).collect();
        self.write_list(target, layer, &ids);
    }

    /// Relinks `node`'s list on `layer` without the nodes `removed` admits: their place goes to
    /// the best of `node`'s other links and the removed nodes' own live links (one hop through
    /// each removed neighbour), chosen by the heuristic and filled to full degree.
    fn repair_list<S: Scorer, R: Fn(u32) -> bool>(
        &self,
        node: u32,
        layer: usize,
        removed: &R,
        held_by_removed: &[u32],
        scorer: &S,
    ) {
        let _guard = self.lock(node);
        let mut ids = Vec::new();
        self.neighbors_into(node, layer, &mut ids);
        if !ids.iter().any(|&id| removed(id)) {
            return;
        }
        let mut pool: Vec<u32> = Vec::with_capacity(ids.len() * 2);
        let mut hop = Vec::new();
        for &id in &ids {
            if !removed(id) {
                pool.push(id);
                continue;
            }
            hop.clear();
            if layer <= self.level(id) {
                self.neighbors_into(id, layer, &mut hop);
            }
            pool.extend(hop.iter().copied().filter(|&h| h != node && !removed(h)));
        }
        pool.sort_unstable();
        pool.dedup();
        let mut scored: Vec<Scored> = pool
            .iter()
            .map(|&id| Scored {
                distance: scorer.between(node, id),
                node: id,
            })
            .collect();
        scored.sort_unstable();
        let mut kept = Vec::new();
        // Links held by removed nodes go with them: they keep no node reachable.
        let uncounted = |n: u32| held_by_removed.get(n as usize).copied().unwrap_or(0);
        self.choose_list(
            node, layer, &scored, &ids, true, &uncounted, scorer, &mut kept,
        );
        let ids: Vec<u32> = kept.iter().map(|s| s.node).collect();
        self.write_list(node, layer, &ids);
    }

    /// Relinks every neighbourhood of nodes `0 .. used` around the nodes `removed` admits, then
    /// empties the removed nodes' lists, so no link leads to them and their slots can be linked
    /// afresh. Runs on the current Rayon
    /// pool; searches may run meanwhile (they never return removed nodes anyway). Returns the
    /// number of removed nodes detached, or `None` when `stop` (polled between nodes) fired:
    /// then the lists relinked so far stay relinked, the removed nodes keep theirs (still
    /// waypoints, detached by a later compaction), and every live node is reachable again.
    pub fn compact<S: Scorer, R: Fn(u32) -> bool + Sync>(
        &self,
        used: usize,
        removed: &R,
        scorer: &S,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<usize> {
        let used = used.min(self.capacity()) as u32;
        let mut held_by_removed = vec![0u32; used as usize];
        let mut links = Vec::new();
        for node in (0..used).filter(|&n| removed(n)) {
            links.clear();
            self.neighbors_into(node, 0, &mut links);
            for &target in &links {
                if let Some(count) = held_by_removed.get_mut(target as usize) {
                    *count += 1;
                }
            }
        }
        let relinked = (0..used).into_par_iter().try_for_each(|node| {
            if stop() {
                return Err(());
            }
            if !removed(node) {
                for layer in 0..=self.level(node) {
                    self.repair_list(node, layer, removed, &held_by_removed, scorer);
                }
            }
            Ok(())
        });
        let live = |n: u32| n < used && !removed(n);
        if relinked.is_err() {
            // The relinked lists cut links that were some nodes' only way in.
            self.mark_unchecked();
            self.reconnect(&live, scorer);
            return None;
        }
        {
            let _top = self.top_lock.lock();
            if let Some((entry, _)) = self.entry() {
                if removed(entry) {
                    let best = (0..used)
                        .filter(|&n| !removed(n))
                        .max_by_key(|&n| (self.level(n), std::cmp::Reverse(n)));
                    self.set_entry(best.map(|n| (n, self.level(n))));
                }
            }
        }
        let detached: Vec<u32> = (0..used).filter(|&n| removed(n)).collect();
        for &node in &detached {
            let _guard = self.lock(node);
            for layer in 0..=self.level(node) {
                self.write_list(node, layer, &[]);
            }
        }
        self.restore_in_links(&[], &live, scorer, true, true);
        // Whole nodes went: links into them cannot be checked one by one.
        self.mark_unchecked();
        self.reconnect(&live, scorer);
        Some(detached.len())
    }

    /// Every linkable node that lost in-links since the last [`Self::reconnect`] (the targets of
    /// `Graph::cut_links`) and has fewer than [`in_link_floor`] left gets links from its
    /// nearest nodes with room; then each of those nodes and of `new_nodes` gets a link back
    /// from its nearest neighbour ([`Self::link_back_from_nearest`]). In node order on this
    /// thread (deterministic), or in parallel on the current pool.
    pub fn restore_in_links<S: Scorer>(
        &self,
        new_nodes: &[u32],
        linkable: &(dyn Fn(u32) -> bool + Sync),
        scorer: &S,
        parallel: bool,
        after_compaction: bool,
    ) {
        let mut bereft: Vec<u32> = self.cut_links.lock().iter().map(|&(_, to)| to).collect();
        bereft.sort_unstable();
        bereft.dedup();
        let floor = in_link_floor(self.params.m, after_compaction);
        let restore = |&node: &u32| {
            if linkable(node) && self.in_degree(node) < floor {
                self.link_from_nearest(node, floor, linkable, scorer);
            }
        };
        let link_back = |&node: &u32| {
            if linkable(node) {
                self.link_back_from_nearest(node, linkable, scorer);
            }
        };
        if parallel {
            bereft.par_iter().for_each(restore);
        } else {
            bereft.iter().for_each(restore);
        }
        bereft.extend_from_slice(new_nodes);
        bereft.sort_unstable();
        bereft.dedup();
        if parallel {
            bereft.par_iter().for_each(link_back);
        } else {
            bereft.iter().for_each(link_back);
        }
    }

    /// Makes `node`'s nearest neighbour (the nearest linkable node of its own layer-0 list that
    /// is not a copy of it) link back to `node` or to a copy of it, evicting the neighbour with
    /// the most in-links from a full list. A walk towards `node` arrives at that neighbour; if
    /// its full list dropped `node` for nearer nodes, the in-links `node` has left can all come
    /// from nodes too far from it for the walk to expand. Isolated GloVe words were missed by
    /// their own `k: 1` query that way, the walk returning that neighbour instead: 26 of a
    /// 100,000-word single-thread build at efSearch 256, 5 with this link (and the rare miss of
    /// the `graph-health` reliability part after churn). Costs about 2% of a build.
    fn link_back_from_nearest<S: Scorer>(
        &self,
        node: u32,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        scorer: &S,
    ) {
        let mut links = Vec::new();
        self.neighbors_into(node, 0, &mut links);
        let nearest = links
            .iter()
            .filter(|&&n| linkable(n) && !scorer.same_vector(node, n))
            .map(|&n| Scored {
                distance: scorer.between(node, n),
                node: n,
            })
            .min();
        let Some(nearest) = nearest else { return };
        links.clear();
        self.neighbors_into(nearest.node, 0, &mut links);
        if links
            .iter()
            .any(|&n| n == node || scorer.same_vector(node, n))
        {
            return;
        }
        // A link it evicts is recorded as cut: `reconnect`, which follows, checks a way around it.
        self.add_repair_link(nearest.node, node);
    }

    /// Links `node` from its nearest linkable nodes (a search `ef_construction` wide) whose
    /// layer-0 lists have room, until `floor` lists lead to it. Only appends: no list drops a link.
    fn link_from_nearest<S: Scorer>(
        &self,
        node: u32,
        floor: u32,
        linkable: &(dyn Fn(u32) -> bool + Sync),
        scorer: &S,
    ) {
        let query = scorer.node_query(node);
        let ef = self.params.ef_construction;
        let admit = |n: u32| n != node && linkable(n);
        let mut found = Vec::new();
        self.with_context(|ctx| self.search(&query, ef, ef, &admit, ctx, &mut found));
        let mut links = Vec::new();
        for candidate in found {
            if self.in_degree(node) >= floor {
                break;
            }
            let _guard = self.lock(candidate.node);
            links.clear();
            self.neighbors_into(candidate.node, 0, &mut links);
            if !links.contains(&node) {
                self.push_link(candidate.node, 0, node);
            }
        }
    }
}
