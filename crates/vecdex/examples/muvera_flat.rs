//! Candidate quality of FDE configurations, without a graph: exact inner-product scan over the
//! FDEs (FlatIndex), exact Chamfer rerank of the top C, recall@10 against exact Chamfer
//! (`/tmp/wn.gt1000` written by the `muvera` example; data from `node benchmark/dump.mjs wordnet-multivector /tmp`). Also the mean-vector baseline (MEAN=1).
//! Env: R, K, P (0 = identity), FINAL, CANDS.

mod common;

use std::time::Instant;

use common::{env_usize as env, read_f32, read_u32};

use vecdex::{
    FdeConfig, FdeEncoder, FlatConfig, FlatIndex, HnswConfig, HnswIndex, Metric, ProjectionType,
    Side, StopFlag,
};
use vecdex_distance::simd_level;
use vecdex_fde::TokenStore;

fn main() {
    let dim = 100;
    let base: Vec<f32> = read_f32("/tmp/wn.base.f32");
    let bo: Vec<u32> = read_u32("/tmp/wn.base.u32");
    let queries: Vec<f32> = read_f32("/tmp/wn.queries.f32");
    let qo: Vec<u32> = read_u32("/tmp/wn.queries.u32");
    let truth: Vec<u64> = std::fs::read("/tmp/wn.gt1000")
        .expect("gt")
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
        .collect();
    let n = bo.len() - 1;
    let q = qo.len() - 1;
    let mut store = TokenStore::new(dim);
    for i in 0..n {
        store.push(&base[bo[i] as usize * dim..bo[i + 1] as usize * dim]);
    }
    let mean = |data: &[f32], offsets: &[u32]| -> Vec<f32> {
        let mut out = vec![0f32; (offsets.len() - 1) * dim];
        for i in 0..offsets.len() - 1 {
            let row = &mut out[i * dim..(i + 1) * dim];
            for t in offsets[i]..offsets[i + 1] {
                for j in 0..dim {
                    row[j] += data[t as usize * dim + j];
                }
            }
        }
        out
    };
    let (doc_vecs, query_vecs, width, label) = if env("MEAN", 0) == 1 {
        // Document means scaled to unit length: inner products rank by angle.
        let mut docs = mean(&base, &bo);
        for row in docs.chunks_exact_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        (
            docs,
            mean(&queries, &qo),
            dim,
            "normalised mean vector".to_string(),
        )
    } else {
        let p = env("P", 16);
        let config = FdeConfig {
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
        let encoder = FdeEncoder::new(config).expect("config");
        let t = Instant::now();
        let d = encoder
            .encode_batch(&base, &bo, Side::Document, &|| false)
            .expect("ok")
            .expect("not stopped");
        let s = t.elapsed().as_secs_f64();
        let qv = encoder
            .encode_batch(&queries, &qo, Side::Query, &|| false)
            .expect("ok")
            .expect("not stopped");
        (
            d,
            qv,
            encoder.output_dimension(),
            format!(
                "FDE {} dims (encode {:.0} docs/s)",
                encoder.output_dimension(),
                n as f64 / s
            ),
        )
    };
    let mut flat = FlatIndex::new(FlatConfig {
        dim: width,
        metric: Metric::Dot,
    })
    .expect("flat");
    let keys: Vec<u64> = (0..n as u64).collect();
    flat.add(&keys, &doc_vecs, &StopFlag::never()).expect("add");
    let cands: Vec<usize> = std::env::var("CANDS")
        .unwrap_or("100,300,1000,3000".into())
        .split(',')
        .map(|s| s.parse().expect("int"))
        .collect();
    let cmax = *cands.iter().max().expect("one");
    let t = Instant::now();
    let found = flat
        .search(&query_vecs, cmax, None, &StopFlag::never())
        .expect("search");
    let scan_s = t.elapsed().as_secs_f64();
    println!("{label}: flat scan {:.0} QPS", q as f64 / scan_s);
    for &c in &cands {
        let t = Instant::now();
        let mut hit = 0;
        for i in 0..q {
            let docs: Vec<u32> = found.keys[i * found.k..i * found.k + c.min(found.k)]
                .iter()
                .map(|&k| k as u32)
                .collect();
            let mut scores = vec![0f32; docs.len()];
            store
                .score(
                    simd_level(),
                    &queries[qo[i] as usize * dim..qo[i + 1] as usize * dim],
                    &docs,
                    &mut scores,
                )
                .expect("a prepared query fits in memory");
            let mut order: Vec<usize> = (0..docs.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            let tr = &truth[i * 100..i * 100 + 10];
            hit += order[..10]
                .iter()
                .filter(|&&o| tr.contains(&(docs[o] as u64)))
                .count();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "  C={c}: recall@10 {:.3}, rerank {:.2} ms/query (1 thread)",
            hit as f64 / (q * 10) as f64,
            s * 1000.0 / q as f64
        );
    }
    // How well an HNSW graph over the FDEs returns their true top-C by inner product (GRAPH=1),
    // with the graph built on inner products (dot) or on angles (cosine).
    if env("GRAPH", 0) == 1 {
        for metric in [Metric::Dot, Metric::Cosine] {
            let mut hnsw = HnswIndex::new(HnswConfig::new(width, metric)).expect("hnsw");
            let t = Instant::now();
            hnsw.add(&keys, &doc_vecs, &StopFlag::never()).expect("add");
            println!(
                "graph ({metric}) built in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            for &c in &cands {
                let t = Instant::now();
                let r = hnsw
                    .search(&query_vecs, c, Some(c), None, &StopFlag::never())
                    .expect("search");
                let s = t.elapsed().as_secs_f64();
                let mut hit = 0;
                let mut hit10 = 0;
                for i in 0..q {
                    let want: std::collections::HashSet<u64> = found.keys
                        [i * found.k..i * found.k + c]
                        .iter()
                        .copied()
                        .collect();
                    hit += r.keys[i * r.k..i * r.k + r.counts[i] as usize]
                        .iter()
                        .filter(|k| want.contains(k))
                        .count();
                    let tr = &truth[i * 100..i * 100 + 10];
                    hit10 += r.keys[i * r.k..i * r.k + r.counts[i] as usize]
                        .iter()
                        .filter(|k| tr.contains(k))
                        .count();
                }
                println!("  ef=C={c}: graph recall of the FDE top-C {:.3}, Chamfer top-10 covered {:.3}, {:.0} QPS", hit as f64 / (q * c) as f64, hit10 as f64 / (q * 10) as f64, q as f64 / s);
            }
        }
    }
}
