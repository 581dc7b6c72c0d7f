//! Development harness for the compression issue: walks one HNSW graph (built on f32 rows) with
//! f32 distances, and with codes (`CODEC=sq8|sq4|f16|pq`, default sq8) followed by an f32 rescore of
//! the best candidates (all `ef` of them, or `k × OVERSAMPLE`), and prints recall@10 and
//! single-thread QPS of both over an efSearch sweep.
//!
//! node benchmark/dump.mjs glove-100k /tmp   # writes the two f32 files
//! cargo run --release -p vecdex --example hnsw_sq8 -- /tmp/glove-100k.base.f32 /tmp/glove-100k.queries.f32 100 cosine

use std::time::Instant;

mod common;
use common::read_f32;

use rayon::prelude::*;
use vecdex::{FlatConfig, FlatIndex, Metric, StopFlag};
use vecdex_distance::{padded_len, prefetch_row, RowKernel};
use vecdex_hnsw::{Graph, HnswParams, QueryDistance, Scored, Scorer};
use vecdex_quant::{Codec, F16Codec, PqCodec, PqConfig, Sq4Codec, Sq8Codec, SqConfig};

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

/// A query prepared by a codec, scored against the codes of every node (`size` bytes each).
struct CodeQuery<'a, C: Codec> {
    codec: &'a C,
    prepared: C::Query,
    codes: &'a [u8],
    size: usize,
}

impl<C: Codec> QueryDistance for CodeQuery<'_, C> {
    fn distance(&self, node: u32) -> f32 {
        self.codec.score(
            &self.prepared,
            &self.codes[node as usize * self.size..][..self.size],
        )
    }
    fn prefetch(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let p = self.codes[node as usize * self.size..]
                .as_ptr()
                .cast::<i8>();
            // SAFETY: prefetch never faults.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p);
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.add(self.size.saturating_sub(1)),
                );
            }
        }
    }
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
    let (n, k) = (base.len() / dim, 10);
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
    // Codecs train on at most 20,000 rows (k-means for PQ is the slow part).
    let sample = &base[..n.min(20_000) * dim];
    let which = std::env::var("CODEC").unwrap_or_else(|_| "sq8".into());
    let bench = Bench {
        graph: &graph,
        rows: &rows,
        base: &base,
        padded_queries: &padded_queries,
        truth: &truth,
        dim,
        k,
    };
    let start = Instant::now();
    match which.as_str() {
        "sq8" => bench.run(
            &Sq8Codec::train(sample, dim, codec_metric, SqConfig::default())?,
            &which,
            start,
        ),
        "sq4" => bench.run(
            &Sq4Codec::train(sample, dim, codec_metric, SqConfig::default())?,
            &which,
            start,
        ),
        "f16" => bench.run(&F16Codec::new(dim, codec_metric)?, &which, start),
        "pq" => bench.run(
            &PqCodec::train(sample, dim, codec_metric, PqConfig::new(dim / 4))?,
            &which,
            start,
        ),
        other => Err(format!("CODEC must be sq8, sq4, f16 or pq, got {other}").into()),
    }
}

/// One graph and data set, on which codecs are compared with the f32 walk.
struct Bench<'a> {
    graph: &'a Graph,
    rows: &'a Rows,
    base: &'a [f32],
    padded_queries: &'a [f32],
    truth: &'a vecdex::SearchResults,
    dim: usize,
    k: usize,
}

impl Bench<'_> {
    /// Encodes every row, then sweeps efSearch comparing the f32 walk with the walk on codes
    /// plus an f32 rescore.
    fn run<C: Codec>(
        &self,
        codec: &C,
        name: &str,
        start: Instant,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let Bench {
            graph,
            rows,
            base,
            padded_queries,
            truth,
            dim,
            k,
        } = *self;
        let size = codec.code_size();
        let n = base.len() / dim;
        let q = truth.counts.len();
        let stride = rows.stride;
        let mut codes = vec![0u8; n * size];
        codes
            .par_chunks_mut(size)
            .zip(base.par_chunks(dim))
            .for_each(|(code, row)| codec.encode(row, code));
        println!(
            "{name}: trained and encoded in {:.2} s: {size} bytes per vector ({:.3}× f32)",
            start.elapsed().as_secs_f64(),
            size as f64 / (dim * 4) as f64
        );
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
                                graph.search(&RowQuery(rows, query), k, ef, &admit, ctx, &mut hits);
                            } else {
                                let prepared = CodeQuery {
                                    codec,
                                    prepared: codec.prepare(&query[..dim]),
                                    codes: &codes,
                                    size,
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
            "ef {ef:4}: f32 recall {:.4} qps {:7.0} | {name}+rescore recall {:.4} qps {:7.0} | qps ratio {:.2}",
            recall(&results[0]),
            qps[0][1],
            recall(&results[1]),
            qps[1][1],
            qps[1][1] / qps[0][1]
        );
        }
        Ok(())
    }
}
