//! Saving and loading indexes: a loaded index answers every search exactly as the saved one
//! did (every codec, tombstones and free slots included); damaged files, and crafted files
//! whose checksums are right but whose fields lie, are typed errors, never panics.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the message we want

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{
    Compression, Error, FlatConfig, FlatIndex, HnswConfig, HnswIndex, LinkMode, Metric, PqConfig,
    Quantization, Reduction, RescoreParams, SearchResults, SqConfig, StopFlag,
};
use vecdex_store::{encode, parse, FileHeader};

fn rows(rng: &mut StdRng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn compressions() -> Vec<Compression> {
    let with = |quantization, reduction| Compression {
        quantization,
        reduction,
        training_size: Some(300),
        ..Compression::default()
    };
    let sq = SqConfig::default();
    vec![
        Compression::default(),
        with(Quantization::F16, Reduction::None),
        with(Quantization::Bf16, Reduction::None),
        with(Quantization::Sq8(sq), Reduction::None),
        with(
            Quantization::Sq8(SqConfig {
                clip_quantile: 0.01,
                symmetric: true,
            }),
            Reduction::None,
        ),
        with(Quantization::Sq4(sq), Reduction::Prefix(20)),
        with(Quantization::Binary, Reduction::None),
        with(Quantization::Pq(PqConfig::new(11)), Reduction::None),
        with(Quantization::None, Reduction::Pca(9)),
        with(Quantization::Sq8(sq), Reduction::Pca(16)),
    ]
}

fn same_results(a: &SearchResults, b: &SearchResults) {
    assert_eq!(a.keys, b.keys);
    assert_eq!(a.counts, b.counts);
    let bits = |r: &SearchResults| r.distances.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a), bits(b));
}

const DIM: usize = 33;

/// An HNSW index with live vectors, tombstones and free (compacted) slots.
fn hnsw(metric: Metric, compression: Compression, seed: u64) -> HnswIndex {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut config = HnswConfig::new(DIM, metric);
    config.m = 6;
    config.ef_construction = 40;
    let mut index = HnswIndex::with_compression(config, compression).unwrap();
    let stop = StopFlag::never();
    let keys: Vec<u64> = (0..600).map(|k| k * 7 + 3).collect();
    index
        .add_with(
            &keys,
            &rows(&mut rng, 600, DIM),
            &stop,
            LinkMode::Sequential,
        )
        .unwrap();
    index.remove(&keys[..40]).unwrap();
    index.compact(&stop).unwrap();
    index.remove(&keys[100..130]).unwrap();
    index
        .add_with(
            &keys[..20],
            &rows(&mut rng, 20, DIM),
            &stop,
            LinkMode::Sequential,
        )
        .unwrap();
    index
}

fn search_hnsw(index: &HnswIndex, queries: &[f32]) -> SearchResults {
    index
        .search_with(
            queries,
            10,
            Some(50),
            RescoreParams::default(),
            None,
            &StopFlag::never(),
        )
        .unwrap()
}

#[test]
fn hnsw_round_trips_with_every_codec() {
    let mut rng = StdRng::seed_from_u64(9);
    let queries = rows(&mut rng, 30, DIM);
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2sq] {
        for compression in compressions() {
            let index = hnsw(metric, compression, 1);
            let bytes = index.to_bytes().unwrap();
            let loaded = HnswIndex::from_bytes(&bytes).unwrap();
            assert_eq!(loaded.len(), index.len(), "{metric:?} {compression:?}");
            assert_eq!(loaded.stats().tombstones, index.stats().tombstones);
            assert_eq!(loaded.stats().free_slots, index.stats().free_slots);
            assert_eq!(loaded.config(), index.config());
            assert_eq!(loaded.compression(), index.compression());
            let mut keys = index.keys();
            let mut loaded_keys = loaded.keys();
            keys.sort_unstable();
            loaded_keys.sort_unstable();
            assert_eq!(keys, loaded_keys);
            for &key in keys.iter().step_by(37) {
                assert_eq!(index.get(key), loaded.get(key));
            }
            same_results(
                &search_hnsw(&index, &queries),
                &search_hnsw(&loaded, &queries),
            );
            // Saving the loaded index gives the same bytes.
            assert_eq!(
                loaded.to_bytes().unwrap(),
                bytes,
                "{metric:?} {compression:?}"
            );
        }
    }
}

#[test]
fn loaded_indexes_keep_working() {
    let mut rng = StdRng::seed_from_u64(4);
    let index = hnsw(Metric::L2sq, Compression::default(), 2);
    let mut loaded = HnswIndex::from_bytes(&index.to_bytes().unwrap()).unwrap();
    let stop = StopFlag::never();
    let more: Vec<u64> = (10_000..10_300).collect();
    let vectors = rows(&mut rng, 300, DIM);
    loaded.add(&more, &vectors, &stop).unwrap();
    loaded.remove(&more[..10]).unwrap();
    loaded.compact(&stop).unwrap();
    for (i, key) in more.iter().enumerate().skip(10) {
        let hits = loaded
            .search(&vectors[i * DIM..(i + 1) * DIM], 1, Some(64), None, &stop)
            .unwrap();
        assert_eq!(hits.keys[0], *key);
    }
}

#[test]
fn flat_round_trips_with_every_codec() {
    let mut rng = StdRng::seed_from_u64(3);
    let queries = rows(&mut rng, 20, DIM);
    let stop = StopFlag::never();
    for metric in [Metric::Cosine, Metric::L2sq] {
        for compression in compressions() {
            let config = FlatConfig { dim: DIM, metric };
            let mut index = FlatIndex::with_compression(config, compression).unwrap();
            let keys: Vec<u64> = (0..500).map(|k| k * 11).collect();
            index.add(&keys, &rows(&mut rng, 500, DIM), &stop).unwrap();
            index.remove(&keys[..17]);
            let bytes = index.to_bytes().unwrap();
            let loaded = FlatIndex::from_bytes(&bytes).unwrap();
            assert_eq!(loaded.keys(), index.keys());
            let search = |i: &FlatIndex| {
                i.search_with(&queries, 10, RescoreParams::default(), None, &stop)
                    .unwrap()
            };
            same_results(&search(&index), &search(&loaded));
            assert_eq!(loaded.to_bytes().unwrap(), bytes);
        }
    }
}

#[test]
fn files_on_disk_round_trip_and_kinds_do_not_mix() {
    let dir = std::env::temp_dir().join(format!("vecdex-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vdx");
    let index = hnsw(Metric::Cosine, Compression::default(), 5);
    index.save(&path).unwrap();
    let loaded = HnswIndex::load(&path).unwrap();
    assert_eq!(loaded.to_bytes().unwrap(), index.to_bytes().unwrap());
    assert!(matches!(
        FlatIndex::load(&path),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        HnswIndex::load(&dir.join("missing.vdx")),
        Err(Error::Io(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn small_file() -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(8);
    let mut config = HnswConfig::new(8, Metric::L2sq);
    config.m = 4;
    let mut index = HnswIndex::new(config).unwrap();
    let keys: Vec<u64> = (0..120).collect();
    let stop = StopFlag::never();
    index
        .add_with(&keys, &rows(&mut rng, 120, 8), &stop, LinkMode::Sequential)
        .unwrap();
    index.remove(&keys[..5]).unwrap();
    index.to_bytes().unwrap()
}

fn is_file_error(result: &vecdex::Result<HnswIndex>) -> bool {
    matches!(
        result,
        Err(Error::CorruptFile(_) | Error::UnsupportedFormat(_) | Error::InvalidArgument(_))
    )
}

#[test]
fn damaged_files_are_errors() {
    let bytes = small_file();
    assert!(HnswIndex::from_bytes(&bytes).is_ok());
    // Every byte of the header and the first 4 KiB flipped; every truncation there.
    for at in 0..bytes.len().min(4096) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5A;
        assert!(is_file_error(&HnswIndex::from_bytes(&bad)), "flip at {at}");
        assert!(
            is_file_error(&HnswIndex::from_bytes(&bytes[..at])),
            "truncated at {at}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(is_file_error(&HnswIndex::from_bytes(&longer)));
    // Random mutations: 1 to 8 bytes changed anywhere.
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20_000 {
        let mut bad = bytes.clone();
        for _ in 0..rng.gen_range(1..=8) {
            let at = rng.gen_range(0..bad.len());
            bad[at] = rng.gen();
        }
        if bad != bytes {
            assert!(is_file_error(&HnswIndex::from_bytes(&bad)));
        }
    }
}

/// Rewrites one section (or the configuration) of a valid file with correct checksums.
fn crafted(bytes: &[u8], edit: impl FnOnce(&mut FileHeader, &mut Vec<(u32, Vec<u8>)>)) -> Vec<u8> {
    let file = parse(bytes).unwrap();
    let mut header = file.header.clone();
    let mut sections: Vec<(u32, Vec<u8>)> = file
        .sections
        .iter()
        .map(|s| (s.id, s.bytes.to_vec()))
        .collect();
    edit(&mut header, &mut sections);
    let borrowed: Vec<(u32, &[u8])> = sections.iter().map(|(id, b)| (*id, &b[..])).collect();
    encode(&header, &borrowed).unwrap()
}

fn section_mut(sections: &mut [(u32, Vec<u8>)], id: u32) -> &mut Vec<u8> {
    &mut sections.iter_mut().find(|(s, _)| *s == id).unwrap().1
}

const KEYS: u32 = 1;
const VECTORS: u32 = 2;
const STATES: u32 = 3;
const LAYER0: u32 = 4;
const UPPER: u32 = 5;
const ENTRY: u32 = 6;

#[test]
fn crafted_files_with_valid_checksums_are_errors() {
    let bytes = small_file();
    let layer0_stride = (1 + 2 * 4) * 4;
    type Edit = Box<dyn Fn(&mut FileHeader, &mut Vec<(u32, Vec<u8>)>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "link id past the count",
            Box::new(|_, s| {
                let l0 = section_mut(s, LAYER0);
                l0[4..8].copy_from_slice(&5000u32.to_le_bytes());
            }),
        ),
        (
            "link count past the capacity",
            Box::new(|_, s| {
                section_mut(s, LAYER0)[0..4].copy_from_slice(&99u32.to_le_bytes());
            }),
        ),
        (
            "self link",
            Box::new(move |_, s| {
                let l0 = section_mut(s, LAYER0);
                l0[layer0_stride + 4..layer0_stride + 8].copy_from_slice(&1u32.to_le_bytes());
            }),
        ),
        (
            "entry past the count",
            Box::new(|_, s| {
                *section_mut(s, ENTRY) = 777u64.to_le_bytes().to_vec();
            }),
        ),
        (
            "no entry point",
            Box::new(|_, s| {
                *section_mut(s, ENTRY) = u64::MAX.to_le_bytes().to_vec();
            }),
        ),
        (
            "short layer 0",
            Box::new(|_, s| {
                section_mut(s, LAYER0).truncate(100);
            }),
        ),
        (
            "upper layers of the wrong size",
            Box::new(|_, s| {
                section_mut(s, UPPER).extend_from_slice(&[0; 4]);
            }),
        ),
        (
            "duplicate live key",
            Box::new(|_, s| {
                let keys = section_mut(s, KEYS);
                let first: Vec<u8> = keys[40..48].to_vec();
                keys[48..56].copy_from_slice(&first);
            }),
        ),
        (
            "unknown slot state",
            Box::new(|_, s| {
                section_mut(s, STATES)[7] = 9;
            }),
        ),
        (
            "count disagrees with the slots",
            Box::new(|h, _| {
                h.count += 1;
            }),
        ),
        (
            "NaN vector",
            Box::new(|_, s| {
                section_mut(s, VECTORS)[16 * 4 * 10..16 * 4 * 10 + 4]
                    .copy_from_slice(&f32::NAN.to_le_bytes());
            }),
        ),
        (
            "nonzero row padding",
            Box::new(|_, s| {
                section_mut(s, VECTORS)[60..64].copy_from_slice(&1.0f32.to_le_bytes());
            }),
        ),
        (
            "missing section",
            Box::new(|_, s| {
                s.retain(|(id, _)| *id != KEYS);
            }),
        ),
        (
            "configuration with a byte left over",
            Box::new(|h, _| {
                h.config.push(0);
            }),
        ),
        (
            "truncated configuration",
            Box::new(|h, _| {
                h.config.pop();
            }),
        ),
        (
            "m out of range",
            Box::new(|h, _| {
                h.config[0..8].copy_from_slice(&1u64.to_le_bytes());
            }),
        ),
        (
            "dimensions zero",
            Box::new(|h, _| {
                h.dimensions = 0;
            }),
        ),
        (
            "slot count past the sections",
            Box::new(|h, _| {
                let n = h.config.len();
                h.config[n - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
            }),
        ),
        (
            "hamming metric",
            Box::new(|h, _| {
                h.metric = 3;
            }),
        ),
    ];
    for (name, edit) in cases {
        let bad = crafted(&bytes, edit);
        let result = HnswIndex::from_bytes(&bad);
        assert!(
            matches!(result, Err(Error::CorruptFile(_))),
            "{name}: {:?}",
            result.err()
        );
    }
}

#[test]
fn damaged_files_on_disk_are_errors() {
    let bytes = small_file();
    let dir = std::env::temp_dir().join(format!("vecdex-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vdx");
    std::fs::write(&path, &bytes).unwrap();
    let loaded = HnswIndex::load(&path).unwrap();
    assert_eq!(loaded.to_bytes().unwrap(), bytes);
    let mut rng = StdRng::seed_from_u64(12);
    let check = |bad: &[u8], what: &str| {
        std::fs::write(&path, bad).unwrap();
        assert!(is_file_error(&HnswIndex::load(&path)), "{what}");
    };
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 1 << (at % 8);
        check(&bad, &format!("flip at {at}"));
        if at % 7 == 0 {
            check(&bytes[..at], &format!("truncated at {at}"));
        }
    }
    for _ in 0..2_000 {
        let mut bad = bytes.clone();
        for _ in 0..rng.gen_range(1..=8) {
            let at = rng.gen_range(0..bad.len());
            bad[at] = rng.gen();
        }
        if bad != bytes {
            check(&bad, "random mutation");
        }
    }
    assert!(matches!(HnswIndex::load(&dir), Err(Error::Io(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn views_search_in_place_and_refuse_writes() {
    let dir = std::env::temp_dir().join(format!("vecdex-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.vdx");
    let mut rng = StdRng::seed_from_u64(21);
    let queries = rows(&mut rng, 25, DIM);
    for compression in [Compression::default(), compressions()[3]] {
        let index = hnsw(Metric::Dot, compression, 6);
        index.save(&path).unwrap();
        let view = HnswIndex::view(&path).unwrap();
        assert!(view.is_read_only() && !index.is_read_only());
        same_results(
            &search_hnsw(&index, &queries),
            &search_hnsw(&view, &queries),
        );
        assert_eq!(view.to_bytes().unwrap(), index.to_bytes().unwrap());
        let mut view = view;
        let stop = StopFlag::never();
        assert_eq!(view.add(&[1], &queries[..DIM], &stop), Err(Error::ReadOnly));
        assert_eq!(view.remove(&[3]), Err(Error::ReadOnly));
        assert_eq!(view.compact(&stop), Err(Error::ReadOnly));
        assert_eq!(view.train(&queries), Err(Error::ReadOnly));
        // A save over the file replaces it; the view keeps reading the old one.
        hnsw(Metric::Dot, compression, 7).save(&path).unwrap();
        same_results(
            &search_hnsw(&index, &queries),
            &search_hnsw(&view, &queries),
        );
    }
    let bytes = small_file();
    for at in (0..bytes.len()).step_by(13) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        assert!(is_file_error(&HnswIndex::view(&path)), "flip at {at}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
