//! Full vectors on disk (`FullVectors::Disk`): an HNSW index whose rows live in a row file
//! answers exactly as the same index with its rows in memory, through adds, upserts, removals,
//! compaction, saves, loads and views; a crash (rows appended, no save) leaves the last saved
//! file as it was; a damaged, truncated, foreign or missing row file is a typed error.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{
    Compression, Error, FullVectors, HnswConfig, HnswIndex, LinkMode, Metric, Quantization,
    SearchResults, SqConfig, StopFlag,
};

const DIM: usize = 40;

fn rows(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n * DIM).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn folder(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("vecdex-full-vectors-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sq8() -> Compression {
    Compression {
        quantization: Quantization::Sq8(SqConfig::default()),
        training_size: Some(500),
        ..Compression::default()
    }
}

fn index(metric: Metric, full_vectors: &FullVectors) -> HnswIndex {
    HnswIndex::with_storage(HnswConfig::new(DIM, metric), sq8(), full_vectors).unwrap()
}

fn add(index: &mut HnswIndex, first: u64, vectors: &[f32]) {
    let keys: Vec<u64> = (first..first + (vectors.len() / DIM) as u64).collect();
    index
        .add_with(&keys, vectors, &StopFlag::new(), LinkMode::Sequential)
        .unwrap();
}

fn search(index: &HnswIndex, queries: &[f32]) -> SearchResults {
    index
        .search(queries, 10, Some(64), None, &StopFlag::new())
        .unwrap()
}

fn assert_same(a: &SearchResults, b: &SearchResults) {
    assert_eq!(a.keys, b.keys);
    assert_eq!(a.distances, b.distances);
    assert_eq!(a.counts, b.counts);
}

#[test]
fn rows_on_disk_answer_as_rows_in_memory_through_every_change() {
    for metric in [Metric::Cosine, Metric::L2sq, Metric::Dot] {
        let dir = folder(&format!("same-{}", metric.name()));
        let rows_path = dir.join("rows.vdr");
        let mut rng = StdRng::seed_from_u64(7);
        let base = rows(&mut rng, 1_500);
        let queries = rows(&mut rng, 30);
        let mut memory = index(metric, &FullVectors::Memory);
        let mut disk = index(metric, &FullVectors::Disk(rows_path.clone()));
        assert_eq!(disk.full_vectors(), FullVectors::Disk(rows_path.clone()));
        assert_eq!(disk.compression_stats().full_vectors, "disk");
        for (a, b) in [(&mut memory, 0), (&mut disk, 0)] {
            add(a, b, &base[..1_000 * DIM]);
            add(a, 1_000, &base[1_000 * DIM..]);
            // Upserts take new slots (and new rows), removals leave tombstones, compaction
            // frees slots that the next batch reuses.
            add(a, 0, &base[500 * DIM..700 * DIM]);
            a.remove(&(700..900).collect::<Vec<_>>()).unwrap();
            a.compact(&StopFlag::new()).unwrap();
            add(a, 2_000, &base[..300 * DIM]);
        }
        assert_same(&search(&memory, &queries), &search(&disk, &queries));
        assert_eq!(memory.get(5), disk.get(5));
        assert_eq!(memory.get(2_010), disk.get(2_010));
        assert!(disk.memory_parts().vectors < memory.memory_parts().vectors / 10);

        // Saved, loaded and viewed: the same answers; a loaded index keeps adding.
        let file = dir.join("index.vdx");
        disk.save(&file).unwrap();
        let mut loaded = HnswIndex::load(&file).unwrap();
        let view = HnswIndex::view(&file).unwrap();
        assert_same(&search(&disk, &queries), &search(&loaded, &queries));
        assert_same(&search(&disk, &queries), &search(&view, &queries));
        assert_eq!(view.get(2_010), disk.get(2_010));
        let more = rows(&mut rng, 200);
        add(&mut loaded, 5_000, &more);
        add(&mut memory, 5_000, &more);
        assert_same(&search(&memory, &queries), &search(&loaded, &queries));
        // The view still answers from the rows its file refers to.
        assert_same(&search(&disk, &queries), &search(&view, &queries));
        // An image carries the reference to the row file.
        let image = loaded.to_bytes().unwrap();
        let copy = HnswIndex::from_bytes(&image).unwrap();
        assert_same(&search(&memory, &queries), &search(&copy, &queries));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn rows_appended_after_a_save_never_reach_the_saved_file() {
    let dir = folder("crash");
    let rows_path = dir.join("rows.vdr");
    let file = dir.join("index.vdx");
    let mut rng = StdRng::seed_from_u64(11);
    let queries = rows(&mut rng, 20);
    let mut index = index(Metric::L2sq, &FullVectors::Disk(rows_path.clone()));
    add(&mut index, 0, &rows(&mut rng, 800));
    index.save(&file).unwrap();
    let saved = search(&index, &queries);
    // What a process killed before its next save leaves: rows past the saved length, the last
    // of them cut short mid-row.
    add(&mut index, 0, &rows(&mut rng, 800));
    drop(index);
    let len = std::fs::metadata(&rows_path).unwrap().len();
    let file_handle = std::fs::OpenOptions::new()
        .write(true)
        .open(&rows_path)
        .unwrap();
    file_handle.set_len(len - 100).unwrap();
    drop(file_handle);

    let mut reopened = HnswIndex::load(&file).unwrap();
    assert_same(&saved, &search(&reopened, &queries));
    // Adding again starts at the next whole row: the saved rows and the new ones both hold.
    let more = rows(&mut rng, 300);
    add(&mut reopened, 10_000, &more);
    reopened.save(&file).unwrap();
    let again = HnswIndex::load(&file).unwrap();
    assert_same(&search(&reopened, &queries), &search(&again, &queries));
    assert_eq!(again.get(10_299).unwrap(), more[299 * DIM..].to_vec());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn corrupt_code(result: vecdex::Result<HnswIndex>) -> &'static str {
    match result {
        Ok(_) => "opened",
        Err(e) => e.code(),
    }
}

fn saved_with_rows(dir: &Path) -> (PathBuf, PathBuf) {
    let rows_path = dir.join("rows.vdr");
    let file = dir.join("index.vdx");
    let mut rng = StdRng::seed_from_u64(3);
    let mut index = index(Metric::Cosine, &FullVectors::Disk(rows_path.clone()));
    add(&mut index, 0, &rows(&mut rng, 700));
    index.save(&file).unwrap();
    (file, rows_path)
}

#[test]
fn a_damaged_truncated_foreign_or_missing_row_file_is_refused() {
    let dir = folder("damage");
    let (file, rows_path) = saved_with_rows(&dir);
    let good = std::fs::read(&rows_path).unwrap();
    let open_both = || {
        [
            corrupt_code(HnswIndex::load(&file)),
            corrupt_code(HnswIndex::view(&file)),
        ]
    };
    assert_eq!(open_both(), ["opened", "opened"]);

    // One bit of one row.
    let mut damaged = good.clone();
    damaged[4096 + 64 * 300 + 7] ^= 0x10;
    std::fs::write(&rows_path, &damaged).unwrap();
    assert_eq!(open_both(), ["ERR_CORRUPT_FILE", "ERR_CORRUPT_FILE"]);
    let message = HnswIndex::load(&file).unwrap_err().to_string();
    assert!(message.contains("fails its checksum"), "{message}");

    // Shorter than the saved length.
    std::fs::write(&rows_path, &good[..good.len() - 64]).unwrap();
    assert_eq!(open_both(), ["ERR_CORRUPT_FILE", "ERR_CORRUPT_FILE"]);

    // Another index's row file at the same path (its id differs).
    std::fs::remove_file(&rows_path).unwrap();
    let other = index(Metric::Cosine, &FullVectors::Disk(rows_path.clone()));
    drop(other);
    std::fs::write(&rows_path, {
        let mut bytes = std::fs::read(&rows_path).unwrap();
        bytes.extend_from_slice(&good[4096..]);
        bytes
    })
    .unwrap();
    assert_eq!(open_both(), ["ERR_CORRUPT_FILE", "ERR_CORRUPT_FILE"]);

    // Not there.
    std::fs::remove_file(&rows_path).unwrap();
    assert_eq!(open_both(), ["ERR_IO", "ERR_IO"]);

    // Restored: opens again.
    std::fs::write(&rows_path, &good).unwrap();
    assert_eq!(open_both(), ["opened", "opened"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn disk_rows_need_compression_and_a_file_vecdex_can_append_to() {
    let dir = folder("settings");
    let config = HnswConfig::new(DIM, Metric::Cosine);
    let rows_path = dir.join("rows.vdr");
    let err = HnswIndex::with_storage(
        config,
        Compression::default(),
        &FullVectors::Disk(rows_path),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not rows, and longer than nothing at all").unwrap();
    let err = HnswIndex::with_storage(config, sq8(), &FullVectors::Disk(text.clone())).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "not rows, and longer than nothing at all"
    );
    // A row file of another row size is refused as well.
    let rows_path = dir.join("rows.vdr");
    drop(index(Metric::Cosine, &FullVectors::Disk(rows_path.clone())));
    let wider = HnswConfig::new(DIM + 40, Metric::Cosine);
    let err = HnswIndex::with_storage(wider, sq8(), &FullVectors::Disk(rows_path)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn flat(metric: Metric, full_vectors: &FullVectors) -> vecdex::FlatIndex {
    vecdex::FlatIndex::with_storage(vecdex::FlatConfig { dim: DIM, metric }, sq8(), full_vectors)
        .unwrap()
}

fn flat_add(index: &mut vecdex::FlatIndex, first: u64, vectors: &[f32]) {
    let keys: Vec<u64> = (first..first + (vectors.len() / DIM) as u64).collect();
    index.add(&keys, vectors, &StopFlag::new()).unwrap();
}

#[test]
fn a_flat_index_with_rows_on_disk_answers_as_with_rows_in_memory() {
    for metric in [Metric::Cosine, Metric::L2sq] {
        let dir = folder(&format!("flat-{}", metric.name()));
        let rows_path = dir.join("rows.vdr");
        let mut rng = StdRng::seed_from_u64(21);
        let base = rows(&mut rng, 1_200);
        let queries = rows(&mut rng, 25);
        let mut memory = flat(metric, &FullVectors::Memory);
        let mut disk = flat(metric, &FullVectors::Disk(rows_path.clone()));
        assert_eq!(disk.compression_stats().full_vectors, "disk");
        for index in [&mut memory, &mut disk] {
            flat_add(index, 0, &base[..800 * DIM]);
            // Upserts (new rows for old slots), swap-removals (the last slot's row moves).
            flat_add(index, 400, &base[800 * DIM..]);
            index.remove(&(0..150).step_by(3).collect::<Vec<_>>());
            flat_add(index, 5_000, &base[..50 * DIM]);
        }
        let search =
            |index: &vecdex::FlatIndex| index.search(&queries, 10, None, &StopFlag::new()).unwrap();
        assert_same(&search(&memory), &search(&disk));
        assert_eq!(memory.get(450), disk.get(450));
        assert_eq!(memory.get(5_049), disk.get(5_049));
        assert!(disk.memory_parts().vectors * 10 < memory.memory_parts().vectors);

        let file = dir.join("flat.vdx");
        disk.save(&file).unwrap();
        let mut loaded = vecdex::FlatIndex::load(&file).unwrap();
        assert_same(&search(&memory), &search(&loaded));
        let image = vecdex::FlatIndex::from_bytes(&disk.to_bytes().unwrap()).unwrap();
        assert_same(&search(&memory), &search(&image));
        flat_add(&mut loaded, 9_000, &queries[..DIM]);
        flat_add(&mut memory, 9_000, &queries[..DIM]);
        assert_same(&search(&memory), &search(&loaded));

        // One flipped bit in the rows the file refers to.
        let mut bytes = std::fs::read(&rows_path).unwrap();
        bytes[4096 + 64 * 50 + 5] ^= 0x04;
        std::fs::write(&rows_path, &bytes).unwrap();
        assert_eq!(
            vecdex::FlatIndex::load(&file)
                .map(|_| ())
                .unwrap_err()
                .code(),
            "ERR_CORRUPT_FILE"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
