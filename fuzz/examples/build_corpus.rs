//! Writes the seed corpus: small valid HNSW and flat images of every codec and metric (with
//! tombstones and free slots), into `corpus/<target>/` next to this crate (or under the folder
//! given as the first argument). About 100 KB in all; run again to recreate it.
//!
//!     cargo run --example build_corpus

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{
    Compression, FlatConfig, FlatIndex, HnswConfig, HnswIndex, LinkMode, Metric, PqConfig,
    Quantization, Reduction, SqConfig, StopFlag,
};
use vecdex_store::{encode, FileHeader, IndexKind};

const DIM: usize = 8;

fn rows(rng: &mut StdRng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn codecs() -> Vec<(&'static str, Compression)> {
    let with = |quantization, reduction| Compression {
        quantization,
        reduction,
        // Trains by itself once this many vectors are held (the seeds hold more).
        training_size: Some(16),
        ..Compression::default()
    };
    let sq = SqConfig::default();
    vec![
        ("none", Compression::default()),
        ("f16", with(Quantization::F16, Reduction::None)),
        ("bf16", with(Quantization::Bf16, Reduction::None)),
        ("sq8", with(Quantization::Sq8(sq), Reduction::None)),
        (
            "sq8sym",
            with(
                Quantization::Sq8(SqConfig {
                    clip_quantile: 0.01,
                    symmetric: true,
                }),
                Reduction::None,
            ),
        ),
        (
            "sq4prefix",
            with(Quantization::Sq4(sq), Reduction::Prefix(6)),
        ),
        ("binary", with(Quantization::Binary, Reduction::None)),
        (
            "pq",
            with(Quantization::Pq(PqConfig::new(4)), Reduction::None),
        ),
        ("pca", with(Quantization::None, Reduction::Pca(4))),
        ("sq8pca", with(Quantization::Sq8(sq), Reduction::Pca(4))),
    ]
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "cos",
        Metric::Dot => "dot",
        Metric::L2sq => "l2",
        Metric::Hamming => "ham",
    }
}

/// `n` vectors added, a few removed, compacted (free slots), a few more removed (tombstones)
/// and some re-added.
fn hnsw(metric: Metric, compression: Compression, n: u64, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut config = HnswConfig::new(DIM, metric);
    config.m = 4;
    config.ef_construction = 16;
    let mut index = HnswIndex::with_compression(config, compression).unwrap();
    let stop = StopFlag::never();
    let keys: Vec<u64> = (0..n).map(|k| k * 7 + 3).collect();
    if n > 0 {
        let vectors = rows(&mut rng, n as usize, DIM);
        index
            .add_with(&keys, &vectors, &stop, LinkMode::Sequential)
            .unwrap();
    }
    if n >= 20 {
        index.remove(&keys[..3]).unwrap();
        index.compact(&stop).unwrap();
        index.remove(&keys[5..8]).unwrap();
        let again = rows(&mut rng, 2, DIM);
        index
            .add_with(&keys[..2], &again, &stop, LinkMode::Sequential)
            .unwrap();
    }
    index.to_bytes().unwrap()
}

fn flat(metric: Metric, compression: Compression, n: u64, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = FlatConfig { dim: DIM, metric };
    let mut index = FlatIndex::with_compression(config, compression).unwrap();
    let stop = StopFlag::never();
    let keys: Vec<u64> = (0..n).map(|k| k * 11).collect();
    if n > 0 {
        index
            .add(&keys, &rows(&mut rng, n as usize, DIM), &stop)
            .unwrap();
    }
    if n >= 20 {
        index.remove(&keys[..4]);
    }
    index.to_bytes().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> usize {
    std::fs::write(dir.join(name), bytes).unwrap();
    bytes.len()
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let dirs = ["load_hnsw", "load_flat", "parse_store"].map(|t| root.join(t));
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let [hnsw_dir, flat_dir, store_dir] = &dirs;
    let mut total = 0;
    let mut files = 0;
    for (i, (name, compression)) in codecs().into_iter().enumerate() {
        // Every codec with l2sq; cosine and dot for a few.
        let metrics: &[Metric] = match i {
            0 => &[Metric::L2sq, Metric::Cosine, Metric::Dot],
            3 | 7 | 8 => &[Metric::L2sq, Metric::Cosine],
            6 => &[Metric::L2sq, Metric::Dot],
            _ => &[Metric::L2sq],
        };
        for &metric in metrics {
            let m = metric_name(metric);
            let h = hnsw(metric, compression, 24, i as u64);
            total += write(hnsw_dir, &format!("hnsw-{name}-{m}"), &h);
            let f = flat(metric, compression, 24, i as u64);
            total += write(flat_dir, &format!("flat-{name}-{m}"), &f);
            files += 2;
            if i == 0 || i == 7 {
                total += write(store_dir, &format!("hnsw-{name}-{m}"), &h);
                total += write(store_dir, &format!("flat-{name}-{m}"), &f);
                files += 2;
            }
        }
    }
    // Edge sizes: empty, one vector, and an untrained compressed index.
    for (tag, n) in [("empty", 0), ("one", 1)] {
        total += write(
            hnsw_dir,
            &format!("hnsw-{tag}"),
            &hnsw(Metric::L2sq, Compression::default(), n, 9),
        );
        total += write(
            flat_dir,
            &format!("flat-{tag}"),
            &flat(Metric::Cosine, Compression::default(), n, 9),
        );
        files += 2;
    }
    let untrained = codecs()[3].1;
    total += write(
        hnsw_dir,
        "hnsw-sq8-untrained",
        &hnsw(Metric::L2sq, untrained, 8, 4),
    );
    total += write(
        flat_dir,
        "flat-sq8-untrained",
        &flat(Metric::L2sq, untrained, 8, 4),
    );
    files += 2;
    // The store parser: generic images (odd section sizes, no sections, every kind).
    let header = |kind, config: &[u8]| FileHeader {
        kind,
        metric: 2,
        dimensions: 3,
        count: 5,
        config: config.to_vec(),
    };
    let vectors: Vec<u8> = (0..60u8).collect();
    let odd = [9u8; 13];
    let generic = [
        encode(
            &header(IndexKind::Hnsw, b"m=16;ef=128"),
            &[(1, &vectors[..]), (7, &odd[..]), (2, &[][..])],
        ),
        encode(&header(IndexKind::Flat, &[]), &[]),
        encode(&header(IndexKind::MultiVector, &[1; 70]), &[(3, &odd[..])]),
    ];
    for (i, image) in generic.into_iter().enumerate() {
        total += write(store_dir, &format!("generic-{i}"), &image.unwrap());
        files += 1;
    }
    println!(
        "wrote {files} files, {total} bytes, under {}",
        root.display()
    );
}
