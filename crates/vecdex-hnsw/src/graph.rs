//! Link storage of the graph.
//!
//! Layout: layer 0 is one flat array of `capacity × (1 + 2m)` words, node `v` owning words
//! `v·(1+2m) ..`: first the link count, then up to `2m` neighbour ids. A node of level `l > 0`
//! also owns a box of `l × (1 + m)` words for layers `1 ..= l`, in the same count-then-ids form.
//!
//! Concurrency: readers never lock. Writers hold the node's lock, store ids, then the count, all
//! with release ordering, and readers load with acquire ordering (plain moves on x86-64), so a
//! reader sees every id it reads fully written together with the data published before it. A
//! reader racing a rewrite may see a mix of old and new ids; every id ever stored is a valid
//! node, so the walk stays safe and at worst takes a stale edge.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::config::HnswParams;
use crate::search::SearchContext;

/// `entry` when the graph has no node.
const NO_ENTRY: u64 = u64::MAX;

/// Figures about the graph's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphStats {
    /// Layers in use (highest level + 1); 0 when empty.
    pub levels: usize,
    /// Nodes whose level is at least `i`, for each layer `i`.
    pub nodes_per_level: Vec<usize>,
    /// Mean number of links per node on layer 0.
    pub mean_degree: f64,
    /// Nodes on layer 0 with no links at all.
    pub isolated: usize,
    /// Whether every counted node can be found: unreachable nodes and dead ends on layer 0,
    /// both kept at 0 by every write (see [`Graph::reconnect`]).
    pub connectivity: crate::reach::Connectivity,
}

/// Words of a read-only mapping (e.g. a memory-mapped index file) that a graph reads but never
/// writes: a view's layer 0.
pub trait SharedWords: Send + Sync + std::fmt::Debug {
    fn words(&self) -> &[AtomicU32];
}

/// Layer-0 link storage: owned, or shared read-only (see [`SharedWords`]).
#[derive(Debug)]
pub enum Layer0 {
    Owned(Vec<AtomicU32>),
    Shared(std::sync::Arc<dyn SharedWords>),
}

impl Layer0 {
    /// Owned words, taken over without copying.
    pub fn from_words(words: Vec<u32>) -> Self {
        Layer0::Owned(crate::persist::into_atomic(words))
    }

    #[inline]
    fn words(&self) -> &[AtomicU32] {
        match self {
            Layer0::Owned(words) => words,
            Layer0::Shared(shared) => shared.words(),
        }
    }

    /// Owned storage, copying shared words first: writes never reach a shared mapping.
    fn owned(&mut self) -> &mut Vec<AtomicU32> {
        if let Layer0::Shared(shared) = self {
            let copy = shared
                .words()
                .iter()
                .map(|w| AtomicU32::new(w.load(Ordering::Relaxed)))
                .collect();
            *self = Layer0::Owned(copy);
        }
        match self {
            Layer0::Owned(words) => words,
            Layer0::Shared(_) => unreachable!("made owned just above"),
        }
    }
}

/// The HNSW graph: links, levels and entry point; no vectors.
#[derive(Debug)]
pub struct Graph {
    pub(crate) params: HnswParams,
    capacity: usize,
    /// Level of each slot, fixed when the slot is reserved (see [`HnswParams::level_of`]).
    levels: Vec<u8>,
    layer0: Layer0,
    /// Number of layer-0 lists holding each node, kept by every write: a node whose only
    /// in-link would be dropped keeps it (see `build`), so no node becomes unreachable.
    /// Counted from the links on first use after a load (a searched-only index never needs
    /// it), kept by every write from then on.
    in_degree: std::sync::OnceLock<Vec<AtomicU32>>,
    upper: Vec<Box<[AtomicU32]>>,
    /// Words in all of `upper` (kept so that `memory_bytes` is O(1)).
    upper_words: usize,
    locks: Vec<Mutex<()>>,
    /// `(level << 32) | node` of the entry point, or [`NO_ENTRY`].
    entry: AtomicU64,
    /// Held by an insertion that may raise the top level, for its whole duration (as the paper's
    /// single entry point requires).
    pub(crate) top_lock: Mutex<()>,
    contexts: Mutex<Vec<SearchContext>>,
    /// Set when layer 0 may no longer be strongly connected in a way that the links in
    /// `cut_links` cannot tell (a load, a node linked from nowhere, a compaction, an aborted
    /// check); cleared by [`Graph::reconnect`] once it has checked the whole graph.
    pub(crate) unchecked: AtomicBool,
    /// Held by [`Graph::reconnect`], so two never interleave their checks and repairs.
    pub(crate) reconnect_lock: Mutex<()>,
    /// Layer-0 links `(from, to)` that writes dropped (or meant to make and did not) since the
    /// last [`Graph::reconnect`]: what it checks, and whose targets lost an in-link.
    pub(crate) cut_links: Mutex<Vec<(u32, u32)>>,
}

impl Graph {
    pub fn new(params: HnswParams) -> Self {
        Graph {
            params,
            capacity: 0,
            levels: Vec::new(),
            layer0: Layer0::Owned(Vec::new()),
            in_degree: std::sync::OnceLock::from(Vec::new()),
            upper: Vec::new(),
            upper_words: 0,
            locks: Vec::new(),
            entry: AtomicU64::new(NO_ENTRY),
            top_lock: Mutex::new(()),
            contexts: Mutex::new(Vec::new()),
            unchecked: AtomicBool::new(false),
            reconnect_lock: Mutex::new(()),
            cut_links: Mutex::new(Vec::new()),
        }
    }

    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Slots with storage (node ids are below this).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn layer0_stride(&self) -> usize {
        1 + 2 * self.params.m
    }

    pub(crate) fn layer0_words(&self) -> &[AtomicU32] {
        self.layer0.words()
    }

    /// Whether layer 0 lives in a shared read-only mapping (a view).
    pub fn is_shared(&self) -> bool {
        matches!(self.layer0, Layer0::Shared(_))
    }

    /// The upper-layer words of `node` (layers `1 ..= level`, each `1 + m` words).
    pub(crate) fn upper_words(&self, node: u32) -> &[AtomicU32] {
        &self.upper[node as usize]
    }

    /// Levels and locks for slots `0 .. used` of an empty graph, without link storage (see
    /// `fill_links`).
    pub(crate) fn reserve_levels(&mut self, used: usize) {
        let params = self.params;
        self.levels = (0..used as u32)
            .into_par_iter()
            .map(|s| params.level_of(s))
            .collect();
        self.locks.resize_with(used, || Mutex::new(()));
    }

    /// Installs checked saved links (see `persist.rs`) for the slots `reserve_levels` made.
    pub(crate) fn fill_links(&mut self, used: usize, layer0: Layer0, upper: &[u32]) {
        self.in_degree = std::sync::OnceLock::new();
        // Saved by an older version, the graph may hold islands: the first write checks.
        self.mark_unchecked();
        self.layer0 = layer0;
        let upper_stride = 1 + self.params.m;
        let mut at = 0;
        self.upper = Vec::with_capacity(used);
        self.upper_words = upper.len();
        for node in 0..used {
            let len = usize::from(self.levels[node]) * upper_stride;
            self.upper.push(
                upper[at..at + len]
                    .iter()
                    .map(|&w| AtomicU32::new(w))
                    .collect(),
            );
            at += len;
        }
        self.capacity = used;
    }

    /// [`Self::reserve`] that reports a failed allocation instead of aborting: the per-node
    /// arrays are reserved fallibly first (nothing else changes if one fails), so the only
    /// allocations left to `reserve` are the small per-node upper-layer lists.
    pub fn try_reserve(
        &mut self,
        capacity: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        if capacity <= self.capacity {
            return Ok(());
        }
        let extra = capacity - self.capacity;
        let stride = self.layer0_stride();
        let layer0 = self.layer0.owned();
        layer0.try_reserve_exact((capacity * stride).saturating_sub(layer0.len()))?;
        self.locks
            .try_reserve_exact(capacity.saturating_sub(self.locks.len()))?;
        if let Some(counts) = self.in_degree.get_mut() {
            counts.try_reserve_exact(capacity.saturating_sub(counts.len()))?;
        }
        self.levels.try_reserve_exact(extra)?;
        self.upper.try_reserve_exact(extra)?;
        self.reserve(capacity);
        Ok(())
    }

    /// Makes room for node ids below `capacity`: link storage, levels and locks for new slots.
    /// Existing links are kept. Needs exclusive access: no search or insertion runs meanwhile.
    pub fn reserve(&mut self, capacity: usize) {
        if capacity <= self.capacity {
            return;
        }
        let stride = self.layer0_stride();
        let layer0 = self.layer0.owned();
        layer0.reserve_exact((capacity - self.capacity) * stride);
        vecdex_distance::advise_huge_pages(layer0);
        layer0.resize_with(capacity * stride, || AtomicU32::new(0));
        self.locks.resize_with(capacity, || Mutex::new(()));
        let in_degree = self.in_degrees().len();
        if let Some(counts) = self.in_degree.get_mut() {
            counts.resize_with(capacity.max(in_degree), || AtomicU32::new(0));
        }
        let upper_stride = 1 + self.params.m;
        for slot in self.capacity..capacity {
            let level = self.params.level_of(slot as u32);
            self.levels.push(level);
            let words = usize::from(level) * upper_stride;
            self.upper_words += words;
            self.upper
                .push((0..words).map(|_| AtomicU32::new(0)).collect());
        }
        self.capacity = capacity;
    }

    /// Level of `node`.
    #[inline]
    pub fn level(&self, node: u32) -> usize {
        usize::from(self.levels[node as usize])
    }

    /// The words of `node`'s list on `layer`: `[count, id0, id1, …]`.
    #[inline]
    fn list(&self, node: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let stride = self.layer0_stride();
            let start = node as usize * stride;
            &self.layer0.words()[start..start + stride]
        } else {
            let stride = 1 + self.params.m;
            let start = (layer - 1) * stride;
            &self.upper[node as usize][start..start + stride]
        }
    }

    /// Appends `node`'s neighbours on `layer` to `out` (lock-free read).
    #[inline]
    pub fn neighbors_into(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        let list = self.list(node, layer);
        let count = (list[0].load(Ordering::Acquire) as usize).min(list.len() - 1);
        out.extend(list[1..=count].iter().map(|id| id.load(Ordering::Acquire)));
    }

    /// Hints the CPU to load `node`'s list on `layer` (no effect off x86-64).
    #[inline]
    pub fn prefetch_links(&self, node: u32, layer: usize) {
        #[cfg(target_arch = "x86_64")]
        if layer == 0 {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let start = node as usize * self.layer0_stride();
            if let Some(words) = self.layer0.words().get(start..start + self.layer0_stride()) {
                let p = words.as_ptr().cast::<i8>();
                // SAFETY: prefetch never faults; both addresses are inside the list.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(p);
                    _mm_prefetch::<_MM_HINT_T0>(p.add((words.len() * 4).min(128) - 4));
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (node, layer);
    }

    /// `node`'s neighbours on `layer`, as a new vector.
    pub fn neighbors(&self, node: u32, layer: usize) -> Vec<u32> {
        let mut out = Vec::new();
        if layer <= self.level(node) {
            self.neighbors_into(node, layer, &mut out);
        }
        out
    }

    /// Replaces `node`'s list on `layer`. The caller holds `node`'s lock.
    pub(crate) fn write_list(&self, node: u32, layer: usize, ids: &[u32]) {
        // Counts first: they may still have to be made from the lists as they are now.
        let in_degree = (layer == 0).then(|| self.in_degrees());
        let list = self.list(node, layer);
        if let Some(counts) = in_degree {
            let old = (list[0].load(Ordering::Acquire) as usize).min(list.len() - 1);
            let mut dropped = [(0u32, 0u32); 8];
            let mut drops = 0;
            for id in &list[1..=old] {
                let id = id.load(Ordering::Acquire);
                counts[id as usize].fetch_sub(1, Ordering::Relaxed);
                if !ids.contains(&id) {
                    if drops == dropped.len() {
                        self.cut_links.lock().extend_from_slice(&dropped);
                        drops = 0;
                    }
                    dropped[drops] = (node, id);
                    drops += 1;
                }
            }
            if drops > 0 {
                self.cut_links.lock().extend_from_slice(&dropped[..drops]);
            }
        }
        let count = ids.len().min(list.len() - 1);
        for (slot, id) in list[1..=count].iter().zip(ids) {
            slot.store(*id, Ordering::Release);
            if let Some(counts) = in_degree {
                counts[*id as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
        list[0].store(count as u32, Ordering::Release);
    }

    /// Appends one id if there is room; false when the list is full. The caller holds the lock.
    pub(crate) fn push_link(&self, node: u32, layer: usize, id: u32) -> bool {
        let in_degree = (layer == 0).then(|| self.in_degrees());
        let list = self.list(node, layer);
        let count = list[0].load(Ordering::Acquire) as usize;
        if count + 1 >= list.len() {
            return false;
        }
        list[count + 1].store(id, Ordering::Release);
        list[0].store(count as u32 + 1, Ordering::Release);
        if let Some(counts) = in_degree {
            counts[id as usize].fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Layer-0 in-links per slot, counted from the lists the first time a write needs them
    /// (after a load). Every write that changes a layer-0 list asks for these counts before
    /// changing it, so the count runs while no list changes (others wait for it).
    fn in_degrees(&self) -> &[AtomicU32] {
        self.in_degree.get_or_init(|| {
            let stride = self.layer0_stride();
            let mut counts = vec![0u32; self.capacity];
            for list in self.layer0.words().chunks_exact(stride) {
                let count = (list[0].load(Ordering::Acquire) as usize).min(stride - 1);
                for id in &list[1..=count] {
                    if let Some(c) = counts.get_mut(id.load(Ordering::Acquire) as usize) {
                        *c += 1;
                    }
                }
            }
            crate::persist::into_atomic(counts)
        })
    }

    /// Links on layer 0 that lead to `node` (a snapshot; other threads may change it).
    #[inline]
    pub fn in_degree(&self, node: u32) -> u32 {
        self.in_degrees()[node as usize].load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn lock(&self, node: u32) -> parking_lot::MutexGuard<'_, ()> {
        self.locks[node as usize].lock()
    }

    /// The entry point and its level, or `None` when the graph is empty.
    #[inline]
    pub fn entry(&self) -> Option<(u32, usize)> {
        let word = self.entry.load(Ordering::Acquire);
        (word != NO_ENTRY).then_some((word as u32, (word >> 32) as usize))
    }

    pub(crate) fn set_entry(&self, entry: Option<(u32, usize)>) {
        let word = entry.map_or(NO_ENTRY, |(node, level)| {
            ((level as u64) << 32) | u64::from(node)
        });
        self.entry.store(word, Ordering::Release);
    }

    /// Records that a write may have left a node unreachable (see [`Graph::reconnect`]).
    #[inline]
    pub(crate) fn mark_unchecked(&self) {
        self.unchecked.store(true, Ordering::Release);
    }

    /// Runs `f` with a search context from the pool (made if none is free), sized for the graph.
    pub fn with_context<R>(&self, f: impl FnOnce(&mut SearchContext) -> R) -> R {
        let mut ctx = self.contexts.lock().pop().unwrap_or_default();
        ctx.prepare(self.capacity);
        let out = f(&mut ctx);
        self.contexts.lock().push(ctx);
        out
    }

    /// Bytes of link storage, levels, locks and pooled contexts.
    pub fn memory_bytes(&self) -> usize {
        let upper = self.upper_words * 4;
        let contexts: usize = self.contexts.lock().iter().map(SearchContext::bytes).sum();
        let layer0 = match &self.layer0 {
            Layer0::Owned(words) => words.capacity() * 4,
            Layer0::Shared(_) => 0,
        };
        layer0
            + upper
            + self.upper.capacity() * std::mem::size_of::<Box<[AtomicU32]>>()
            + self.levels.capacity()
            + self.in_degree.get().map_or(0, Vec::capacity) * 4
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
            + contexts
    }

    /// Shape of the graph over nodes `0 .. used` (slots past `used` are ignored); `unreachable`
    /// counts the nodes `counted` admits (e.g. live ones).
    pub fn stats(&self, used: usize, counted: &dyn Fn(u32) -> bool) -> GraphStats {
        let used = used.min(self.capacity);
        let mut nodes_per_level = Vec::new();
        let mut links = 0usize;
        let mut isolated = 0usize;
        let mut buf = Vec::new();
        for node in 0..used as u32 {
            let level = self.level(node);
            if nodes_per_level.len() <= level {
                nodes_per_level.resize(level + 1, 0);
            }
            for count in &mut nodes_per_level[..=level] {
                *count += 1;
            }
            buf.clear();
            self.neighbors_into(node, 0, &mut buf);
            links += buf.len();
            isolated += usize::from(buf.is_empty());
        }
        if used == 0 {
            nodes_per_level.clear();
        }
        GraphStats {
            levels: nodes_per_level.len(),
            nodes_per_level,
            mean_degree: if used == 0 {
                0.0
            } else {
                links as f64 / used as f64
            },
            isolated,
            connectivity: self.connectivity(used, counted),
        }
    }
}
