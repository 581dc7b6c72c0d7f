//! Saved models on odd sizes (dim 65, 513 training vectors): every trained codec (SQ8 and SQ4
//! asymmetric, symmetric and clipped; binary; PQ with subspace counts that do and do not divide
//! the dimensions, and fewer rows than centroids; PCA centered and not), under every metric it
//! supports, loads back from `model_bytes` into a codec with identical codes, identical score
//! bits and identical bytes; every truncation, one extra byte, a NaN and out-of-range values
//! are errors, never panics.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex_distance::Metric;
use vecdex_quant::{
    BinaryCodec, Codec, Pca, PcaConfig, PqCodec, PqConfig, QuantError, ScalarCodec, SqConfig,
    MODEL_VERSION,
};

const DIM: usize = 65;
const ROWS: usize = 513;
/// Vectors encoded by both the trained and the loaded codec.
const ENCODED: usize = 100;
/// Queries scored against every encoded vector.
const QUERIES: usize = 7;
const METRICS: [Metric; 3] = [Metric::Cosine, Metric::Dot, Metric::L2sq];

/// Rows with a different scale and offset per dimension; unit length for cosine.
fn data(rows: usize, metric: Metric, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let scales: Vec<f32> = (0..DIM).map(|d| 0.1 + (d % 7) as f32).collect();
    let offsets: Vec<f32> = (0..DIM).map(|d| (d % 5) as f32 - 2.0).collect();
    let mut out: Vec<f32> = (0..rows * DIM)
        .map(|i| offsets[i % DIM] + scales[i % DIM] * rng.gen_range(-1.0f32..1.0))
        .collect();
    if metric == Metric::Cosine {
        for row in out.chunks_exact_mut(DIM) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    out
}

/// Where the first float of a model sits, and its width.
#[derive(Clone, Copy)]
enum FirstFloat {
    F32At(usize),
    F64At(usize),
}

/// Writes a NaN of the right width at the first float position.
fn with_nan(bytes: &[u8], at: FirstFloat) -> Vec<u8> {
    let mut broken = bytes.to_vec();
    match at {
        FirstFloat::F32At(i) => broken[i..i + 4].copy_from_slice(&f32::NAN.to_le_bytes()),
        FirstFloat::F64At(i) => broken[i..i + 8].copy_from_slice(&f64::NAN.to_le_bytes()),
    }
    broken
}

/// Every strict prefix, one extra byte, and a NaN in the first float are errors.
fn check_corruptions<T: Debug>(
    bytes: &[u8],
    first: FirstFloat,
    load: impl Fn(&[u8]) -> Result<T, QuantError>,
    what: &str,
) {
    for len in 0..bytes.len() {
        assert!(load(&bytes[..len]).is_err(), "{what}: {len} bytes load");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(load(&longer).is_err(), "{what}: one byte more loads");
    let message = load(&with_nan(bytes, first))
        .unwrap_err()
        .message()
        .to_string();
    assert!(message.contains("not finite"), "{what}: {message}");
}

/// The trained codec against the one loaded from its model bytes: same bytes again, equal
/// fields, identical codes and identical score bits; then the corruption checks.
fn check_codec<C: Codec + PartialEq + Debug>(
    trained: &C,
    model: impl Fn(&C) -> Vec<u8>,
    load: impl Fn(&[u8]) -> Result<C, QuantError>,
    first: FirstFloat,
    seed: u64,
    what: &str,
) {
    let bytes = model(trained);
    let loaded = load(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(model(&loaded), bytes, "{what}: model bytes differ");
    assert_eq!(&loaded, trained, "{what}: fields differ");
    let size = trained.code_size();
    assert_eq!(loaded.code_size(), size);
    let vectors = data(ENCODED, trained.metric(), seed);
    let mut codes = vec![0u8; ENCODED * size];
    let mut again = vec![0u8; ENCODED * size];
    for ((vector, code), other) in vectors
        .chunks_exact(DIM)
        .zip(codes.chunks_exact_mut(size))
        .zip(again.chunks_exact_mut(size))
    {
        trained.encode(vector, code);
        loaded.encode(vector, other);
    }
    assert_eq!(codes, again, "{what}: codes differ");
    for query in data(QUERIES, trained.metric(), seed + 1).chunks_exact(DIM) {
        let (a, b) = (trained.prepare(query), loaded.prepare(query));
        for code in codes.chunks_exact(size) {
            let (x, y) = (trained.score(&a, code), loaded.score(&b, code));
            assert_eq!(x.to_bits(), y.to_bits(), "{what}: score {x} vs {y}");
        }
    }
    check_corruptions(&bytes, first, load, what);
}

fn sq_configs(bits: u32) -> Vec<(&'static str, SqConfig)> {
    let mut configs = vec![
        ("asymmetric", SqConfig::default()),
        (
            "clipped",
            SqConfig {
                clip_quantile: 0.01,
                symmetric: false,
            },
        ),
    ];
    if bits == 8 {
        configs.push((
            "symmetric",
            SqConfig {
                clip_quantile: 0.0,
                symmetric: true,
            },
        ));
        configs.push((
            "symmetric clipped",
            SqConfig {
                clip_quantile: 0.01,
                symmetric: true,
            },
        ));
    }
    configs
}

fn check_scalar<const BITS: u32>() {
    for (m, metric) in METRICS.into_iter().enumerate() {
        let rows = data(ROWS, metric, 10 + m as u64);
        for (name, config) in sq_configs(BITS) {
            let what = format!("SQ{BITS} {name} {metric}");
            let trained = ScalarCodec::<BITS>::train(&rows, DIM, metric, config).unwrap();
            let bytes = trained.model_bytes();
            assert_eq!(bytes.len(), 8 * DIM, "{what}");
            check_codec(
                &trained,
                ScalarCodec::model_bytes,
                |b| ScalarCodec::<BITS>::from_model_bytes(b, DIM, metric, config),
                FirstFloat::F32At(0),
                20 + m as u64,
                &what,
            );
            // Steps must be positive; the configuration is checked as `train` checks it.
            let mut zero_step = bytes.clone();
            zero_step[4 * DIM + 8..4 * DIM + 12].copy_from_slice(&0f32.to_le_bytes());
            let err = ScalarCodec::<BITS>::from_model_bytes(&zero_step, DIM, metric, config);
            assert!(
                err.unwrap_err().message().contains("step of dimension 2"),
                "{what}"
            );
            let load = |dim, metric, config| {
                ScalarCodec::<BITS>::from_model_bytes(&bytes, dim, metric, config)
            };
            assert!(load(DIM + 1, metric, config).is_err(), "{what}");
            assert!(load(0, metric, config).is_err(), "{what}");
            assert!(load(DIM, Metric::Hamming, config).is_err(), "{what}");
            let half = SqConfig {
                clip_quantile: 0.5,
                ..config
            };
            assert!(load(DIM, metric, half).is_err(), "{what}");
        }
    }
}

#[test]
fn sq8_models_round_trip() {
    check_scalar::<8>();
}

#[test]
fn sq4_models_round_trip() {
    check_scalar::<4>();
    let rows = data(ROWS, Metric::Dot, 3);
    let trained = ScalarCodec::<4>::train(&rows, DIM, Metric::Dot, SqConfig::default()).unwrap();
    let symmetric = SqConfig {
        symmetric: true,
        ..SqConfig::default()
    };
    let err =
        ScalarCodec::<4>::from_model_bytes(&trained.model_bytes(), DIM, Metric::Dot, symmetric);
    assert!(err.is_err(), "symmetric SQ4 is refused as train refuses it");
}

/// Constant dimensions, ranges wider than `f32::MAX` and ranges whose step would underflow all
/// train to finite, positive steps, so their models load.
#[test]
fn sq_models_of_extreme_ranges_load() {
    let dim = 3;
    let rows = [1.5, -3e38, 0.0, 1.5, 3e38, 1e-45, 1.5, 0.0, 0.0];
    for metric in METRICS {
        let sq8 = ScalarCodec::<8>::train(&rows, dim, metric, SqConfig::default()).unwrap();
        let (_, steps) = sq8.ranges();
        assert!(steps.iter().all(|s| s.is_finite() && *s > 0.0), "{steps:?}");
        let loaded = ScalarCodec::<8>::from_model_bytes(
            &sq8.model_bytes(),
            dim,
            metric,
            SqConfig::default(),
        )
        .unwrap();
        assert_eq!(loaded, sq8);
        let sq4 = ScalarCodec::<4>::train(&rows, dim, metric, SqConfig::default()).unwrap();
        let loaded = ScalarCodec::<4>::from_model_bytes(
            &sq4.model_bytes(),
            dim,
            metric,
            SqConfig::default(),
        )
        .unwrap();
        assert_eq!(loaded, sq4);
        let binary = BinaryCodec::train(&rows, dim, metric).unwrap();
        let loaded = BinaryCodec::from_model_bytes(&binary.model_bytes(), dim, metric).unwrap();
        assert_eq!(loaded, binary);
    }
}

#[test]
fn binary_models_round_trip() {
    for (m, metric) in METRICS.into_iter().enumerate() {
        let rows = data(ROWS, metric, 30 + m as u64);
        let what = format!("binary {metric}");
        let trained = BinaryCodec::train(&rows, DIM, metric).unwrap();
        let bytes = trained.model_bytes();
        assert_eq!(bytes.len(), 8 * DIM, "{what}");
        check_codec(
            &trained,
            BinaryCodec::model_bytes,
            |b| BinaryCodec::from_model_bytes(b, DIM, metric),
            FirstFloat::F32At(0),
            40 + m as u64,
            &what,
        );
        let mut negative = bytes.clone();
        negative[4 * DIM..4 * DIM + 4].copy_from_slice(&(-1f32).to_le_bytes());
        let err = BinaryCodec::from_model_bytes(&negative, DIM, metric).unwrap_err();
        assert!(
            err.message().contains("spread of dimension 0"),
            "{what}: {err}"
        );
        assert!(BinaryCodec::from_model_bytes(&bytes, 0, metric).is_err());
        assert!(BinaryCodec::from_model_bytes(&bytes, DIM, Metric::Hamming).is_err());
    }
}

#[test]
fn pq_models_round_trip() {
    // 5 and 13 divide 65; 1 is one subspace; 8 and 20 do not divide it.
    for (m, metric) in METRICS.into_iter().enumerate() {
        let rows = data(ROWS, metric, 50 + m as u64);
        for subspaces in [1, 5, 8, 13, 20] {
            let what = format!("PQ m={subspaces} {metric}");
            let config = PqConfig {
                iterations: 8,
                ..PqConfig::new(subspaces)
            };
            let trained = PqCodec::train(&rows, DIM, metric, config).unwrap();
            let bytes = trained.model_bytes();
            assert_eq!(bytes.len(), 4 + 4 * 256 * DIM, "{what}");
            check_codec(
                &trained,
                PqCodec::model_bytes,
                |b| PqCodec::from_model_bytes(b, DIM, metric, config),
                FirstFloat::F32At(4),
                60 + m as u64,
                &what,
            );
            for bad in [0u32, 257, u32::MAX] {
                let mut broken = bytes.clone();
                broken[..4].copy_from_slice(&bad.to_le_bytes());
                let err = PqCodec::from_model_bytes(&broken, DIM, metric, config).unwrap_err();
                assert!(
                    err.message().contains("centroids per subspace"),
                    "{what}: {err}"
                );
            }
            for bad in [0, DIM + 1] {
                let config = PqConfig::new(bad);
                assert!(PqCodec::from_model_bytes(&bytes, DIM, metric, config).is_err());
            }
        }
    }
}

/// With fewer training rows than 256, the codebooks hold fewer centroids; the count is saved.
#[test]
fn pq_models_of_small_samples_round_trip() {
    let rows = data(100, Metric::L2sq, 70);
    let config = PqConfig::new(8);
    let trained = PqCodec::train(&rows, DIM, Metric::L2sq, config).unwrap();
    let bytes = trained.model_bytes();
    assert_eq!(bytes[..4], 100u32.to_le_bytes());
    assert_eq!(bytes.len(), 4 + 4 * 100 * DIM);
    check_codec(
        &trained,
        PqCodec::model_bytes,
        |b| PqCodec::from_model_bytes(b, DIM, Metric::L2sq, config),
        FirstFloat::F32At(4),
        71,
        "PQ with 100 centroids",
    );
    let mut more = bytes.clone();
    more[..4].copy_from_slice(&101u32.to_le_bytes());
    assert!(PqCodec::from_model_bytes(&more, DIM, Metric::L2sq, config).is_err());
}

#[test]
fn pca_models_round_trip() {
    for centered in [true, false] {
        for out_dim in [1, 16, DIM] {
            let what = format!("PCA out_dim={out_dim} centered={centered}");
            let config = PcaConfig { out_dim, centered };
            let rows = data(ROWS, Metric::L2sq, 80 + out_dim as u64);
            let trained = Pca::train(&rows, DIM, config).unwrap();
            let bytes = trained.model_bytes();
            assert_eq!(bytes.len(), 8 + 8 * out_dim + 4 * DIM + 4 * out_dim * DIM);
            let load = |b: &[u8]| Pca::from_model_bytes(b, DIM, config);
            let loaded = load(&bytes).unwrap();
            assert_eq!(loaded.model_bytes(), bytes, "{what}");
            assert_eq!(loaded, trained, "{what}");
            assert_eq!(loaded.explained().to_bits(), trained.explained().to_bits());
            let (mut a, mut b) = (vec![0f32; out_dim], vec![0f32; out_dim]);
            for vector in data(ENCODED, Metric::L2sq, 90).chunks_exact(DIM) {
                trained.project(vector, &mut a);
                loaded.project(vector, &mut b);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{what}");
            }
            check_corruptions(&bytes, FirstFloat::F64At(0), load, &what);
            // A NaN in the first f32 (the mean) too.
            let mean_at = 8 + 8 * out_dim;
            let err = load(&with_nan(&bytes, FirstFloat::F32At(mean_at))).unwrap_err();
            assert!(err.message().contains("the mean"), "{what}: {err}");
            let mut negative = bytes.clone();
            negative[..8].copy_from_slice(&(-1f64).to_le_bytes());
            assert!(load(&negative).is_err(), "{what}: negative total");
            if out_dim > 1 {
                let mut unsorted = bytes.clone();
                unsorted[8..16].copy_from_slice(&(-1f64).to_le_bytes());
                let err = load(&unsorted).unwrap_err();
                assert!(err.message().contains("eigenvalue 1"), "{what}: {err}");
            }
            if !centered {
                let mut offset = bytes.clone();
                offset[mean_at..mean_at + 4].copy_from_slice(&1f32.to_le_bytes());
                assert!(load(&offset).is_err(), "{what}: uncentered with a mean");
            }
            for bad in [0, DIM + 1] {
                let config = PcaConfig {
                    out_dim: bad,
                    centered,
                };
                assert!(Pca::from_model_bytes(&bytes, DIM, config).is_err());
            }
            assert!(Pca::from_model_bytes(&bytes, 0, config).is_err());
        }
    }
}

/// Shapes so large that their byte counts overflow are errors, not allocations.
#[test]
fn huge_shapes_are_errors() {
    let bytes = [0u8; 16];
    let sq = SqConfig::default();
    assert!(ScalarCodec::<8>::from_model_bytes(&bytes, usize::MAX, Metric::Dot, sq).is_err());
    assert!(BinaryCodec::from_model_bytes(&bytes, usize::MAX / 2, Metric::Dot).is_err());
    let mut pq = bytes;
    pq[..4].copy_from_slice(&256u32.to_le_bytes());
    let config = PqConfig::new(1);
    assert!(PqCodec::from_model_bytes(&pq, usize::MAX / 8, Metric::Dot, config).is_err());
    let config = PcaConfig {
        out_dim: usize::MAX / 2,
        centered: true,
    };
    assert!(Pca::from_model_bytes(&bytes, usize::MAX / 2, config).is_err());
    assert_eq!(MODEL_VERSION, 1);
}
