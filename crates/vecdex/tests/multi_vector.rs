//! MultiVectorIndex bookkeeping: replaced and removed documents, token-store compaction, and
//! exact search against the plain Chamfer oracle.

use rand::{rngs::StdRng, Rng, SeedableRng};
use vecdex::{
    chamfer, FdeConfig, Metric, MultiVectorConfig, MultiVectorIndex, MultiVectorSearch, StopFlag,
    Strategy,
};

const DIM: usize = 16;

fn documents(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tokens = Vec::new();
    let mut offsets = vec![0u32];
    for _ in 0..n {
        let count = rng.gen_range(5..15);
        for _ in 0..count * DIM {
            tokens.push(rng.gen::<f32>() * 2.0 - 1.0);
        }
        offsets.push(offsets[offsets.len() - 1] + count as u32);
    }
    (tokens, offsets)
}

fn document(tokens: &[f32], offsets: &[u32], i: usize) -> Vec<f32> {
    tokens[offsets[i] as usize * DIM..offsets[i + 1] as usize * DIM].to_vec()
}

fn index() -> MultiVectorIndex {
    let fde = FdeConfig {
        num_repetitions: 4,
        num_simhash_projections: 3,
        projection_dimension: 8,
        ..FdeConfig::new(DIM)
    };
    MultiVectorIndex::new(MultiVectorConfig::new(fde, Metric::Dot)).expect("config")
}

#[test]
fn removals_compact_the_token_store_and_keep_every_document() {
    let stop = StopFlag::never();
    let (tokens, offsets) = documents(1000, 1);
    let keys: Vec<u64> = (0..1000).collect();
    let mut index = index();
    index.add(&keys, &tokens, &offsets, &stop).expect("add");
    let removed: Vec<u64> = (0..1000).filter(|k| k % 5 != 0).collect();
    assert_eq!(index.remove(&removed), Ok(removed.len()));
    let stats = index.stats();
    assert_eq!(stats.documents, 200);
    assert_eq!(
        stats.dead_tokens, 0,
        "dead tokens outnumbered live ones: the store was compacted"
    );
    for key in (0..1000u64).step_by(5) {
        assert_eq!(
            index.get(key).expect("kept"),
            document(&tokens, &offsets, key as usize)
        );
    }
    assert!(index.get(1).is_none());
    // Replacing a document keeps one copy, under the new tokens.
    let (fresh, fresh_offsets) = documents(1, 2);
    index
        .add(&[10], &fresh, &fresh_offsets, &stop)
        .expect("upsert");
    assert_eq!(index.get(10).expect("replaced"), fresh);
    assert_eq!(index.len(), 200);
    // Exact search: the best document of a query equals the plain oracle's.
    let query = document(&tokens, &offsets, 35);
    let exact = index
        .search_exact(&query, &[0, (query.len() / DIM) as u32], 5, None, &stop)
        .expect("exact");
    let best = (0..1000usize)
        .filter(|k| k % 5 == 0 && *k != 10)
        .map(|k| {
            (
                k as u64,
                chamfer(&query, &document(&tokens, &offsets, k), DIM),
            )
        })
        .chain([(10, chamfer(&query, &fresh, DIM))])
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("documents");
    assert_eq!(exact.keys[0], best.0);
    assert!((exact.distances[0] + best.1).abs() < 1e-4);
    for strategy in [Strategy::Rerank, Strategy::Walk] {
        let params = MultiVectorSearch {
            candidates: Some(200),
            strategy: Some(strategy),
            ..MultiVectorSearch::new(5)
        };
        let found = index
            .search(
                &query,
                &[0, (query.len() / DIM) as u32],
                params,
                None,
                &stop,
            )
            .expect("search");
        // 200 candidates cover all 200 documents: both strategies are exact here.
        assert_eq!(found.keys[..5], exact.keys[..5], "{strategy:?}");
    }
}

#[test]
fn a_failed_or_aborted_add_changes_nothing() {
    let stop = StopFlag::never();
    let (tokens, offsets) = documents(50, 3);
    let keys: Vec<u64> = (0..50).collect();
    let mut index = index();
    index.add(&keys, &tokens, &offsets, &stop).expect("add");
    let mut bad = tokens.clone();
    bad[7] = f32::NAN;
    assert!(index.add(&keys, &bad, &offsets, &stop).is_err());
    let aborted = StopFlag::new();
    aborted.stop();
    let more: Vec<u64> = (100..150).collect();
    assert!(index.add(&more, &tokens, &offsets, &aborted).is_err());
    assert_eq!(index.len(), 50);
    assert_eq!(index.get(3).expect("kept"), document(&tokens, &offsets, 3));
    assert!(!index.contains(100));
}

#[test]
fn saved_indexes_load_with_the_same_answers_and_damage_is_an_error() {
    let stop = StopFlag::never();
    let (tokens, offsets) = documents(300, 5);
    let keys: Vec<u64> = (0..300).map(|k| k * 13 + 1).collect();
    let mut index = index();
    index.add(&keys, &tokens, &offsets, &stop).expect("add");
    index.remove(&keys[..40]).expect("remove");
    let bytes = index.to_bytes().expect("save");
    let loaded = MultiVectorIndex::from_bytes(&bytes).expect("load");
    assert_eq!(loaded.len(), 260);
    assert_eq!(loaded.to_bytes().expect("save again"), bytes);
    let (queries, query_offsets) = documents(10, 6);
    let params = MultiVectorSearch::new(10);
    let search = |i: &MultiVectorIndex| {
        i.search(&queries, &query_offsets, params, None, &stop)
            .expect("search")
    };
    assert_eq!(search(&index), search(&loaded));
    assert_eq!(loaded.get(keys[100]), index.get(keys[100]));
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..3000 {
        let mut bad = bytes.clone();
        let at = rng.gen_range(0..bad.len());
        bad[at] ^= 1 << rng.gen_range(0..8);
        assert!(MultiVectorIndex::from_bytes(&bad).is_err());
    }
    for len in (0..bytes.len()).step_by(97) {
        assert!(MultiVectorIndex::from_bytes(&bytes[..len]).is_err());
    }
    // A crafted configuration (valid checksums) asking for a huge encoder is refused before
    // the encoder draws anything.
    let file = vecdex_store::parse(&bytes).expect("parse");
    let mut header = file.header.clone();
    header.config[8..16].copy_from_slice(&16_384u64.to_le_bytes());
    let sections: Vec<(u32, &[u8])> = file.sections.iter().map(|s| (s.id, s.bytes)).collect();
    let crafted = vecdex_store::encode(&header, &sections).expect("encode");
    let started = std::time::Instant::now();
    assert!(matches!(
        MultiVectorIndex::from_bytes(&crafted),
        Err(vecdex::Error::CorruptFile(_))
    ));
    assert!(started.elapsed().as_secs_f64() < 0.5);
}

/// Documents drawn from a small vocabulary of token vectors, so that documents share tokens
/// (as words do): `vocabulary` distinct tokens, 3–9 per document.
fn documents_from_vocabulary(n: usize, vocabulary: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let words: Vec<f32> = (0..vocabulary * DIM)
        .map(|_| rng.gen::<f32>() * 2.0 - 1.0)
        .collect();
    let mut tokens = Vec::new();
    let mut offsets = vec![0u32];
    for _ in 0..n {
        let count = rng.gen_range(3..10);
        for _ in 0..count {
            let w = rng.gen_range(0..vocabulary);
            tokens.extend_from_slice(&words[w * DIM..(w + 1) * DIM]);
        }
        offsets.push(offsets[offsets.len() - 1] + count as u32);
    }
    (tokens, offsets)
}

fn tokens_search(neighbours: usize, candidates: usize, k: usize) -> MultiVectorSearch {
    MultiVectorSearch {
        candidates: Some(candidates),
        strategy: Some(Strategy::Tokens),
        token_neighbours: Some(neighbours),
        ..MultiVectorSearch::new(k)
    }
}

#[test]
fn token_retrieval_finds_the_exact_top_k_and_follows_adds_removals_and_compaction() {
    let stop = StopFlag::never();
    let (tokens, offsets) = documents_from_vocabulary(1500, 150, 21);
    let keys: Vec<u64> = (0..1500).map(|k| k * 5 + 2).collect();
    let mut index = index();
    index.add(&keys, &tokens, &offsets, &stop).expect("add");
    let (queries, query_offsets) = documents_from_vocabulary(12, 150, 22);
    let k = 5;
    let check = |index: &MultiVectorIndex, what: &str| {
        // Every distinct token retrieved and every document a candidate: exactly the exact search.
        let found = index
            .search(
                &queries,
                &query_offsets,
                tokens_search(4096, 4096, k),
                None,
                &stop,
            )
            .expect("tokens search");
        let exact = index
            .search_exact(&queries, &query_offsets, k, None, &stop)
            .expect("exact");
        for q in 0..12 {
            let row = q * found.k;
            let n = found.counts[q] as usize;
            assert_eq!(n, exact.counts[q] as usize, "{what}: query {q}");
            for j in 0..n {
                assert!(
                    (found.distances[row + j] - exact.distances[row + j]).abs() < 1e-4,
                    "{what}: query {q}, hit {j}: {} vs {}",
                    found.distances[row + j],
                    exact.distances[row + j]
                );
            }
        }
        // Small budgets still return k live documents, scored exactly.
        let small = index
            .search(
                &queries,
                &query_offsets,
                tokens_search(2, 20, k),
                None,
                &stop,
            )
            .expect("small tokens search");
        for q in 0..12 {
            assert_eq!(small.counts[q] as usize, k, "{what}: query {q}");
            for j in 0..k {
                let key = small.keys[q * small.k + j];
                let doc = index.get(key).expect("a live document");
                let query =
                    &queries[query_offsets[q] as usize * DIM..query_offsets[q + 1] as usize * DIM];
                let score = chamfer(query, &doc, DIM);
                assert!((small.distances[q * small.k + j] + score).abs() < 1e-4);
            }
        }
    };
    check(&index, "built");

    // New documents are indexed by the next search.
    let (more, more_offsets) = documents_from_vocabulary(50, 150, 23);
    let more_keys: Vec<u64> = (0..50).map(|k| 10_000 + k).collect();
    index
        .add(&more_keys, &more, &more_offsets, &stop)
        .expect("add more");
    check(&index, "after an add");
    // A copy of the first query as a document is its own best match.
    let copy = &queries[..query_offsets[1] as usize * DIM];
    index
        .add(&[99_999], copy, &[0, query_offsets[1]], &stop)
        .expect("add the copy");
    let top = index
        .search(
            copy,
            &[0, query_offsets[1]],
            tokens_search(8, 30, 1),
            None,
            &stop,
        )
        .expect("search");
    assert_eq!(top.keys[0], 99_999);

    // Removed documents never come back, before and after the token store compacts.
    index.remove(&[99_999]).expect("remove");
    check(&index, "after a removal");
    index.remove(&keys[..1300]).expect("remove most");
    assert!(
        index.stats().dead_tokens < index.stats().tokens,
        "the store compacted"
    );
    check(&index, "after compaction");
    let all = index
        .search(
            &queries,
            &query_offsets,
            tokens_search(64, 500, 100),
            None,
            &stop,
        )
        .expect("search");
    assert!(all.keys.iter().all(|key| *key == 0 || index.contains(*key)));

    // A filter admits only its keys.
    let allowed: Vec<u64> = keys[1400..1420].to_vec();
    let filter = vecdex::KeyFilter::new(allowed.clone());
    let filtered = index
        .search(
            &queries,
            &query_offsets,
            tokens_search(16, 100, k),
            Some(&filter),
            &stop,
        )
        .expect("filtered");
    for q in 0..12 {
        let n = filtered.counts[q] as usize;
        assert!(n > 0);
        for &key in &filtered.keys[q * filtered.k..q * filtered.k + n] {
            assert!(allowed.contains(&key));
        }
    }
    // Out-of-range settings are errors.
    assert!(index
        .search(
            &queries,
            &query_offsets,
            tokens_search(0, 10, k),
            None,
            &stop
        )
        .is_err());
    assert!(index
        .search(
            &queries,
            &query_offsets,
            tokens_search(5000, 10, k),
            None,
            &stop
        )
        .is_err());
}
