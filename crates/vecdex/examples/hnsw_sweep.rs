//! Development harness: builds an HnswIndex over raw little-endian f32 files and prints recall@10
//! against an exact scan and single-thread QPS over an efSearch sweep. For profiling the graph
//! outside Node (perf, callgrind); the benchmark suite `ann` is the measurement of record.
//!
//! node benchmark/dump.mjs glove-100k /tmp   # writes the two f32 files
//! cargo run --release -p vecdex --example hnsw_sweep -- /tmp/glove-100k.base.f32 /tmp/glove-100k.queries.f32 100 cosine [ORDER]

use std::time::Instant;

mod common;
use common::read_f32;

use vecdex::{FlatConfig, FlatIndex, HnswConfig, HnswIndex, InsertionOrder, Metric, StopFlag};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: hnsw_sweep BASE.f32 QUERIES.f32 DIM METRIC [given|random|lid]".into());
    }
    let dim: usize = args[3].parse()?;
    let metric: Metric = args[4].parse().map_err(|_| "metric: cosine, dot or l2sq")?;
    let order = args
        .get(5)
        .map(|s| InsertionOrder::parse(s).ok_or("order: given, random or lid"))
        .transpose()?
        .unwrap_or_default();
    let base = read_f32(&args[1]);
    let queries = read_f32(&args[2]);
    let (n, q) = (base.len() / dim, queries.len() / dim);
    let keys: Vec<u64> = (0..n as u64).collect();
    let k = 10;

    let mut exact = FlatIndex::new(FlatConfig { dim, metric })?;
    exact.add(&keys, &base, &StopFlag::never())?;
    let truth = exact.search(&queries, k, None, &StopFlag::never())?;

    let mut config = HnswConfig::new(dim, metric);
    config.insertion_order = order;
    let mut index = HnswIndex::new(config)?;
    let start = Instant::now();
    index.add(&keys, &base, &StopFlag::never())?;
    let build = start.elapsed().as_secs_f64();
    let stats = index.stats();
    println!(
        "n {n} dim {dim} {metric:?} order {order:?}: build {build:.2} s, levels {}, mean degree {:.1}, isolated {}, {:?}, memory {:.1} MiB",
        stats.graph.levels,
        stats.graph.mean_degree,
        stats.graph.isolated,
        stats.graph.connectivity,
        stats.memory_bytes as f64 / 1048576.0
    );
    // Self-queries: does every stored vector find itself first?
    let sample: Vec<usize> = (0..n).step_by((n / 10_000).max(1)).collect();
    for ef in [64, 128] {
        let found = sample
            .iter()
            .filter(|&&i| {
                index
                    .search(
                        &base[i * dim..(i + 1) * dim],
                        1,
                        Some(ef),
                        None,
                        &StopFlag::never(),
                    )
                    .is_ok_and(|r| {
                        r.keys.first() == Some(&(i as u64))
                            || r.distances.first().is_some_and(|d| *d <= 1e-6)
                    })
            })
            .count();
        println!(
            "self-query ef {ef}: {:.4} of {}",
            found as f64 / sample.len() as f64,
            sample.len()
        );
    }
    let sweep: Vec<usize> = match std::env::var("SWEEP_EF") {
        Ok(list) => list.split(',').filter_map(|s| s.parse().ok()).collect(),
        Err(_) => vec![10, 16, 24, 32, 48, 64, 96, 128, 192, 256],
    };
    for ef in sweep {
        let start = Instant::now();
        let mut hits = 0usize;
        for i in 0..q {
            let r = index.search(
                &queries[i * dim..(i + 1) * dim],
                k,
                Some(ef),
                None,
                &StopFlag::never(),
            )?;
            let want = &truth.keys[i * k..(i + 1) * k];
            hits += r.keys.iter().filter(|key| want.contains(key)).count();
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "ef {ef:4}  recall {:.4}  qps {:8.0}",
            hits as f64 / (q * k) as f64,
            q as f64 / seconds
        );
    }
    Ok(())
}
