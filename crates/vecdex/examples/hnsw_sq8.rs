//! Development harness for the compression issue: walks one HNSW graph (built on f32 rows) with
//! f32 distances, and with SQ8 codes (asymmetric, AVX-512 kernel) followed by an f32 rescore of
//! the best candidates (all `ef` of them, or `k × OVERSAMPLE`), and prints recall@10 and
//! single-thread QPS of both over an efSearch sweep.
//!
//! node benchmark/dump.mjs glove-100k /tmp   # writes the two f32 files
//! cargo run --release -p vecdex --example hnsw_sq8 -- /tmp/glove-100k.base.f32 /tmp/glove-100k.queries.f32 100 cosine

use std::time::Instant;

use rayon::prelude::*;
use vecdex::{FlatConfig, FlatIndex, Metric, StopFlag};
use vecdex_distance::{padded_len, prefetch_row, RowKernel};
use vecdex_hnsw::{Graph, HnswParams, QueryDistance, Scored, Scorer};
use vecdex_quant::{Sq8Codec, SqConfig};

struct Rows {
    data: Vec<f32>,
    stride: usize,
    kernel: RowKernel,
    l2: bool,
}

impl Rows {
    fn row(&self, n: u32) -> &[f32] {
        &self.data[n as usize * self.stride..][..self.stride]
    }
    fn score(&self, a: &[f32], b: &[f32]) -> f32 {
        if self.l2 {
            self.kernel.l2sq(a, b)
        } else {
            1.0 - self.kernel.dot(a, b)
        }
    }
}

struct RowQuery<'a>(&'a Rows, &'a [f32]);

impl QueryDistance for RowQuery<'_> {
    fn distance(&self, node: u32) -> f32 {
        self.0.score(self.1, self.0.row(node))
    }
    fn prefetch(&self, node: u32) {
        prefetch_row(self.0.row(node));
    }
}

impl Scorer for Rows {
    type NodeQuery<'s> = RowQuery<'s>;
    fn node_query(&self, node: u32) -> RowQuery<'_> {
        RowQuery(self, self.row(node))
    }
    fn between(&self, a: u32, b: u32) -> f32 {
        self.score(self.row(a), self.row(b))
    }
}

/// SQ8 codes padded to `stride` bytes, scored against a prepared f32 query.
struct Codes {
    data: Vec<u8>,
    stride: usize,
    kernel: RowKernel,
}

struct CodeQuery<'a> {
    codes: &'a Codes,
    /// dot: `q ⊙ step`; l2: `q − lo` (padded with zeros).
    weights: Vec<f32>,
    steps: &'a [f32],
    constant: f32,
    l2: bool,
}

impl QueryDistance for CodeQuery<'_> {
    fn distance(&self, node: u32) -> f32 {
        let code = &self.codes.data[node as usize * self.codes.stride..][..self.codes.stride];
        if self.l2 {
            self.codes.kernel.l2_u8(&self.weights, self.steps, code)
        } else {
            1.0 - self.constant - self.codes.kernel.dot_u8(&self.weights, code)
        }
    }
    fn prefetch(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let p = self.codes.data[node as usize * self.codes.stride..]
                .as_ptr()
                .cast::<i8>();
            // SAFETY: prefetch never faults.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
        }
    }
}

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn normalize(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt() as f32;
        row.iter_mut().for_each(|x| *x /= norm);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dim: usize = args
        .get(3)
        .ok_or("usage: hnsw_sq8 BASE QUERIES DIM METRIC")?
        .parse()?;
    let metric: Metric = args.get(4).ok_or("metric")?.parse().map_err(|_| "metric")?;
    let (mut base, mut queries) = (read_f32(&args[1]), read_f32(&args[2]));
    if metric == Metric::Cosine {
        normalize(&mut base, dim);
        normalize(&mut queries, dim);
    }
    let (n, q, k) = (base.len() / dim, queries.len() / dim, 10);
    let l2 = metric == Metric::L2sq;
    let truth = {
        let mut exact = FlatIndex::new(FlatConfig { dim, metric })?;
        exact.add(
            &(0..n as u64).collect::<Vec<_>>(),
            &base,
            &StopFlag::never(),
        )?;
        exact.search(&queries, k, None, &StopFlag::never())?
    };
    let stride = padded_len(dim);
    let pad = |rows: &[f32]| -> Vec<f32> {
        rows.chunks_exact(dim)
            .flat_map(|r| {
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0.0, stride - dim))
            })
            .collect()
    };
    let kernel = RowKernel::default();
    let rows = Rows {
        data: pad(&base),
        stride,
        kernel,
        l2,
    };
    let padded_queries = pad(&queries);
    let mut graph = Graph::new(HnswParams::new(16, 128, 7).map_err(|e| e.0)?);
    graph.reserve(n);
    let start = Instant::now();
    graph.insert_batch(&(0..n as u32).collect::<Vec<_>>(), &rows, true, &|| false);
    println!(
        "graph of {n} built in {:.2} s",
        start.elapsed().as_secs_f64()
    );

    let codec_metric = if l2 { Metric::L2sq } else { Metric::Dot };
    let start = Instant::now();
    let codec = Sq8Codec::train(&base, dim, codec_metric, SqConfig::default())?;
    let mut codes = Codes {
        data: vec![0u8; n * stride],
        stride,
        kernel,
    };
    codes
        .data
        .par_chunks_mut(stride)
        .zip(base.par_chunks(dim))
        .for_each(|(code, row)| {
            use vecdex_quant::Codec;
            codec.encode(row, &mut code[..dim]);
        });
    println!(
        "SQ8 trained and encoded in {:.2} s: {} bytes per vector (f32 {})",
        start.elapsed().as_secs_f64(),
        dim,
        dim * 4
    );
    let (lo, step) = codec.ranges();
    let padded_steps: Vec<f32> = step
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0.0, stride - dim))
        .collect();

    let recall = |found: &[Vec<u32>]| -> f64 {
        let hits: usize = found
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.iter()
                    .filter(|&&x| truth.keys[i * k..(i + 1) * k].contains(&u64::from(x)))
                    .count()
            })
            .sum();
        hits as f64 / (q * k) as f64
    };
    let admit = |_: u32| true;
    let oversample: usize = std::env::var("OVERSAMPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX / 64);
    for ef in [16, 24, 32, 48, 64, 96, 128, 192] {
        let mut results = [Vec::new(), Vec::new()];
        let mut qps = [Vec::new(), Vec::new()];
        for _round in 0..3 {
            for (mode, (found, rate)) in results.iter_mut().zip(qps.iter_mut()).enumerate() {
                let start = Instant::now();
                let mut out = Vec::with_capacity(q);
                let mut hits: Vec<Scored> = Vec::new();
                for i in 0..q {
                    let query = &padded_queries[i * stride..(i + 1) * stride];
                    graph.with_context(|ctx| {
                        if mode == 0 {
                            graph.search(&RowQuery(&rows, query), k, ef, &admit, ctx, &mut hits);
                        } else {
                            let prepared = if l2 {
                                CodeQuery {
                                    codes: &codes,
                                    weights: query
                                        .iter()
                                        .zip(lo.iter().chain(std::iter::repeat(&0.0)))
                                        .map(|(a, b)| a - b)
                                        .collect(),
                                    steps: &padded_steps,
                                    constant: 0.0,
                                    l2,
                                }
                            } else {
                                CodeQuery {
                                    codes: &codes,
                                    weights: query
                                        .iter()
                                        .zip(&padded_steps)
                                        .map(|(a, b)| a * b)
                                        .collect(),
                                    steps: &padded_steps,
                                    constant: query.iter().zip(lo).map(|(a, b)| a * b).sum(),
                                    l2,
                                }
                            };
                            graph.search(&prepared, ef, ef, &admit, ctx, &mut hits);
                            // Rescore the best k × OVERSAMPLE candidates with the full vectors.
                            hits.truncate(k * oversample);
                            for hit in hits.iter_mut() {
                                hit.distance = rows.score(query, rows.row(hit.node));
                            }
                            hits.sort_unstable();
                            hits.truncate(k);
                        }
                    });
                    out.push(hits.iter().map(|h| h.node).collect::<Vec<u32>>());
                }
                rate.push(q as f64 / start.elapsed().as_secs_f64());
                *found = out;
            }
        }
        for r in &mut qps {
            r.sort_by(f64::total_cmp);
        }
        println!(
            "ef {ef:4}: f32 recall {:.4} qps {:7.0} | sq8+rescore recall {:.4} qps {:7.0} | qps ratio {:.2}",
            recall(&results[0]),
            qps[0][1],
            recall(&results[1]),
            qps[1][1],
            qps[1][1] / qps[0][1]
        );
    }
    Ok(())
}
