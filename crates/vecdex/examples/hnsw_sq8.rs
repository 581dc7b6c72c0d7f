//! Development harness for the compression issue: walks one HNSW graph (built on f32 rows) with
//! f32 distances, and with codes followed by an f32 rescore of the best candidates (all `ef` of
//! them, or `k × OVERSAMPLE`), and prints recall@10 and single-thread QPS over an efSearch sweep.
//!
//! `CODEC` is a comma-separated list of `sq8` (default), `sq8sym` (SQ8 with the query quantized
//! too), `sq4`, `f16`, `pq`; every codec listed runs in the same process, interleaved with the f32
//! walk in each of `ROUNDS` rounds (default 3), so machine drift hits them all alike: QPS is the
//! median of the rounds, the ratio to f32 the median of the per-round ratios. The last two lines
//! run each walk at the ef that reaches recall 0.90 and 0.95 on its own sweep, to compare them at
//! equal recall. Before the sweep, a scan of the first `SCAN_ROWS` vectors (default 4096, cache-resident)
//! for `SCAN_QUERIES` queries (default 100), `SCAN_ROUNDS` times (default 11), gives the cost of
//! one score in ns, free of graph and memory effects; `SCAN_ONLY=1` stops after it (no graph
//! build). Valgrind does not run AVX-512, so callgrind only counts the scalar and AVX2 paths.
//!
//! node benchmark/dump.mjs glove-100k /tmp   # writes the two f32 files
//! CODEC=sq8,sq8sym,sq4 cargo run --release -p vecdex --example hnsw_sq8 -- /tmp/glove-100k.base.f32 /tmp/glove-100k.queries.f32 100 cosine

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

/// One way of walking the graph for a query: on f32 rows, or on a codec's codes plus a rescore.
trait Walk {
    fn name(&self) -> &str;
    /// The `k` best nodes for `query` (a padded row) into `hits`.
    fn search(
        &self,
        bench: &Bench,
        graph: &Graph,
        query: &[f32],
        ef: usize,
        hits: &mut Vec<Scored>,
    );
    /// Scores the first `n` stored vectors against `query`; returns a checksum (keeps the work
    /// alive).
    fn scan(&self, bench: &Bench, query: &[f32], n: usize) -> f32;
}

struct F32Walk;

impl Walk for F32Walk {
    fn name(&self) -> &str {
        "f32"
    }
    fn search(
        &self,
        bench: &Bench,
        graph: &Graph,
        query: &[f32],
        ef: usize,
        hits: &mut Vec<Scored>,
    ) {
        let query = RowQuery(bench.rows, query);
        graph.with_context(|ctx| graph.search(&query, bench.k, ef, &|_| true, ctx, hits));
    }
    fn scan(&self, bench: &Bench, query: &[f32], n: usize) -> f32 {
        scan_rows(&RowQuery(bench.rows, query), n)
    }
}

/// A codec and the codes of every base row.
struct CodeWalk<C: Codec> {
    name: String,
    codec: C,
    codes: Vec<u8>,
    oversample: usize,
}

impl<C: Codec> CodeWalk<C> {
    fn new(name: &str, codec: C, base: &[f32], start: Instant) -> Self {
        let (dim, size) = (codec.dim(), codec.code_size());
        let mut codes = vec![0u8; base.len() / dim * size];
        codes
            .par_chunks_mut(size)
            .zip(base.par_chunks(dim))
            .for_each(|(code, row)| codec.encode(row, code));
        println!(
            "{name}: trained and encoded in {:.2} s: {size} bytes per vector ({:.3}× f32)",
            start.elapsed().as_secs_f64(),
            size as f64 / (dim * 4) as f64
        );
        let oversample = std::env::var("OVERSAMPLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX / 64);
        CodeWalk {
            name: name.to_string(),
            codec,
            codes,
            oversample,
        }
    }

    fn query(&self, query: &[f32]) -> CodeQuery<'_, C> {
        CodeQuery {
            codec: &self.codec,
            prepared: self.codec.prepare(&query[..self.codec.dim()]),
            codes: &self.codes,
            size: self.codec.code_size(),
        }
    }
}

impl<C: Codec> Walk for CodeWalk<C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn search(
        &self,
        bench: &Bench,
        graph: &Graph,
        query: &[f32],
        ef: usize,
        hits: &mut Vec<Scored>,
    ) {
        let prepared = self.query(query);
        let (rows, k) = (bench.rows, bench.k);
        graph.with_context(|ctx| graph.search(&prepared, ef, ef, &|_| true, ctx, hits));
        // Rescore the best k × OVERSAMPLE candidates with the full vectors.
        hits.truncate(k.saturating_mul(self.oversample));
        for hit in hits.iter_mut() {
            hit.distance = rows.score(query, rows.row(hit.node));
        }
        hits.sort_unstable();
        hits.truncate(k);
    }
    fn scan(&self, _bench: &Bench, query: &[f32], n: usize) -> f32 {
        scan_rows(&self.query(query), n)
    }
}

/// Sum of the distances from `query` to nodes `0..n`, in order (the scan measured per score).
#[inline(never)]
fn scan_rows<Q: QueryDistance>(query: &Q, n: usize) -> f32 {
    (0..n as u32).map(|node| query.distance(node)).sum()
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
    let codec_metric = if l2 { Metric::L2sq } else { Metric::Dot };
    // Codecs train on at most 20,000 rows (k-means for PQ is the slow part).
    let sample = &base[..n.min(20_000) * dim];
    let list = std::env::var("CODEC").unwrap_or_else(|_| "sq8".into());
    let mut walks: Vec<Box<dyn Walk>> = vec![Box::new(F32Walk)];
    for name in list.split(',') {
        let start = Instant::now();
        let sq = |symmetric| SqConfig {
            symmetric,
            ..SqConfig::default()
        };
        walks.push(match name {
            "sq8" | "sq8sym" => {
                let codec = Sq8Codec::train(sample, dim, codec_metric, sq(name == "sq8sym"))?;
                Box::new(CodeWalk::new(name, codec, &base, start))
            }
            "sq4" => {
                let codec = Sq4Codec::train(sample, dim, codec_metric, sq(false))?;
                Box::new(CodeWalk::new(name, codec, &base, start))
            }
            "f16" => Box::new(CodeWalk::new(
                name,
                F16Codec::new(dim, codec_metric)?,
                &base,
                start,
            )),
            "pq" => Box::new(CodeWalk::new(
                name,
                PqCodec::train(sample, dim, codec_metric, PqConfig::new(dim / 4))?,
                &base,
                start,
            )),
            other => {
                return Err(
                    format!("CODEC must list sq8, sq8sym, sq4, f16 or pq, got {other}").into(),
                )
            }
        });
    }
    let bench = Bench {
        rows: &rows,
        padded_queries: &padded_queries,
        k,
    };
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    bench.scan(
        &walks,
        env("SCAN_ROWS", 4096),
        env("SCAN_QUERIES", 100),
        env("SCAN_ROUNDS", 11),
    );
    if std::env::var("SCAN_ONLY").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    let truth = {
        let mut exact = FlatIndex::new(FlatConfig { dim, metric })?;
        exact.add(
            &(0..n as u64).collect::<Vec<_>>(),
            &base,
            &StopFlag::never(),
        )?;
        exact.search(&queries, k, None, &StopFlag::never())?
    };
    let mut graph = Graph::new(HnswParams::new(16, 128, 7).map_err(|e| e.0)?);
    graph.reserve(n);
    let start = Instant::now();
    graph.insert_batch(
        &(0..n as u32).collect::<Vec<_>>(),
        &rows,
        true,
        &|_| true,
        &|| false,
    );
    println!(
        "graph of {n} built in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    bench.sweep(&walks, &graph, &truth, env("ROUNDS", 3));
    Ok(())
}

/// One graph and data set, on which codecs are compared with the f32 walk.
struct Bench<'a> {
    rows: &'a Rows,
    padded_queries: &'a [f32],
    k: usize,
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Bench<'_> {
    fn query(&self, i: usize) -> &[f32] {
        let stride = self.rows.stride;
        &self.padded_queries[i * stride..(i + 1) * stride]
    }

    /// ns per score of a scan over the first `rows` stored vectors (small enough to stay in
    /// cache: the cost of the kernel, not of memory) for `queries` queries: min and median of
    /// `rounds`.
    fn scan(&self, walks: &[Box<dyn Walk>], rows: usize, queries: usize, rounds: usize) {
        let queries = queries.min(self.padded_queries.len() / self.rows.stride);
        let rows = rows.min(self.rows.data.len() / self.rows.stride);
        let mut ns = vec![Vec::new(); walks.len()];
        let mut checksum = 0f32;
        for _ in 0..rounds.max(1) {
            for (walk, ns) in walks.iter().zip(&mut ns) {
                let start = Instant::now();
                for i in 0..queries {
                    checksum += walk.scan(self, self.query(i), rows);
                }
                ns.push(start.elapsed().as_secs_f64() * 1e9 / (queries * rows) as f64);
            }
        }
        let line: Vec<String> = walks
            .iter()
            .zip(&mut ns)
            .map(|(walk, ns)| {
                format!(
                    "{} {:.2} / {:.2}",
                    walk.name(),
                    ns.iter().copied().fold(f64::INFINITY, f64::min),
                    median(ns)
                )
            })
            .collect();
        println!(
            "scan of {rows} rows × {queries} queries, ns per score (min / median of {rounds}): {} \
             (checksum {checksum:.1})",
            line.join(" | ")
        );
    }

    /// Recall@k and QPS of `walk` at `ef` over every query.
    fn run(
        &self,
        walk: &dyn Walk,
        graph: &Graph,
        truth: &vecdex::SearchResults,
        ef: usize,
    ) -> (f64, f64) {
        let (k, q) = (self.k, truth.counts.len());
        let mut hits: Vec<Scored> = Vec::new();
        let mut found = 0;
        let start = Instant::now();
        for i in 0..q {
            walk.search(self, graph, self.query(i), ef, &mut hits);
            let truth = &truth.keys[i * k..(i + 1) * k];
            found += hits
                .iter()
                .filter(|h| truth.contains(&u64::from(h.node)))
                .count();
        }
        let qps = q as f64 / start.elapsed().as_secs_f64();
        (found as f64 / (q * k) as f64, qps)
    }

    /// Runs every walk at its own ef, interleaved, `rounds` times: per walk, the recall, the
    /// median QPS and the median of the per-round ratios to the first walk (f32), whose rounds
    /// share the machine's state of the moment.
    fn compare(
        &self,
        walks: &[Box<dyn Walk>],
        efs: &[usize],
        graph: &Graph,
        truth: &vecdex::SearchResults,
        rounds: usize,
    ) -> Vec<(f64, f64, f64)> {
        let mut recalls = vec![0.0; walks.len()];
        let mut qps = vec![Vec::new(); walks.len()];
        for _round in 0..rounds.max(1) {
            for ((walk, ef), (recall, rate)) in
                walks.iter().zip(efs).zip(recalls.iter_mut().zip(&mut qps))
            {
                let (r, q) = self.run(walk.as_ref(), graph, truth, *ef);
                *recall = r;
                rate.push(q);
            }
        }
        qps.iter()
            .zip(&recalls)
            .map(|(rate, recall)| {
                let mut ratios: Vec<f64> = rate.iter().zip(&qps[0]).map(|(r, f)| r / f).collect();
                (*recall, median(&mut rate.clone()), median(&mut ratios))
            })
            .collect()
    }

    /// Sweeps efSearch comparing the walks (f32 first); then runs each walk at the ef that
    /// reaches recall 0.90 and 0.95 on its own sweep (interpolated), to compare them at equal
    /// recall.
    fn sweep(
        &self,
        walks: &[Box<dyn Walk>],
        graph: &Graph,
        truth: &vecdex::SearchResults,
        rounds: usize,
    ) {
        const EFS: [usize; 8] = [16, 24, 32, 48, 64, 96, 128, 192];
        let mut curves = vec![Vec::new(); walks.len()];
        for ef in EFS {
            let results = self.compare(walks, &vec![ef; walks.len()], graph, truth, rounds);
            let mut line = Vec::new();
            for ((walk, (recall, qps, ratio)), curve) in walks.iter().zip(results).zip(&mut curves)
            {
                curve.push(recall);
                line.push(format!(
                    "{} recall {recall:.4} qps {qps:6.0} ({ratio:.2}×)",
                    walk.name()
                ));
            }
            println!("ef {ef:4}: {}", line.join(" | "));
        }
        for target in [0.90, 0.95] {
            // The ef at which each walk's recall crosses `target`, linear between sweep points.
            let efs: Option<Vec<usize>> = curves
                .iter()
                .map(|curve| {
                    let i = curve
                        .windows(2)
                        .position(|w| w[0] <= target && target <= w[1])?;
                    let (a, b) = (curve[i], curve[i + 1]);
                    let t = if b > a { (target - a) / (b - a) } else { 0.0 };
                    let ef = EFS[i] as f64 + t * (EFS[i + 1] - EFS[i]) as f64;
                    Some(ef.round() as usize)
                })
                .collect();
            let Some(efs) = efs else {
                println!("recall {target:.2}: outside the sweep for some codec");
                continue;
            };
            let results = self.compare(walks, &efs, graph, truth, rounds);
            let line: Vec<String> = walks
                .iter()
                .zip(&efs)
                .zip(results)
                .map(|((walk, ef), (recall, qps, ratio))| {
                    format!(
                        "{} ef {ef} recall {recall:.4} qps {qps:6.0} ({ratio:.2}×)",
                        walk.name()
                    )
                })
                .collect();
            println!("recall ≈ {target:.2}: {}", line.join(" | "));
        }
    }
}
