//! Sizes the caller chooses never make the encoder or the token store abort: configurations
//! whose encoder would hold too much are refused up front, buffers that cannot be allocated are
//! `FdeError::OutOfMemory`, a huge `k` sizes nothing, and tokens beyond the token bound never
//! enter a store through a saved file.

use vecdex_distance::SimdLevel;
use vecdex_fde::{
    FdeConfig, FdeEncoder, FdeError, ProjectionType, Side, TokenStore, MAX_RANDOM_VALUES,
    MAX_TOKEN_SQUARED_NORM,
};

fn config(dim: usize, reps: usize, bits: u32, kind: ProjectionType, block: usize) -> FdeConfig {
    FdeConfig {
        num_repetitions: reps,
        num_simhash_projections: bits,
        projection_type: kind,
        projection_dimension: block,
        ..FdeConfig::new(dim)
    }
}

#[test]
fn encoder_memory_is_counted_as_allocated() {
    use ProjectionType::{AmsSketch, Identity};
    // (config, accepted): the SimHash directions are padded to 32 lanes, so the bound counts
    // 32 values per coordinate and repetition when there is any SimHash bit, plus 2 per
    // coordinate for a sketch. These were accepted before and allocated up to 16 GiB.
    let cases = [
        (config(65_536, 2_048, 0, AmsSketch, 1), false), // 2^28 sketch values
        (config(65_536, 64, 1, AmsSketch, 1), false),    // 64 · 65,536 · 34
        (config(65_536, 60, 1, Identity, 65_536), true), // 60 · 65,536 · 32 < 2^27
        (config(65_536, 64, 1, Identity, 65_536), true), // exactly 2^27
        (config(65_536, 65, 1, Identity, 65_536), false),
        (config(65_536, 2_048, 0, Identity, 65_536), false), // encoding too long, not memory
        (config(128, 20, 5, AmsSketch, 16), true),           // the defaults
    ];
    for (config, accepted) in cases {
        let values = config.encoder_values();
        let result = FdeEncoder::new(config);
        assert_eq!(
            result.is_ok(),
            accepted,
            "{config:?}: {values} values, {:?}",
            result.err()
        );
        if !accepted {
            assert!(matches!(result, Err(FdeError::InvalidConfig(_))));
        } else {
            assert!(values <= MAX_RANDOM_VALUES as u128);
        }
    }
}

#[test]
fn encoder_with_no_simhash_bits_holds_no_directions() {
    // 0 bits: one partition, no direction to draw or store; encodings unchanged (sum / mean).
    for reps in [1, 7] {
        let encoder = FdeEncoder::new(config(3, reps, 0, ProjectionType::Identity, 3)).expect("ok");
        let tokens = [1.0, 2.0, 3.0, 3.0, 2.0, 1.0];
        let query = encoder.encode(&tokens, Side::Query).expect("query");
        let document = encoder.encode(&tokens, Side::Document).expect("document");
        assert_eq!(query, [4.0, 4.0, 4.0].repeat(reps));
        assert_eq!(document, [2.0, 2.0, 2.0].repeat(reps));
    }
}

#[test]
fn batches_too_large_to_allocate_are_errors() {
    // 65,536 encodings of 2^24 values (4 TiB): an error before any work, whatever the RAM.
    let encoder =
        FdeEncoder::new(config(1, 1, 24, ProjectionType::AmsSketch, 1)).expect("2^24 values");
    let tokens = vec![1.0f32; 1 << 16];
    let offsets: Vec<u32> = (0..=(1u32 << 16)).collect();
    match encoder.encode_batch(&tokens, &offsets, Side::Document, &|| false) {
        Err(FdeError::OutOfMemory(m)) => assert!(m.contains("do not fit in memory"), "{m}"),
        other => panic!(
            "expected OutOfMemory, got {:?}",
            other.map(|o| o.map(|v| v.len()))
        ),
    }
}

#[test]
fn a_huge_k_sizes_nothing() {
    let mut store = TokenStore::new(2);
    for d in 0..5 {
        store.push(&[d as f32, 1.0]);
    }
    let query = [1.0, 0.0, 0.5, 0.5];
    for k in [5, 6, u32::MAX as usize, usize::MAX] {
        let found = store
            .search(SimdLevel::Scalar, &query, &[0, 1, 2], k, &|_| true, &|| {
                false
            })
            .expect("fits")
            .expect("not stopped");
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|hits| hits.len() == 5), "k = {k}");
        assert_eq!(found[0][0].0, 4, "the largest first coordinate wins");
    }
}

#[test]
fn saved_tokens_beyond_the_bound_are_refused() {
    let limit = MAX_TOKEN_SQUARED_NORM.sqrt() as f32;
    for (scale, ok) in [(0.5f32, true), (0.999, true), (1.01, false), (1e5, false)] {
        let values = vec![0.25, 0.0, limit * scale, 0.0];
        let result = TokenStore::from_parts(2, values, vec![0, 1, 2]);
        assert_eq!(result.is_ok(), ok, "scale {scale}: {:?}", result.err());
        if !ok {
            assert!(result.err().unwrap_or_default().contains("token 1"));
        }
    }
}
