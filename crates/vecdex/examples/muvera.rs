//! Experiment harness for MUVERA settings on a CSR dump (`node benchmark/dump.mjs wordnet-multivector /tmp`):
//! `/tmp/wn.{base,queries}.{f32,u32}`. Env: R, K, P (projection dim, 0 = identity), FINAL,
//! M, EFC, CANDS (list), EF, QUANT (none|sq8|…), QUERIES. Prints exact and FDE figures.

mod common;

use std::time::Instant;

use common::{env_usize as env, read_f32, read_u32};

use vecdex::{
    Compression, FdeConfig, HnswConfig, Metric, MultiVectorConfig, MultiVectorIndex,
    MultiVectorSearch, ProjectionType, Quantization, SqConfig, StopFlag, Strategy,
};

fn main() {
    let dim = 100;
    let base: Vec<f32> = read_f32("/tmp/wn.base.f32");
    let base_offsets: Vec<u32> = read_u32("/tmp/wn.base.u32");
    let queries: Vec<f32> = read_f32("/tmp/wn.queries.f32");
    let mut query_offsets: Vec<u32> = read_u32("/tmp/wn.queries.u32");
    let q = env("QUERIES", 1000).min(query_offsets.len() - 1);
    query_offsets.truncate(q + 1);
    let queries = &queries[..query_offsets[q] as usize * dim];
    let n = base_offsets.len() - 1;
    let keys: Vec<u64> = (0..n as u64).collect();
    let p = env("P", 16);
    let fde = FdeConfig {
        num_repetitions: env("R", 20),
        num_simhash_projections: env("K", 5) as u32,
        projection_type: if p == 0 {
            ProjectionType::Identity
        } else {
            ProjectionType::AmsSketch
        },
        projection_dimension: if p == 0 { dim } else { p },
        final_projection_dimension: match env("FINAL", 0) {
            0 => None,
            f => Some(f),
        },
        ..FdeConfig::new(dim)
    };
    let mut config = MultiVectorConfig::new(fde, Metric::Cosine);
    config.fde_metric = if env("FDE_DOT", 0) == 1 {
        Metric::Dot
    } else {
        Metric::Cosine
    };
    config.graph = HnswConfig {
        m: env("M", 16),
        ef_construction: env("EFC", 128),
        ..config.graph
    };
    config.compression = match std::env::var("QUANT").as_deref() {
        Ok("sq8") => Compression {
            quantization: Quantization::Sq8(SqConfig {
                symmetric: true,
                ..SqConfig::default()
            }),
            ..Compression::default()
        },
        _ => Compression::default(),
    };
    let mut index = MultiVectorIndex::new(config).expect("config");
    println!("FDE dimension {}", index.encoder().output_dimension());
    let stop = StopFlag::never();
    let t = Instant::now();
    let encoded = index
        .encode_documents(&keys, &base, &base_offsets, &stop)
        .expect("encode");
    let encode_s = t.elapsed().as_secs_f64();
    println!(
        "encode {n} docs: {encode_s:.2} s ({:.0} docs/s)",
        n as f64 / encode_s
    );
    let t = Instant::now();
    let pending = index.prepare(encoded).expect("prepare");
    index.link(&pending, &stop).expect("link");
    index.commit(pending);
    println!(
        "build {:.1} s, memory {:.0} MB",
        t.elapsed().as_secs_f64(),
        index.memory_bytes() as f64 / 1e6
    );
    let gt_path = format!("/tmp/wn.gt{q}");
    let truth: Vec<u64> = if let Ok(bytes) = std::fs::read(&gt_path) {
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect()
    } else {
        let t = Instant::now();
        let exact = index
            .search_exact(queries, &query_offsets, 100, None, &stop)
            .expect("exact");
        let s = t.elapsed().as_secs_f64();
        println!("exact: {:.1} QPS (batch of {q})", q as f64 / s);
        let bytes: Vec<u8> = exact.keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        std::fs::write(&gt_path, bytes).expect("write gt");
        exact.keys
    };
    let cands: Vec<usize> = std::env::var("CANDS")
        .unwrap_or("50,100,200,400".into())
        .split(',')
        .map(|s| s.parse().expect("int"))
        .collect();
    for strategy in [Strategy::Rerank, Strategy::Walk] {
        for &c in &cands {
            let params = MultiVectorSearch {
                k: 10,
                candidates: Some(c),
                ef_search: Some(env("EF", 0).max(c)),
                ball_carving: None,
                strategy: Some(strategy),
                token_neighbours: None,
            };
            let t = Instant::now();
            let r = index
                .search(queries, &query_offsets, params, None, &stop)
                .expect("search");
            let s = t.elapsed().as_secs_f64();
            let mut hit = 0;
            for i in 0..q {
                let tr = &truth[i * 100..i * 100 + 10];
                hit += r.keys[i * 10..i * 10 + 10]
                    .iter()
                    .filter(|k| tr.contains(k))
                    .count();
            }
            println!(
                "{} candidates {c}: recall@10 {:.3}, {:.0} QPS (batch)",
                strategy.name(),
                hit as f64 / (q * 10) as f64,
                q as f64 / s
            );
        }
    }
}
