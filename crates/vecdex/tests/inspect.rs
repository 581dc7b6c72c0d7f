//! `inspect_file`: what `vecdex info` prints comes from the header alone and agrees with the
//! index that wrote the file; damaged headers are the loaders' typed errors.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the message we want

use vecdex::{
    inspect_file, Compression, Error, FdeConfig, FlatConfig, FlatIndex, HnswConfig, HnswIndex,
    LinkMode, Metric, MultiVectorConfig, MultiVectorIndex, Quantization, Setting, SqConfig,
    StopFlag,
};

fn rows(n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

fn setting<'a>(settings: &'a [(String, Setting)], name: &str) -> &'a Setting {
    &settings.iter().find(|(n, _)| n == name).unwrap().1
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vecdex-inspect-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hnsw_files_describe_their_graph_codec_and_sections() {
    let dir = temp_dir("hnsw");
    let path = dir.join("index.vdx");
    let mut config = HnswConfig::new(37, Metric::L2sq);
    config.m = 7;
    config.ef_construction = 50;
    config.ef_search = 33;
    let compression = Compression {
        quantization: Quantization::Sq8(SqConfig::default()),
        training_size: Some(100),
        ..Compression::default()
    };
    let mut index = HnswIndex::with_compression(config, compression).unwrap();
    let keys: Vec<u64> = (0..300).collect();
    let stop = StopFlag::never();
    index
        .add_with(&keys, &rows(300, 37), &stop, LinkMode::Sequential)
        .unwrap();
    index.remove(&keys[..10]).unwrap();
    index.save(&path).unwrap();

    let info = inspect_file(&path).unwrap();
    assert_eq!(info.kind, "hnsw");
    assert_eq!(info.format_version, 1);
    assert_eq!(info.metric, Metric::L2sq);
    assert_eq!(info.dimensions, 37);
    assert_eq!(info.count, 290);
    assert_eq!(info.file_bytes, std::fs::metadata(&path).unwrap().len());
    let s = &info.settings;
    assert_eq!(setting(s, "m"), &Setting::Integer(7));
    assert_eq!(setting(s, "efConstruction"), &Setting::Integer(50));
    assert_eq!(setting(s, "efSearch"), &Setting::Integer(33));
    assert_eq!(setting(s, "quantization"), &Setting::Text("sq8".into()));
    assert_eq!(setting(s, "trainingSize"), &Setting::Integer(100));
    assert_eq!(setting(s, "slots"), &Setting::Integer(300));
    let names: Vec<&str> = info.sections.iter().map(|s| s.name).collect();
    for name in ["keys", "vectors", "layer 0", "codes", "codec model"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let vectors = info.sections.iter().find(|s| s.name == "vectors").unwrap();
    assert_eq!(vectors.bytes, 300 * 48 * 4); // rows padded to 48 floats
    assert!(info.sections.iter().all(|s| s.offset % 64 == 0));

    // A damaged header is the loaders' error; a damaged payload is not seen (no payload read).
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(dir.join("bad.vdx"), &bytes).unwrap();
    assert!(matches!(
        inspect_file(&dir.join("bad.vdx")),
        Err(Error::CorruptFile(_))
    ));
    std::fs::write(dir.join("text.vdx"), b"not an index").unwrap();
    assert!(matches!(
        inspect_file(&dir.join("text.vdx")),
        Err(Error::CorruptFile(_))
    ));
    assert!(matches!(
        inspect_file(&dir.join("missing.vdx")),
        Err(Error::Io(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flat_and_multi_vector_files_describe_themselves() {
    let dir = temp_dir("kinds");
    let flat_path = dir.join("flat.vdx");
    let mut flat = FlatIndex::new(FlatConfig {
        dim: 5,
        metric: Metric::Cosine,
    })
    .unwrap();
    flat.add(&[1, 2, 3], &rows(3, 5), &StopFlag::never())
        .unwrap();
    flat.save(&flat_path).unwrap();
    let info = inspect_file(&flat_path).unwrap();
    assert_eq!(
        (info.kind, info.metric, info.dimensions, info.count),
        ("flat", Metric::Cosine, 5, 3)
    );
    assert!(info.settings.is_empty());

    let mv_path = dir.join("mv.vdx");
    let fde = FdeConfig {
        num_repetitions: 3,
        num_simhash_projections: 2,
        projection_dimension: 4,
        ..FdeConfig::new(6)
    };
    let mut config = MultiVectorConfig::new(fde, Metric::Dot);
    config.graph.m = 9;
    let mut mv = MultiVectorIndex::new(config).unwrap();
    let offsets: Vec<u32> = vec![0, 2, 5, 6];
    mv.add(&[10, 20, 30], &rows(6, 6), &offsets, &StopFlag::never())
        .unwrap();
    mv.save(&mv_path).unwrap();
    let info = inspect_file(&mv_path).unwrap();
    assert_eq!(
        (info.kind, info.dimensions, info.count),
        ("multiVector", 6, 3)
    );
    let s = &info.settings;
    assert_eq!(setting(s, "numRepetitions"), &Setting::Integer(3));
    assert_eq!(setting(s, "numSimhashProjections"), &Setting::Integer(2));
    assert_eq!(
        setting(s, "encodingDimensions"),
        &Setting::Integer(3 * 4 * 4)
    );
    assert_eq!(setting(s, "graph.m"), &Setting::Integer(9));
    std::fs::remove_dir_all(&dir).unwrap();
}
