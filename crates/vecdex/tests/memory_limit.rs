//! Allocations sized by the caller fail as `Error::OutOfMemory`, never as an abort, under an
//! address-space limit (RLIMIT_AS). One test in its own binary: the limit holds for the whole
//! process, so no other test may share it. Each case asks for several GiB through a public
//! entry point; the limit makes that fail on any machine, however much memory it has.

#![cfg(target_os = "linux")]

use vecdex::compression::Reduction;
use vecdex::multi_vector_index::encode_point_clouds;
use vecdex::{
    Compression, Error, FdeConfig, FdeEncoder, FlatConfig, FlatIndex, Metric, MultiVectorConfig,
    MultiVectorIndex, MultiVectorSearch, ProjectionType, Quantization, Side, StopFlag,
};

/// Address space this process may use beyond what it holds when the test starts.
const HEADROOM: u64 = 1 << 30;

fn limit_address_space() {
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

    // The process lives on and still works.
    let encoder = FdeEncoder::new(FdeConfig::new(4)).expect("config");
    let (tokens, offsets) = clouds(3, 2, 4);
    let out =
        encode_point_clouds(&encoder, &tokens, &offsets, Side::Document, &never).expect("small");
    assert_eq!(out.len(), 3 * encoder.output_dimension());
}
