//! Graph-level tests with a plain f32 scorer: recall, reachability under parallel build,
//! determinism, filters inside the walk, and compaction.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use vecdex_hnsw::{Graph, HnswParams, QueryDistance, Scored, Scorer};

struct Points {
    dim: usize,
    data: Vec<f32>,
}

impl Points {
    /// `n` points around `clusters` random centres (clustered data is where HNSW graphs break).
    fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Points {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres: Vec<f32> = (0..clusters * dim)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let c = rng.gen_range(0..clusters);
            for d in 0..dim {
                data.push(centres[c * dim + d] + rng.gen_range(-0.4..0.4));
            }
        }
        Points { dim, data }
    }

    /// Splits off the last `q` points (drawn around the same centres) as queries.
    fn split_queries(mut self, q: usize) -> (Points, Points) {
        let queries = self.data.split_off(self.data.len() - q * self.dim);
        let dim = self.dim;
        (self, Points { dim, data: queries })
    }

    fn row(&self, i: u32) -> &[f32] {
        &self.data[i as usize * self.dim..][..self.dim]
    }

    fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Exact k nearest of `query` among admitted nodes.
    fn exact(&self, query: &[f32], k: usize, admit: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut all: Vec<Scored> = (0..self.len() as u32)
            .filter(|&n| admit(n))
            .map(|n| Scored {
                distance: l2(query, self.row(n)),
                node: n,
            })
            .collect();
        all.sort_unstable();
        all.into_iter().take(k).map(|s| s.node).collect()
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

struct Query<'a> {
    points: &'a Points,
    query: &'a [f32],
}

impl QueryDistance for Query<'_> {
    fn distance(&self, node: u32) -> f32 {
        l2(self.query, self.points.row(node))
    }
}

impl Scorer for Points {
    type NodeQuery<'s> = Query<'s>;

    fn node_query(&self, node: u32) -> Query<'_> {
        Query {
            points: self,
            query: self.row(node),
        }
    }

    fn between(&self, a: u32, b: u32) -> f32 {
        l2(self.row(a), self.row(b))
    }
}

fn build(points: &Points, parallel: bool, seed: u64) -> Graph {
    let mut graph = Graph::new(HnswParams::new(16, 100, seed).expect("params"));
    graph.reserve(points.len());
    let nodes: Vec<u32> = (0..points.len() as u32).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("pool");
    let linked =
        pool.install(|| graph.insert_batch(&nodes, points, parallel, &|_| true, &|| false));
    assert_eq!(linked, nodes.len());
    graph
}

fn search(
    graph: &Graph,
    points: &Points,
    query: &[f32],
    k: usize,
    ef: usize,
    admit: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let mut out = Vec::new();
    graph.with_context(|ctx| graph.search(&Query { points, query }, k, ef, &admit, ctx, &mut out));
    out.into_iter().map(|s| s.node).collect()
}

fn recall(graph: &Graph, points: &Points, queries: &Points, ef: usize) -> f64 {
    let k = 10;
    let hits: usize = (0..queries.len() as u32)
        .into_par_iter()
        .map(|q| {
            let want = points.exact(queries.row(q), k, |_| true);
            let got = search(graph, points, queries.row(q), k, ef, |_| true);
            got.iter().filter(|n| want.contains(n)).count()
        })
        .sum();
    hits as f64 / (queries.len() * k) as f64
}

fn self_recall(graph: &Graph, points: &Points, ef: usize) -> f64 {
    let found = (0..points.len() as u32)
        .into_par_iter()
        .filter(|&n| search(graph, points, points.row(n), 1, ef, |_| true).first() == Some(&n))
        .count();
    found as f64 / points.len() as f64
}

#[test]
fn parallel_build_reaches_every_node_and_matches_sequential_recall() {
    let (points, queries) = Points::clustered(21_000, 32, 40, 1).split_queries(1_000);
    let sequential = build(&points, false, 7);
    let parallel = build(&points, true, 7);
    // ef 32 keeps recall off its ceiling, so a worse parallel graph would show.
    let (r_seq, r_par) = (
        recall(&sequential, &points, &queries, 32),
        recall(&parallel, &points, &queries, 32),
    );
    assert!(r_seq > 0.95, "sequential recall {r_seq}");
    assert!(
        (r_seq - r_par).abs() <= 0.01,
        "sequential {r_seq} vs parallel {r_par}"
    );
    let own = self_recall(&parallel, &points, 128);
    assert!(own >= 0.999, "self-query finds itself first for {own}");
    assert!((0..points.len() as u32)
        .all(|n| parallel.in_degree(n) > 0 || Some(n) == parallel.entry().map(|e| e.0)));
}

#[test]
fn a_seeded_sequential_build_is_deterministic() {
    let points = Points::clustered(3_000, 16, 10, 3);
    let (a, b) = (build(&points, false, 99), build(&points, false, 99));
    for node in 0..points.len() as u32 {
        for layer in 0..=a.level(node) {
            assert_eq!(
                a.neighbors(node, layer),
                b.neighbors(node, layer),
                "node {node} layer {layer}"
            );
        }
    }
    assert_eq!(a.entry(), b.entry());
}

#[test]
fn filters_apply_inside_the_walk() {
    let (points, queries) = Points::clustered(20_000 + 200, 24, 40, 4).split_queries(200);
    let graph = build(&points, true, 11);
    for modulus in [10u32, 3] {
        let admit = |n: u32| n.is_multiple_of(modulus);
        let mut hits = 0;
        for q in 0..queries.len() as u32 {
            let want = points.exact(queries.row(q), 10, admit);
            let got = search(&graph, &points, queries.row(q), 10, 64, admit);
            assert!(got.iter().all(|&n| admit(n)), "a result the filter rejects");
            hits += got.iter().filter(|n| want.contains(n)).count();
        }
        let r = hits as f64 / (queries.len() * 10) as f64;
        assert!(r >= 0.95, "recall {r} at selectivity 1/{modulus}");
    }
}

#[test]
fn compaction_unlinks_removed_nodes_and_keeps_recall() {
    let (points, queries) = Points::clustered(10_000 + 200, 16, 20, 6).split_queries(200);
    let graph = build(&points, true, 13);
    let removed = |n: u32| n % 4 == 1;
    let detached = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool")
        .install(|| graph.compact(points.len(), &removed, &points, &|| false));
    assert_eq!(detached, Some(2_500));
    for node in 0..points.len() as u32 {
        for layer in 0..=graph.level(node) {
            let links = graph.neighbors(node, layer);
            if removed(node) {
                assert!(links.is_empty());
            } else {
                assert!(
                    links.iter().all(|&n| !removed(n)),
                    "node {node} still links to a removed node"
                );
            }
        }
    }
    let (entry, _) = graph.entry().expect("entry");
    assert!(!removed(entry));
    let mut hits = 0;
    for q in 0..queries.len() as u32 {
        let want = points.exact(queries.row(q), 10, |n| !removed(n));
        let got = search(&graph, &points, queries.row(q), 10, 64, |n| !removed(n));
        hits += got.iter().filter(|n| want.contains(n)).count();
    }
    let r = hits as f64 / (queries.len() * 10) as f64;
    assert!(r >= 0.95, "recall after compaction {r}");
}

#[test]
fn a_stopped_compaction_stops_early_and_leaves_every_live_node_reachable() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (points, queries) = Points::clustered(8_000 + 100, 16, 12, 21).split_queries(100);
    let graph = build(&points, true, 23);
    let removed = |n: u32| n % 3 == 1;
    let live = |n: u32| !removed(n);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    // The stop fires at the 500th of the 8,000 nodes' polls.
    let polls = AtomicUsize::new(0);
    let stop = || polls.fetch_add(1, Ordering::Relaxed) >= 500;
    let stopped = pool.install(|| graph.compact(points.len(), &removed, &points, &stop));
    assert_eq!(stopped, None);
    let polled = polls.load(Ordering::Relaxed);
    assert!(
        polled < 1_000,
        "relinking went on after the stop: {polled} polls of 8,000"
    );
    // Some lists were relinked and the removed nodes kept theirs (not detached: still waypoints).
    let relinked = (0..points.len() as u32)
        .filter(|&n| live(n) && graph.neighbors(n, 0).iter().all(|&m| live(m)))
        .count();
    assert!(relinked > 0);
    assert!((0..points.len() as u32).any(|n| removed(n) && !graph.neighbors(n, 0).is_empty()));
    assert_eq!(
        graph.connectivity(points.len(), &live),
        Default::default(),
        "a stopped compaction leaves every live node reachable"
    );
    // A later compaction detaches every removed node and keeps recall.
    let detached = pool.install(|| graph.compact(points.len(), &removed, &points, &|| false));
    assert_eq!(
        detached,
        Some((0..points.len() as u32).filter(|&n| removed(n)).count())
    );
    for node in 0..points.len() as u32 {
        let links = graph.neighbors(node, 0);
        assert!(if removed(node) {
            links.is_empty()
        } else {
            links.iter().all(|&m| live(m))
        });
    }
    let mut hits = 0;
    for q in 0..queries.len() as u32 {
        let want = points.exact(queries.row(q), 10, live);
        let got = search(&graph, &points, queries.row(q), 10, 64, live);
        hits += got.iter().filter(|n| want.contains(n)).count();
    }
    let r = hits as f64 / (queries.len() * 10) as f64;
    assert!(
        r >= 0.95,
        "recall after a stopped then a whole compaction {r}"
    );
}

#[test]
fn compacted_slots_can_be_relinked_with_new_data() {
    let mut points = Points::clustered(5_000, 16, 10, 8);
    let graph = build(&points, false, 17);
    let reused = |n: u32| n % 7 == 3;
    graph.compact(points.len(), &reused, &points, &|| false);
    let mut rng = StdRng::seed_from_u64(9);
    for node in (0..5_000u32).filter(|&n| reused(n)) {
        for d in 0..points.dim {
            points.data[node as usize * points.dim + d] = rng.gen_range(-1.0..1.0);
        }
    }
    for node in (0..5_000u32).filter(|&n| reused(n)) {
        graph.insert(node, &points);
    }
    graph.reconnect(&|_| true, &points);
    let own = self_recall(&graph, &points, 128);
    assert!(own >= 0.999, "self-query after reuse {own}");
}

/// Copies of a few points (more than a list holds) mixed into clustered data, built on pools of
/// 1 to 8 threads and compacted: layer 0 stays strongly connected over the live nodes. This
/// scorer cannot tell copies apart (`same_vector` is false), so it is the repair in
/// `reconnect`, not the selection rule for copies, that keeps them connected here.
#[test]
fn copies_stay_connected_on_any_number_of_threads() {
    for threads in [1, 2, 4, 8] {
        for seed in 0..3u64 {
            let mut points = Points::clustered(3_000, 8, 6, seed);
            let mut rng = StdRng::seed_from_u64(seed);
            for node in 0..3_000usize {
                if rng.gen_bool(0.3) {
                    let source = rng.gen_range(0..4) * 8;
                    let copy: Vec<f32> = points.data[source..source + 8].to_vec();
                    points.data[node * 8..node * 8 + 8].copy_from_slice(&copy);
                }
            }
            let mut graph = Graph::new(HnswParams::new(4, 32, seed).expect("params"));
            graph.reserve(points.len());
            let nodes: Vec<u32> = (0..points.len() as u32).collect();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| graph.insert_batch(&nodes, &points, threads > 1, &|_| true, &|| false));
            let health = graph.connectivity(points.len(), &|_| true);
            assert_eq!(health, Default::default(), "{threads} threads, seed {seed}");
            let removed = |n: u32| n % 5 == 2;
            pool.install(|| graph.compact(points.len(), &removed, &points, &|| false));
            let health = graph.connectivity(points.len(), &|n| !removed(n));
            assert_eq!(
                health,
                Default::default(),
                "compacted, {threads} threads, seed {seed}"
            );
        }
    }
}
