//! One rule for the tokens of every multi-vector entry point (add, train, search with each
//! strategy, search_exact, the FDE encoder, chamfer): a token's squared norm is at most
//! `MAX_TOKEN_SQUARED_NORM` (2⁶⁰) unless the metric normalises it; under it every Chamfer
//! score, distance and encoding is finite, so hits keep their order.

use vecdex::multi_vector_index::{chamfer_similarity, encode_point_clouds};
use vecdex::validate::MAX_TOKEN_SQUARED_NORM;
use vecdex::{
    Error, FdeConfig, FdeEncoder, Metric, MultiVectorConfig, MultiVectorIndex, MultiVectorSearch,
    ProjectionType, Side, StopFlag, Strategy,
};

const DIM: usize = 4;

/// Norm of the largest accepted token.
fn max_norm() -> f64 {
    MAX_TOKEN_SQUARED_NORM.sqrt()
}

/// A token of norm `norm` along a direction that depends on `seed` (first coordinate ≥ 0.5).
fn token(norm: f64, seed: usize) -> Vec<f32> {
    let raw = [
        1.0,
        (seed % 3) as f64 * 0.25,
        ((seed / 3) % 3) as f64 * 0.2,
        0.1,
    ];
    let length = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    // Rounded to f32 towards zero, so that the norm never exceeds the one asked for.
    raw.iter()
        .map(|x| {
            let v = x / length * norm;
            let f = v as f32;
            if f64::from(f) > v {
                f32::from_bits(f.to_bits() - 1)
            } else {
                f
            }
        })
        .collect()
}

/// `count` tokens of norm `norm`, and CSR offsets for one cloud.
fn cloud(count: usize, norm: f64) -> (Vec<f32>, Vec<u32>) {
    let tokens = (0..count).flat_map(|t| token(norm, t)).collect();
    (tokens, vec![0, count as u32])
}

fn fde_configs() -> Vec<FdeConfig> {
    vec![
        FdeConfig {
            num_repetitions: 2,
            num_simhash_projections: 2,
            projection_dimension: 4,
            ..FdeConfig::new(DIM)
        },
        FdeConfig {
            num_repetitions: 3,
            num_simhash_projections: 0,
            projection_type: ProjectionType::Identity,
            projection_dimension: DIM,
            ..FdeConfig::new(DIM)
        },
        FdeConfig {
            num_repetitions: 2,
            num_simhash_projections: 3,
            projection_dimension: 8,
            final_projection_dimension: Some(16),
            ..FdeConfig::new(DIM)
        },
    ]
}

fn index(metric: Metric, fde: FdeConfig, fde_metric: Metric) -> MultiVectorIndex {
    let mut config = MultiVectorConfig::new(fde, metric);
    config.fde_metric = fde_metric;
    MultiVectorIndex::new(config).expect("config")
}

fn is_invalid<T: std::fmt::Debug>(what: &str, result: vecdex::Result<T>) {
    match result {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("too large"), "{what}: {m}"),
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

const STRATEGIES: [Strategy; 3] = [Strategy::Rerank, Strategy::Walk, Strategy::Tokens];

#[test]
fn tokens_above_the_bound_are_refused_by_every_entry_point() {
    let never = StopFlag::never();
    // Just above the bound, the old single-vector bound's neighbourhood, and far above.
    for norm in [max_norm() * 1.001, 9e18, 1e30] {
        let (big, offsets) = cloud(3, norm);
        let (small, small_offsets) = cloud(3, 1.0);
        for fde in fde_configs() {
            for fde_metric in [Metric::Cosine, Metric::Dot] {
                let mut index = index(Metric::Dot, fde, fde_metric);
                is_invalid("add", index.add(&[1], &big, &offsets, &never));
                assert!(index.is_empty());
                index
                    .add(&[1], &small, &small_offsets, &never)
                    .expect("small add");
                is_invalid("train", index.train(&big, &offsets));
                for strategy in STRATEGIES {
                    let params = MultiVectorSearch {
                        strategy: Some(strategy),
                        ..MultiVectorSearch::new(1)
                    };
                    is_invalid("search", index.search(&big, &offsets, params, None, &never));
                }
                is_invalid(
                    "search_exact",
                    index.search_exact(&big, &offsets, 1, None, &never),
                );
                let encoder = FdeEncoder::new(fde).expect("encoder");
                for side in [Side::Query, Side::Document] {
                    is_invalid(
                        "encode",
                        encode_point_clouds(&encoder, &big, &offsets, side, &never),
                    );
                }
            }
        }
        is_invalid("chamfer query", chamfer_similarity(&big, &small, DIM));
        is_invalid("chamfer document", chamfer_similarity(&small, &big, DIM));
        // Cosine normalises tokens first: any finite non-zero token is fine.
        let mut cosine = index(Metric::Cosine, fde_configs()[0], Metric::Cosine);
        cosine
            .add(&[1], &big, &offsets, &never)
            .expect("cosine add");
        let hits = cosine
            .search_exact(&big, &offsets, 1, None, &never)
            .expect("cosine search");
        assert!(hits.distances[0].is_finite());
    }
}

#[test]
fn the_largest_tokens_give_finite_ordered_scores_everywhere() {
    let never = StopFlag::never();
    // Documents of one token each, of norms in decreasing order: Chamfer with a query of many
    // tokens along the same direction decreases with the key.
    let norms = [1.0, 0.75, 0.5, 0.25];
    for query_tokens in [1, 17, 300, 4096] {
        for fde in fde_configs() {
            for fde_metric in [Metric::Cosine, Metric::Dot] {
                let mut index = index(Metric::Dot, fde, fde_metric);
                let docs: Vec<f32> = norms
                    .iter()
                    .flat_map(|s| token(max_norm() * s, 0))
                    .collect();
                let keys: Vec<u64> = (0..norms.len() as u64).collect();
                let offsets: Vec<u32> = (0..=norms.len() as u32).collect();
                index
                    .add(&keys, &docs, &offsets, &never)
                    .expect("add at the bound");
                let query: Vec<f32> = (0..query_tokens)
                    .flat_map(|_| token(max_norm(), 0))
                    .collect();
                let query_offsets = [0, query_tokens as u32];
                let exact = index
                    .search_exact(&query, &query_offsets, 4, None, &never)
                    .expect("exact");
                assert_eq!(
                    exact.keys, keys,
                    "{query_tokens} tokens: ordered by Chamfer"
                );
                assert!(exact.distances.iter().all(|d| d.is_finite()));
                assert!(
                    exact.distances.windows(2).all(|w| w[0] < w[1]),
                    "distinct scores, no ties: {:?}",
                    exact.distances
                );
                for (d, key) in exact.distances.iter().zip(&keys) {
                    let doc = &docs[*key as usize * DIM..(*key as usize + 1) * DIM];
                    let reference = chamfer_similarity(&query, doc, DIM).expect("chamfer");
                    assert!(reference.is_finite());
                    assert!((f64::from(-d) - reference).abs() <= reference.abs() * 1e-5);
                }
                for strategy in STRATEGIES {
                    let params = MultiVectorSearch {
                        strategy: Some(strategy),
                        ..MultiVectorSearch::new(4)
                    };
                    let hits = index
                        .search(&query, &query_offsets, params, None, &never)
                        .expect("search at the bound");
                    assert!(hits.distances.iter().all(|d| d.is_finite()), "{strategy:?}");
                    assert!(
                        hits.distances.windows(2).all(|w| w[0] <= w[1]),
                        "{strategy:?}"
                    );
                }
                let encoder = FdeEncoder::new(fde).expect("encoder");
                for side in [Side::Query, Side::Document] {
                    let out = encode_point_clouds(&encoder, &query, &query_offsets, side, &never)
                        .expect("encode at the bound");
                    assert!(out.iter().all(|x| x.is_finite()), "{side:?}");
                }
            }
        }
    }
}
