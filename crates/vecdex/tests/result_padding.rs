//! Rows with fewer hits than their `k` columns are padded with `NO_KEY` (2⁶⁴ − 1) and +∞, a key
//! no index accepts, so padding is never read as a hit on a real key (it was key 0 before).

use vecdex::validate::NO_KEY;
use vecdex::{
    Error, FdeConfig, FlatConfig, FlatIndex, HnswConfig, HnswIndex, KeyFilter, Metric,
    MultiVectorConfig, MultiVectorIndex, MultiVectorSearch, SearchResults, StopFlag,
};

const DIM: usize = 4;

fn vectors(n: usize) -> Vec<f32> {
    (0..n * DIM)
        .map(|i| ((i * 7919) % 13) as f32 + 1.0)
        .collect()
}

/// Row 0 has exactly `hits` hits, best first, and padding after them.
fn assert_padded(results: &SearchResults, hits: usize) {
    assert_eq!(results.counts[0] as usize, hits);
    let row = 0..results.k;
    for c in row.clone().skip(hits) {
        assert_eq!(results.keys[c], NO_KEY, "padding key at column {c}");
        assert_eq!(
            results.distances[c],
            f32::INFINITY,
            "padding distance at column {c}"
        );
    }
    for c in row.take(hits) {
        assert_ne!(results.keys[c], NO_KEY);
        assert!(results.distances[c].is_finite());
    }
}

fn is_reserved(result: vecdex::Result<()>) -> bool {
    matches!(result, Err(Error::InvalidArgument(ref m)) if m.contains("18446744073709551615 is reserved"))
}

#[test]
fn flat_rows_shorter_than_k_are_padded_with_no_key() {
    let mut index = FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::L2sq,
    })
    .expect("config");
    // Key 0 is stored: padding must not look like it.
    index
        .add(&[0, 1, 2, 3], &vectors(4), &StopFlag::never())
        .expect("add");
    let filter = KeyFilter::new(vec![2, 3]);
    let results = index
        .search(&vectors(1), 4, Some(&filter), &StopFlag::never())
        .expect("search");
    assert_eq!(results.k, 4);
    assert_padded(&results, 2);
    assert!(!results.keys.contains(&0));
}

#[test]
fn hnsw_rows_shorter_than_k_are_padded_with_no_key() {
    let mut index = HnswIndex::new(HnswConfig::new(DIM, Metric::L2sq)).expect("config");
    index
        .add(&[0, 1, 2, 3, 4], &vectors(5), &StopFlag::never())
        .expect("add");
    let filter = KeyFilter::new(vec![4]);
    let results = index
        .search(&vectors(1), 3, None, Some(&filter), &StopFlag::never())
        .expect("search");
    assert_padded(&results, 1);
    assert_eq!(results.keys[0], 4);
}

#[test]
fn multi_vector_rows_shorter_than_k_are_padded_with_no_key() {
    let fde = FdeConfig {
        num_repetitions: 2,
        num_simhash_projections: 2,
        projection_dimension: 4,
        ..FdeConfig::new(DIM)
    };
    let mut index =
        MultiVectorIndex::new(MultiVectorConfig::new(fde, Metric::Dot)).expect("config");
    index
        .add(&[0, 1, 2], &vectors(6), &[0, 2, 4, 6], &StopFlag::never())
        .expect("add");
    let filter = KeyFilter::new(vec![1]);
    let results = index
        .search(
            &vectors(2),
            &[0, 2],
            MultiVectorSearch::new(3),
            Some(&filter),
            &StopFlag::never(),
        )
        .expect("search");
    assert_padded(&results, 1);
}

#[test]
fn adding_the_reserved_key_is_an_error_and_nothing_is_added() {
    let mut flat = FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::Dot,
    })
    .expect("config");
    assert!(is_reserved(flat.add(
        &[1, NO_KEY],
        &vectors(2),
        &StopFlag::never()
    )));
    assert_eq!(flat.len(), 0);

    let mut hnsw = HnswIndex::new(HnswConfig::new(DIM, Metric::Dot)).expect("config");
    assert!(is_reserved(hnsw.add(
        &[NO_KEY],
        &vectors(1),
        &StopFlag::never()
    )));
    assert_eq!(hnsw.len(), 0);

    let fde = FdeConfig {
        num_repetitions: 2,
        num_simhash_projections: 1,
        projection_dimension: 4,
        ..FdeConfig::new(DIM)
    };
    let mut multi =
        MultiVectorIndex::new(MultiVectorConfig::new(fde, Metric::Dot)).expect("config");
    assert!(is_reserved(multi.add(
        &[NO_KEY],
        &vectors(2),
        &[0, 2],
        &StopFlag::never()
    )));
    assert_eq!(multi.len(), 0);
}

#[test]
fn looking_up_removing_or_filtering_by_the_reserved_key_is_harmless() {
    let mut index = FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::Dot,
    })
    .expect("config");
    index
        .add(&[1, 2], &vectors(2), &StopFlag::never())
        .expect("add");
    assert!(!index.contains(NO_KEY));
    assert_eq!(index.remove(&[NO_KEY]), 0);
    let filter = KeyFilter::new(vec![NO_KEY]);
    let results = index
        .search(&vectors(1), 2, Some(&filter), &StopFlag::never())
        .expect("search");
    assert_padded(&results, 0);

    let mut hnsw = HnswIndex::new(HnswConfig::new(DIM, Metric::Dot)).expect("config");
    hnsw.add(&[1], &vectors(1), &StopFlag::never())
        .expect("add");
    assert_eq!(hnsw.remove(&[NO_KEY]).expect("remove"), 0);
    assert_eq!(hnsw.len(), 1);
}
