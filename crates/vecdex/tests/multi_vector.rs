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
