//! Allocations sized by the caller fail as `Error::OutOfMemory`, never as an abort, under an
//! address-space limit (RLIMIT_AS). One test in its own binary: the limit holds for the whole
//! process, so no other test may share it. Each case asks for several GiB through a public
//! entry point; the limit makes that fail on any machine, however much memory it has.

#![cfg(target_os = "linux")]

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use vecdex::compression::Reduction;
use vecdex::multi_vector_index::encode_point_clouds;
use vecdex::{
    Compression, Error, FdeConfig, FdeEncoder, FlatConfig, FlatIndex, HnswConfig, HnswIndex,
    Metric, MultiVectorConfig, MultiVectorIndex, MultiVectorSearch, ProjectionType, Quantization,
    Side, StopFlag,
};

/// Address space this process may use beyond what it holds when the test starts.
const HEADROOM: u64 = 1 << 30;

fn limit_address_space() {
    // glibc gives a thread that finds the shared arenas busy an arena of its own, reserving
    // 64 MiB of address space each (up to 8 per core): how many the pools' threads make depends
    // on how often they contend, so under load they ate the headroom and a case failed on an
    // allocation before the one it is about (about half the runs on a loaded 2-core machine).
    // One arena makes the headroom the test's own.
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only sets an allocator parameter; no thread has started yet.
        let done = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        assert_eq!(done, 1, "mallopt");
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    let limit = libc::rlimit {
        rlim_cur: kib * 1024 + HEADROOM,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limit.
    let done = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(done, 0, "setrlimit");
}

/// Point clouds as CSR: row-major tokens and offsets.
type Csr = (Vec<f32>, Vec<u32>);

/// `clouds` clouds of `tokens` tokens each, every token (1, 0, …) of `dim` values, as CSR.
fn clouds(clouds: usize, tokens: usize, dim: usize) -> Csr {
    let mut values = vec![0f32; clouds * tokens * dim];
    values.iter_mut().step_by(dim).for_each(|x| *x = 1.0);
    let offsets = (0..=clouds).map(|c| (c * tokens) as u32).collect();
    (values, offsets)
}

fn fde(dim: usize, repetitions: usize, bits: u32, block: usize, last: Option<usize>) -> FdeConfig {
    FdeConfig {
        num_repetitions: repetitions,
        num_simhash_projections: bits,
        projection_type: ProjectionType::AmsSketch,
        projection_dimension: block,
        final_projection_dimension: last,
        ..FdeConfig::new(dim)
    }
}

fn expect_oom<T: std::fmt::Debug>(case: &str, result: vecdex::Result<T>) {
    match result {
        Err(Error::OutOfMemory(message)) => {
            assert!(message.contains("fit in memory"), "{case}: {message}")
        }
        other => panic!("{case}: expected OutOfMemory, got {other:?}"),
    }
}

/// Section ids of the file format (crates/vecdex/src/persist.rs).
const KEYS: u32 = 1;
const VECTORS: u32 = 2;
const UPPER: u32 = 5;
const TOKENS: u32 = 10;

/// A file path of this test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        Scratch(std::env::temp_dir().join(format!(
            "vecdex-memory-limit-{}-{name}.vdx",
            std::process::id()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Rewrites the valid index file at `path` so that the sections in `grow` announce the given
/// lengths (and the header `count` vectors, if given), with the header checksum and every
/// offset fixed so the layout checks pass. The grown sections are holes of a sparse file: the
/// file is as large as announced, on any file system, without using the disk or memory, and
/// its loader must allocate a buffer that big before it can read (and checksum) the section.
fn inflate(path: &Path, count: Option<u64>, grow: &[(u32, u64)]) {
    let bytes = std::fs::read(path).expect("read saved file");
    let layout = vecdex_store::parse_layout(&bytes, bytes.len()).expect("valid file");
    let header_len = layout.header_len;
    let mut head = bytes[..header_len].to_vec();
    if let Some(count) = count {
        head[24..32].copy_from_slice(&count.to_le_bytes());
    }
    let table = header_len - 4 - 32 * layout.sections.len();
    let mut end = header_len as u64;
    let mut kept = Vec::new();
    for (i, entry) in layout.sections.iter().enumerate() {
        let offset = end.div_ceil(64) * 64;
        let len = grow
            .iter()
            .find(|(id, _)| *id == entry.id)
            .map_or(entry.len as u64, |&(_, len)| len);
        let at = table + 32 * i;
        head[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        head[at + 16..at + 24].copy_from_slice(&len.to_le_bytes());
        if len == entry.len as u64 {
            kept.push((offset, &bytes[entry.offset..entry.offset + entry.len]));
        }
        end = offset + len;
    }
    let crc = vecdex_store::crc32c(&head[..header_len - 4]);
    head[header_len - 4..].copy_from_slice(&crc.to_le_bytes());
    let mut file = std::fs::File::create(path).expect("rewrite file");
    file.write_all(&head).expect("header");
    for (offset, payload) in kept {
        file.seek(SeekFrom::Start(offset)).expect("seek");
        file.write_all(payload).expect("payload");
    }
    file.set_len(end).expect("sparse length");
}

/// A saved index whose sections `grow` (and header count) announce several GiB, loaded.
fn load_inflated<T: std::fmt::Debug>(
    case: &str,
    save: impl FnOnce(&Path),
    count: Option<u64>,
    grow: &[(u32, u64)],
    load: impl FnOnce(&Path) -> vecdex::Result<T>,
) {
    let file = Scratch::new(&case.replace(' ', "-"));
    save(&file.0);
    inflate(&file.0, count, grow);
    expect_oom(case, load(&file.0));
}

#[test]
fn caller_sized_allocations_fail_as_out_of_memory() {
    limit_address_space();
    let never = StopFlag::never();

    // FdeEncoder: output (clouds × width), projected-token scratch (tokens × block), the raw
    // encoding behind a final projection, one cloud alone.
    let encoder_cases: [(&str, FdeConfig, Csr); 4] = [
        (
            "2^24 partitions, 100 clouds",
            fde(4, 1, 24, 1, None),
            clouds(100, 1, 4),
        ),
        (
            "2^24-value blocks, 100 tokens",
            fde(4, 1, 0, 1 << 24, None),
            clouds(1, 100, 4),
        ),
        (
            "final projection to 2^24, 100 clouds",
            fde(4, 2, 8, 16, Some(1 << 24)),
            clouds(100, 1, 4),
        ),
        (
            "2^22-value blocks, 3 clouds of 300 tokens",
            fde(8, 1, 0, 1 << 22, None),
            clouds(3, 300, 8),
        ),
    ];
    for (case, config, (tokens, offsets)) in &encoder_cases {
        let encoder = FdeEncoder::new(*config).expect("config");
        for side in [Side::Query, Side::Document] {
            expect_oom(
                case,
                encode_point_clouds(&encoder, tokens, offsets, side, &never),
            );
        }
        let first = &tokens[..offsets[1] as usize * config.dimension];
        if offsets[1] > 1 {
            expect_oom(
                case,
                encoder.encode(first, Side::Document).map_err(Error::from),
            );
        }
    }

    // MultiVectorIndex: encodings of an add, a query's scratch; and a huge k that must not
    // size anything (answered with what there is).
    let wide = fde(4, 1, 0, 65_536, None);
    let mut index =
        MultiVectorIndex::new(MultiVectorConfig::new(wide, Metric::Dot)).expect("index");
    let (many, many_offsets) = clouds(20_000, 1, 4);
    let keys: Vec<u64> = (0..20_000).collect();
    expect_oom(
        "add 20,000 documents of 65,536-value encodings",
        index.add(&keys, &many, &many_offsets, &never),
    );
    let (long, long_offsets) = clouds(1, 10_000, 4);
    expect_oom(
        "add a document of 10,000 tokens",
        index.add(&[1], &long, &long_offsets, &never),
    );
    assert!(index.is_empty(), "a failed add changes nothing");
    let (one, one_offsets) = clouds(2, 1, 4);
    index
        .add(&[1, 2], &one, &one_offsets, &never)
        .expect("small add after failures");
    expect_oom(
        "search with a query of 10,000 tokens",
        index.search(
            &long,
            &long_offsets,
            MultiVectorSearch::new(1),
            None,
            &never,
        ),
    );
    let all = index
        .search_exact(&one, &one_offsets, usize::MAX, None, &never)
        .expect("huge k");
    assert_eq!((all.k, all.counts.clone()), (2, vec![2, 2]));
    let all = index
        .search(
            &one,
            &one_offsets,
            MultiVectorSearch::new(u32::MAX as usize),
            None,
            &never,
        )
        .expect("huge k");
    assert_eq!(all.k, 2);

    // An exact search prepares every query of a batch padded to 16 tokens: 40,000 one-token
    // queries of 1,024 values (160 MiB) need 2.6 GB prepared.
    let dim = 1_024;
    let mut index =
        MultiVectorIndex::new(MultiVectorConfig::new(fde(dim, 1, 1, 4, None), Metric::Dot))
            .expect("index");
    let (one, one_offsets) = clouds(1, 1, dim);
    index.add(&[1], &one, &one_offsets, &never).expect("add");
    let (queries, query_offsets) = clouds(40_000, 1, dim);
    expect_oom(
        "exact search of 40,000 one-token queries",
        index.search_exact(&queries, &query_offsets, 1, None, &never),
    );
    drop(queries);

    // PCA at the largest dimension: a 65,536² second-moment matrix (32 GiB).
    let dim = 65_536;
    let pca = Compression {
        quantization: Quantization::None,
        reduction: Reduction::Pca(8),
        oversample: None,
        training_size: None,
    };
    let mut flat = FlatIndex::with_compression(
        FlatConfig {
            dim,
            metric: Metric::L2sq,
        },
        pca,
    )
    .expect("flat index");
    let sample: Vec<f32> = (0..4 * dim).map(|i| (i % 13) as f32).collect();
    expect_oom("PCA of 65,536 dimensions", flat.train(&sample));

    // Room for vectors asked ahead (a bulk loader's reserve, the growth of an add): keys, key
    // map and the blocked vector storage, for sizes past memory and past the address space.
    for (dim, additional) in [
        (4096, 1usize << 20),
        (65_536, 1 << 16),
        (16, usize::MAX / 2),
    ] {
        let mut flat = FlatIndex::new(FlatConfig {
            dim,
            metric: Metric::L2sq,
        })
        .expect("flat index");
        expect_oom(
            &format!("FlatIndex reserve of {additional} × {dim}"),
            flat.reserve(additional),
        );
        expect_oom(
            &format!("FlatIndex grown storage of {additional} × {dim}"),
            flat.grown_storage(additional),
        );
        flat.add(&[1], &vec![1.0; dim], &StopFlag::never())
            .expect("the index still takes a small add");
    }

    // Index files larger than memory (sparse files: no disk used). Every section length is
    // checked against the file's, and checksums are checked as sections are read, so only a
    // buffer too big for memory remains, and it must be refused, not abort.
    const GIB: u64 = 1 << 30;
    let flat_file = |path: &Path| {
        let mut flat = FlatIndex::new(FlatConfig {
            dim: 1,
            metric: Metric::L2sq,
        })
        .expect("flat");
        flat.add(&[7], &[0.5], &never).expect("add");
        flat.save(path).expect("save");
    };
    for vectors in [1u64 << 28, 1 << 29, 1 << 31] {
        load_inflated(
            &format!("FlatIndex file of {vectors} vectors"),
            flat_file,
            Some(vectors),
            &[(KEYS, 8 * vectors), (VECTORS, 4 * vectors)],
            FlatIndex::load,
        );
    }
    let hnsw_file = |path: &Path| {
        let mut hnsw = HnswIndex::new(HnswConfig::new(4, Metric::L2sq)).expect("hnsw");
        let rows: Vec<f32> = (0..64).map(|i| (i % 7) as f32).collect();
        hnsw.add(&(0..16).collect::<Vec<u64>>(), &rows, &never)
            .expect("add");
        hnsw.save(path).expect("save");
    };
    for bytes in [2 * GIB, 4 * GIB, 64 * GIB] {
        load_inflated(
            &format!("HnswIndex file with {bytes} bytes of upper layers"),
            hnsw_file,
            None,
            &[(UPPER, bytes)],
            HnswIndex::load,
        );
    }
    let multi_file = |path: &Path| {
        let mut multi =
            MultiVectorIndex::new(MultiVectorConfig::new(fde(4, 2, 2, 8, None), Metric::Dot))
                .expect("multi");
        let (tokens, offsets) = clouds(3, 2, 4);
        multi
            .add(&[1, 2, 3], &tokens, &offsets, &never)
            .expect("add");
        multi.save(path).expect("save");
    };
    for bytes in [2 * GIB, 16 * GIB] {
        load_inflated(
            &format!("MultiVectorIndex file with {bytes} bytes of tokens"),
            multi_file,
            None,
            &[(TOKENS, bytes)],
            |path: &Path| MultiVectorIndex::load(path).map(|index| index.len()),
        );
    }

    // HnswIndex adds: the graph's link lists (2m + 1 words a node) of a batch whose vectors
    // fit many times over.
    // Which allocation runs out first depends on the address space the process has left (the
    // pool's thread stacks take some): every case must fail typed, and the graph's own
    // allocation must be the one in at least one of them.
    let mut graph_failures = 0;
    for (m, count) in [(256, 1usize << 20), (128, 1 << 21), (256, 1 << 22)] {
        let mut hnsw = HnswIndex::new(HnswConfig {
            m,
            ..HnswConfig::new(4, Metric::L2sq)
        })
        .expect("hnsw");
        let keys: Vec<u64> = (0..count as u64).collect();
        let rows = vec![0.25f32; count * 4];
        match hnsw.add(&keys, &rows, &never) {
            Err(Error::OutOfMemory(message)) => {
                graph_failures += usize::from(message.contains("graph"));
                assert!(
                    message.contains("graph") || message.contains("batch"),
                    "m {m}, {count}: {message}"
                )
            }
            other => panic!("m {m}, {count}: expected OutOfMemory, got {other:?}"),
        }
        assert!(hnsw.is_empty(), "a failed add changes nothing");
        hnsw.add(&[1, 2], &rows[..8], &never)
            .expect("small add after failure");
        assert_eq!(hnsw.len(), 2);
    }

    assert!(
        graph_failures > 0,
        "no add ran out of memory in the graph itself"
    );

    // The process lives on and still works.
    let encoder = FdeEncoder::new(FdeConfig::new(4)).expect("config");
    let (tokens, offsets) = clouds(3, 2, 4);
    let out =
        encode_point_clouds(&encoder, &tokens, &offsets, Side::Document, &never).expect("small");
    assert_eq!(out.len(), 3 * encoder.output_dimension());
}
