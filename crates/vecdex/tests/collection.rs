//! A collection keeps every part of an item together: upserts replace the vector, text and
//! metadata at once, deletes free rows that later items reuse, filtered searches return exactly
//! the admitted items (against a brute-force oracle, on both index kinds and both filter paths),
//! a failed or stopped upsert changes nothing, and a save/load round trip gives back the same
//! collection (a snapshot written later too) while any damaged or inconsistent file is refused.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::collection::{FieldType, HitContents};
use vecdex::hnsw_index::HnswConfig;
use vecdex::{
    Collection, CollectionConfig, Error, FlatConfig, IndexSettings, ItemBatch, ItemId, Metric,
    Persistent, RescoreParams, StopFlag,
};

const DIM: usize = 8;

fn config(hnsw: bool) -> CollectionConfig {
    CollectionConfig {
        index: if hnsw {
            IndexSettings::Hnsw(HnswConfig::new(DIM, Metric::L2sq))
        } else {
            IndexSettings::Flat(FlatConfig {
                dim: DIM,
                metric: Metric::L2sq,
            })
        },
        compression: Default::default(),
        fields: vec![
            ("colour".into(), FieldType::String),
            ("size".into(), FieldType::Number),
        ],
        full_vectors: vecdex::FullVectors::Memory,
    }
}

fn sid(s: &str) -> ItemId {
    ItemId::Str(s.into())
}

const COLOURS: [&str; 4] = ["red", "green", "blue", "grey"];

/// `n` items: id "item-i" (odd i) or the integer i (even i), colour i % 4, size i % 10, a text
/// for every third item, and an undeclared field `tag` on every fifth.
fn items(rng: &mut StdRng, n: usize) -> (ItemBatch, Vec<f32>) {
    let vectors: Vec<f32> = (0..n * DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let batch = ItemBatch {
        ids: (0..n).map(|i| id_of(i)).collect(),
        vectors: vectors.clone(),
        texts: (0..n)
            .map(|i| (i % 3 == 0).then(|| format!("text {i}")))
            .collect(),
        metadata: (0..n)
            .map(|i| {
                let tag = if i % 5 == 0 { r#","tag":"five""# } else { "" };
                Some(format!(
                    r#"{{"colour":"{}","size":{}{tag}}}"#,
                    COLOURS[i % 4],
                    i % 10
                ))
            })
            .collect(),
    };
    (batch, vectors)
}

fn id_of(i: usize) -> ItemId {
    if i % 2 == 0 {
        ItemId::Int(i as u64)
    } else {
        sid(&format!("item-{i}"))
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn search(c: &Collection, query: &[f32], k: usize, filter: Option<&str>) -> Vec<ItemId> {
    c.search(
        query,
        k,
        Some(512),
        RescoreParams::default(),
        filter,
        HitContents::default(),
        &StopFlag::never(),
    )
    .expect("search")
    .remove(0)
    .into_iter()
    .map(|h| h.id)
    .collect()
}

/// The `k` nearest of the items `admit` keeps, by brute force.
fn oracle(vectors: &[f32], n: usize, query: &[f32], k: usize, admit: impl Fn(usize) -> bool) -> Vec<ItemId> {
    let mut scored: Vec<(f32, usize)> = (0..n)
        .filter(|&i| admit(i))
        .map(|i| (l2(query, &vectors[i * DIM..][..DIM]), i))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().take(k).map(|(_, i)| id_of(i)).collect()
}

#[test]
fn filtered_searches_return_the_oracle_on_both_kinds_and_both_paths() {
    for hnsw in [false, true] {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 3000;
        let (batch, vectors) = items(&mut rng, n);
        let mut c = Collection::new(config(hnsw)).expect("new");
        c.upsert(batch, &StopFlag::never()).expect("upsert");
        assert_eq!(c.len(), n);
        // Wide (declared), narrow (declared, the exact scan), undeclared, and combined filters.
        let cases: Vec<(&str, Box<dyn Fn(usize) -> bool>)> = vec![
            (r#"{"colour":"red"}"#, Box::new(|i| i % 4 == 0)),
            (r#"{"colour":"red","size":{"$lt":1}}"#, Box::new(|i| i % 4 == 0 && i % 10 == 0)),
            (r#"{"tag":"five"}"#, Box::new(|i| i % 5 == 0)),
            (
                r#"{"$or":[{"colour":{"$in":["green","blue"]}},{"size":{"$gte":9}}]}"#,
                Box::new(|i| matches!(i % 4, 1 | 2) || i % 10 >= 9),
            ),
            (r#"{"$not":{"colour":"grey"}}"#, Box::new(|i| i % 4 != 3)),
            (r#"{"nowhere":1}"#, Box::new(|_| false)),
        ];
        for (filter, admit) in &cases {
            let expected_count = (0..n).filter(|&i| admit(i)).count();
            assert_eq!(c.count(Some(filter)).expect("count"), expected_count, "{filter}");
            let mut recall = 0usize;
            let mut total = 0usize;
            for _ in 0..10 {
                let query: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
                let got = search(&c, &query, 10, Some(filter));
                let want = oracle(&vectors, n, &query, 10, admit);
                assert_eq!(got.len(), want.len(), "{filter}");
                for id in &got {
                    let i = match id {
                        ItemId::Int(i) => *i as usize,
                        ItemId::Str(s) => s["item-".len()..].parse().expect("id"),
                    };
                    assert!(admit(i), "{filter}: {id} is not admitted");
                }
                recall += got.iter().filter(|id| want.contains(id)).count();
                total += want.len();
            }
            if hnsw {
                assert!(recall as f64 >= 0.95 * total as f64, "{filter}: recall {recall}/{total}");
            } else {
                assert_eq!(recall, total, "{filter}: an exact collection is exact");
            }
        }
    }
}

#[test]
fn upserts_replace_whole_items_and_deletes_free_rows_for_reuse() {
    let mut c = Collection::new(config(true)).expect("new");
    let one = |id: ItemId, x: f32, text: Option<&str>, meta: Option<&str>| ItemBatch {
        ids: vec![id],
        vectors: vec![x; DIM],
        texts: vec![text.map(str::to_owned)],
        metadata: vec![meta.map(str::to_owned)],
    };
    c.upsert(one(sid("a"), 1.0, Some("first"), Some(r#"{"colour":"red"}"#)), &StopFlag::never()).expect("a");
    // Without metadata or texts at all (empty columns), as a bare batch.
    c.upsert(
        ItemBatch {
            ids: vec![ItemId::Int(7), ItemId::Int(8)],
            vectors: vec![0.5; 2 * DIM],
            ..Default::default()
        },
        &StopFlag::never(),
    )
    .expect("bare");
    assert_eq!(c.len(), 3);
    assert_eq!(c.count(Some(r#"{"colour":"red"}"#)).expect("count"), 1);
    // Replacing "a" drops its old text and metadata, and moves it out of the red bitmap.
    c.upsert(one(sid("a"), 2.0, None, Some(r#"{"colour":"blue"}"#)), &StopFlag::never()).expect("replace");
    let got = c.get(&[sid("a"), sid("zz")], true).expect("get");
    let a = got[0].as_ref().expect("a is stored");
    assert_eq!(a.text, None);
    assert_eq!(a.metadata.as_deref(), Some(r#"{"colour":"blue"}"#));
    assert_eq!(a.vector.as_deref(), Some(&[2.0; DIM][..]));
    assert!(got[1].is_none());
    assert_eq!(c.count(Some(r#"{"colour":"red"}"#)).expect("count"), 0);
    assert_eq!(c.count(Some(r#"{"colour":"blue"}"#)).expect("count"), 1);
    // Deleting by filter and by id; the freed rows are reused, and nothing of the old items shows.
    assert_eq!(c.delete_where(r#"{"colour":"blue"}"#).expect("delete"), 1);
    assert_eq!(c.delete(&[ItemId::Int(7), ItemId::Int(99)]).expect("delete"), 1);
    assert_eq!(c.len(), 1);
    c.upsert(one(sid("b"), 3.0, Some("b"), None), &StopFlag::never()).expect("b");
    c.upsert(one(sid("c"), 4.0, None, Some(r#"{"size":3}"#)), &StopFlag::never()).expect("c");
    assert_eq!(c.count(Some(r#"{"colour":{"$exists":true}}"#)).expect("count"), 0);
    assert_eq!(c.count(Some(r#"{"size":3}"#)).expect("count"), 1);
    let hits = search(&c, &[3.0; DIM], 3, None);
    assert_eq!(hits, vec![sid("b"), sid("c"), ItemId::Int(8)]);
    // Round trip with free rows in the table.
    c.delete(&[sid("b")]).expect("delete b");
    let back = Collection::from_bytes(&c.to_bytes().expect("image")).expect("load");
    assert_eq!(back.len(), 2);
    assert_eq!(back.get(&[sid("c")], true).expect("get"), c.get(&[sid("c")], true).expect("get"));
    assert_eq!(search(&back, &[3.0; DIM], 3, None), search(&c, &[3.0; DIM], 3, None));
    assert_eq!(back.count(Some(r#"{"size":3}"#)).expect("count"), 1);
    // A snapshot taken now and written later is the file of the state it was taken in, byte
    // for byte, whatever changes in between (what a save without the lock relies on).
    let dir = std::env::temp_dir().join(format!("vecdex-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let image = c.to_bytes().expect("image");
    let snapshot = c.snapshot().expect("snapshot");
    c.upsert(one(sid("d"), 5.0, Some("later"), None), &StopFlag::never()).expect("d");
    snapshot.save(&dir.join("snap.vdx")).expect("save");
    assert_eq!(std::fs::read(dir.join("snap.vdx")).expect("read"), image);
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn a_bad_batch_or_a_stop_changes_nothing() {
    let mut rng = StdRng::seed_from_u64(5);
    let (batch, _) = items(&mut rng, 50);
    let mut c = Collection::new(config(true)).expect("new");
    c.upsert(batch, &StopFlag::never()).expect("upsert");
    let before = c.to_bytes().expect("image");
    let bad = |metadata: &str| ItemBatch {
        ids: vec![sid("new"), ItemId::Int(0)],
        vectors: vec![0.25; 2 * DIM],
        texts: vec![],
        metadata: vec![None, Some(metadata.to_owned())],
    };
    for (metadata, fragment) in [
        (r#"{"size":"big"}"#, "items[1]: metadata.size is declared number"),
        ("[1,2]", "items[1]: metadata must be a JSON object"),
        ("{oops", "items[1]: metadata is not valid JSON"),
    ] {
        let error = c.upsert(bad(metadata), &StopFlag::never()).expect_err(metadata);
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
        assert!(error.to_string().contains(fragment), "{error}");
    }
    let repeated = ItemBatch {
        ids: vec![sid("x"), sid("x")],
        vectors: vec![0.0; 2 * DIM],
        ..Default::default()
    };
    let error = c.upsert(repeated, &StopFlag::never()).expect_err("repeat");
    assert!(error.to_string().contains("items[1] repeats the id \"x\" of items[0]"), "{error}");
    let short = ItemBatch {
        ids: vec![sid("x")],
        vectors: vec![0.0; DIM - 1],
        ..Default::default()
    };
    assert!(matches!(c.upsert(short, &StopFlag::never()), Err(Error::DimensionMismatch { .. })));
    let stop = StopFlag::new();
    stop.stop();
    let (more, _) = items(&mut StdRng::seed_from_u64(6), 80);
    assert!(matches!(c.upsert(more, &stop), Err(Error::Aborted)));
    assert_eq!(c.to_bytes().expect("image"), before, "the collection is as it was");
    assert!(matches!(c.count(Some(r#"{"$gt":1}"#)), Err(Error::InvalidArgument(_))));
}

#[test]
fn damaged_or_inconsistent_files_are_refused() {
    let mut rng = StdRng::seed_from_u64(9);
    let (batch, _) = items(&mut rng, 40);
    let mut c = Collection::new(config(false)).expect("new");
    c.upsert(batch, &StopFlag::never()).expect("upsert");
    let image = c.to_bytes().expect("image");
    assert_eq!(Collection::from_bytes(&image).expect("load").len(), 40);
    // Every flipped byte is caught (checksums), as a corrupt file, never a panic.
    for at in (0..image.len()).step_by(97) {
        let mut damaged = image.clone();
        damaged[at] ^= 0x40;
        match Collection::from_bytes(&damaged) {
            Err(Error::CorruptFile(_) | Error::UnsupportedFormat(_) | Error::InvalidArgument(_)) => {}
            Ok(_) => panic!("byte {at}: a damaged file loaded"),
            Err(other) => panic!("byte {at}: {other}"),
        }
    }
    // An index file is not a collection, and a collection is not an index.
    assert!(matches!(
        vecdex::FlatIndex::from_bytes(&image),
        Err(Error::InvalidArgument(_))
    ));
    let flat = vecdex::FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::L2sq,
    })
    .expect("flat");
    assert!(matches!(
        Collection::from_bytes(&flat.to_bytes().expect("image")),
        Err(Error::InvalidArgument(_))
    ));
    let _ = Persistent::len(&c);
}
