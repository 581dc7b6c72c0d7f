//! Index files against what else a path can name, and against other programs (issue 16,
//! findings 3, 4 and 10):
//!
//! - every loader refuses a FIFO, a character device, a directory, a socket, or a symbolic link
//!   to one, with `Error::Io` and without blocking (a FIFO used to block its open forever);
//! - every index kind's save refuses the same targets and leaves them as they were (a save used
//!   to rename its file over them), and writes through a symbolic link, keeping it;
//! - a view whose file is changed in place by another program fails its later calls with
//!   `Error::Io` (it used to die of SIGBUS, or answer from garbage); replacing or deleting the
//!   file stays safe. These run in child processes (this test binary run again), so a
//!   regression kills a child, not the test run.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the message we want

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecdex::{
    Error, FdeConfig, FlatConfig, FlatIndex, HnswConfig, HnswIndex, Metric, MultiVectorConfig,
    MultiVectorIndex, StopFlag,
};

const DIM: usize = 12;

fn rows(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vecdex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn flat(n: usize, seed: u64) -> FlatIndex {
    let mut index = FlatIndex::new(FlatConfig {
        dim: DIM,
        metric: Metric::L2sq,
    })
    .unwrap();
    let keys: Vec<u64> = (0..n as u64).collect();
    index
        .add(&keys, &rows(seed, n), &StopFlag::never())
        .unwrap();
    index
}

fn hnsw(n: usize, seed: u64) -> HnswIndex {
    let mut config = HnswConfig::new(DIM, Metric::L2sq);
    config.m = 6;
    config.ef_construction = 32;
    let mut index = HnswIndex::new(config).unwrap();
    let keys: Vec<u64> = (0..n as u64).collect();
    index
        .add(&keys, &rows(seed, n), &StopFlag::never())
        .unwrap();
    index
}

fn multi(n: usize, seed: u64) -> MultiVectorIndex {
    let fde = FdeConfig {
        num_repetitions: 2,
        num_simhash_projections: 2,
        projection_dimension: 4,
        ..FdeConfig::new(DIM)
    };
    let mut index = MultiVectorIndex::new(MultiVectorConfig::new(fde, Metric::Dot)).unwrap();
    let keys: Vec<u64> = (0..n as u64).collect();
    let offsets: Vec<u32> = (0..=n as u32).map(|i| i * 3).collect();
    index
        .add(&keys, &rows(seed, 3 * n), &offsets, &StopFlag::never())
        .unwrap();
    index
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A character device node: a new one where we may make one (root), else /dev/null itself.
fn char_device(dir: &Path) -> PathBuf {
    let path = dir.join("device");
    let made = std::process::Command::new("mknod")
        .arg(&path)
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        path
    } else {
        PathBuf::from("/dev/null")
    }
}

/// Every kind of path that is not a regular file, by name.
fn non_regular_paths(
    dir: &Path,
) -> (
    Vec<(&'static str, PathBuf)>,
    std::os::unix::net::UnixListener,
) {
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let socket = dir.join("socket");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let folder = dir.join("folder");
    std::fs::create_dir(&folder).unwrap();
    let device = char_device(dir);
    let link = |name: &str, to: &Path| {
        let path = dir.join(name);
        std::os::unix::fs::symlink(to, &path).unwrap();
        path
    };
    let paths = vec![
        ("fifo", fifo.clone()),
        ("character device", device.clone()),
        ("directory", folder.clone()),
        ("socket", socket.clone()),
        ("symlink to fifo", link("to-fifo", Path::new("fifo"))),
        (
            "symlink to symlink to fifo",
            link("to-to-fifo", Path::new("to-fifo")),
        ),
        ("symlink to character device", link("to-device", &device)),
        ("symlink to directory", link("to-folder", &folder)),
    ];
    (paths, listener)
}

/// Unblocks a reader stuck opening `path` (the bug): opening the write end releases it.
fn release_fifo_readers(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    for _ in 0..64 {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc_nonblock())
            .open(path);
        if opened.is_err() {
            break;
        }
    }
}

fn libc_nonblock() -> i32 {
    0o4000 // O_NONBLOCK on Linux (every architecture vecdex ships for but alpha/sparc/mips).
}

type Loader = (&'static str, fn(&Path) -> vecdex::Result<()>);

fn loaders() -> Vec<Loader> {
    vec![
        ("FlatIndex::load", |p| FlatIndex::load(p).map(drop)),
        ("HnswIndex::load", |p| HnswIndex::load(p).map(drop)),
        ("HnswIndex::view", |p| HnswIndex::view(p).map(drop)),
        ("MultiVectorIndex::load", |p| {
            MultiVectorIndex::load(p).map(drop)
        }),
        ("inspect_file", |p| vecdex::inspect_file(p).map(drop)),
    ]
}

/// Runs every loader on every non-regular path at once (`copies` times each), each on its own
/// thread, and waits at most a few seconds in all: a loader that blocks is a failure, not a
/// hung test.
fn every_loader_refuses(copies: usize) {
    let dir = scratch(&format!("non-regular-{copies}"));
    let (paths, _listener) = non_regular_paths(&dir);
    let (tx, rx) = mpsc::channel();
    let mut expected = 0;
    for (what, path) in &paths {
        for (loader, load) in loaders() {
            for _ in 0..copies {
                let (tx, path, what) = (tx.clone(), path.clone(), *what);
                std::thread::spawn(move || {
                    let _ = tx.send((what, loader, load(&path)));
                });
                expected += 1;
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut failures = Vec::new();
    for _ in 0..expected {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, _, Err(Error::Io(_)))) => {}
            Ok((what, loader, other)) => failures.push(format!("{loader} on a {what}: {other:?}")),
            Err(_) => {
                failures.push("some loaders were still blocked after 10 s".to_string());
                break;
            }
        }
    }
    for (what, path) in &paths {
        if what.contains("fifo") {
            release_fifo_readers(path);
        }
    }
    // The paths are as they were.
    assert!(std::fs::metadata(&paths[0].1)
        .unwrap()
        .file_type()
        .is_fifo());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_loader_refuses_non_regular_files_without_blocking() {
    every_loader_refuses(1);
}

#[test]
fn many_concurrent_loads_of_fifos_all_fail_fast() {
    // More than the 8 task threads and any pool size: nothing may queue behind a blocked open.
    every_loader_refuses(4);
}

#[test]
fn a_load_through_a_symbolic_link_to_a_file_still_works() {
    let dir = scratch("load-link");
    hnsw(50, 1).save(&dir.join("real.vdx")).unwrap();
    std::os::unix::fs::symlink("real.vdx", dir.join("link.vdx")).unwrap();
    let link = dir.join("link.vdx");
    assert_eq!(HnswIndex::load(&link).unwrap().len(), 50);
    assert_eq!(HnswIndex::view(&link).unwrap().len(), 50);
    assert_eq!(vecdex::inspect_file(&link).unwrap().count, 50);
    std::fs::remove_dir_all(&dir).unwrap();
}

type Saver = (&'static str, Box<dyn Fn(&Path) -> vecdex::Result<()>>);

fn savers() -> Vec<Saver> {
    let (f, h, m) = (flat(40, 2), hnsw(40, 3), multi(20, 4));
    vec![
        ("FlatIndex::save", Box::new(move |p: &Path| f.save(p))),
        ("HnswIndex::save", Box::new(move |p: &Path| h.save(p))),
        (
            "MultiVectorIndex::save",
            Box::new(move |p: &Path| m.save(p)),
        ),
    ]
}

/// What a path is, to compare before and after a save (type, inode, link target).
fn identity(path: &Path) -> (String, u64, Option<PathBuf>) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (
        format!("{:?}", m.file_type()),
        m.ino(),
        std::fs::read_link(path).ok(),
    )
}

#[test]
fn every_save_refuses_non_regular_targets_and_leaves_them_alone() {
    let dir = scratch("save-targets");
    let (paths, _listener) = non_regular_paths(&dir);
    let mut failures = Vec::new();
    for (saver, save) in savers() {
        for (what, path) in &paths {
            let before = identity(path);
            // A link's target too: a save through a link must not replace what it points to.
            let target_before = std::fs::metadata(path)
                .map(|m| (m.ino(), m.file_type()))
                .ok();
            match save(path) {
                Err(Error::Io(_)) => {}
                other => failures.push(format!("{saver} over a {what}: {other:?}")),
            }
            if identity(path) != before
                || std::fs::metadata(path)
                    .map(|m| (m.ino(), m.file_type()))
                    .ok()
                    != target_before
            {
                failures.push(format!("{saver} changed the {what}"));
            }
        }
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn every_save_writes_through_symbolic_links_and_keeps_them() {
    let dir = scratch("save-links");
    std::fs::create_dir(dir.join("data")).unwrap();
    let cases: Vec<(&str, PathBuf, PathBuf)> = vec![
        // (what, link, where the file must land)
        (
            "relative link to a file",
            dir.join("a.vdx"),
            dir.join("data/a-real.vdx"),
        ),
        (
            "absolute link to a file",
            dir.join("b.vdx"),
            dir.join("data/b-real.vdx"),
        ),
        (
            "chain of links",
            dir.join("c.vdx"),
            dir.join("data/c-real.vdx"),
        ),
        (
            "dangling link",
            dir.join("d.vdx"),
            dir.join("data/d-new.vdx"),
        ),
    ];
    std::fs::write(dir.join("data/a-real.vdx"), b"old").unwrap();
    std::os::unix::fs::symlink("data/a-real.vdx", dir.join("a.vdx")).unwrap();
    std::fs::write(dir.join("data/b-real.vdx"), b"old").unwrap();
    std::os::unix::fs::symlink(dir.join("data/b-real.vdx"), dir.join("b.vdx")).unwrap();
    std::fs::write(dir.join("data/c-real.vdx"), b"old").unwrap();
    std::os::unix::fs::symlink("c-real.vdx", dir.join("data/c-mid.vdx")).unwrap();
    std::os::unix::fs::symlink("data/c-mid.vdx", dir.join("c.vdx")).unwrap();
    std::os::unix::fs::symlink("data/d-new.vdx", dir.join("d.vdx")).unwrap();
    for (saver, save) in savers() {
        for (what, link, real) in &cases {
            let link_before = std::fs::read_link(link).unwrap();
            save(link).unwrap_or_else(|e| panic!("{saver} through a {what}: {e}"));
            assert_eq!(
                std::fs::read_link(link).ok(),
                Some(link_before),
                "{saver}: the {what} stays a link to the same place"
            );
            let saved = std::fs::read(real).unwrap();
            assert_eq!(std::fs::read(link).unwrap(), saved, "{saver}: {what}");
            assert!(
                saved.starts_with(b"VECDEXIX"),
                "{saver}: {what} holds the index"
            );
        }
    }
    assert!(std::fs::symlink_metadata(dir.join("data/c-mid.vdx"))
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- views of files changed by other programs (child processes) ----

/// The ways another program can change a viewed file, and whether the view must refuse.
const VIEW_CASES: &[(&str, bool)] = &[
    ("truncate to zero", true),
    ("truncate to half", true),
    ("truncate to the header", true),
    ("truncate one byte", true),
    ("append bytes", true),
    ("overwrite the vectors in place", true),
    ("overwrite the links in place", true),
    ("replace by rename", false),
    ("delete", false),
];

const CHILD_CASE: &str = "VECDEX_TEST_VIEW_CASE";
const CHILD_DIR: &str = "VECDEX_TEST_VIEW_DIR";

/// Changes the file at `path` as the case says.
fn change_file(case: &str, path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    let open = || std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let overwrite = |section: &str| {
        let info = vecdex::inspect_file(path).unwrap();
        let s = info.sections.iter().find(|s| s.name == section).unwrap();
        let mut file = open();
        file.seek(SeekFrom::Start(s.offset)).unwrap();
        file.write_all(&vec![0xFF; s.bytes as usize]).unwrap();
    };
    match case {
        "truncate to zero" => open().set_len(0).unwrap(),
        "truncate to half" => open().set_len(len / 2).unwrap(),
        "truncate to the header" => open().set_len(128).unwrap(),
        "truncate one byte" => open().set_len(len - 1).unwrap(),
        "append bytes" => {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            file.write_all(&[0u8; 4096]).unwrap();
        }
        "overwrite the vectors in place" => overwrite("vectors"),
        "overwrite the links in place" => overwrite("layer 0"),
        "replace by rename" => hnsw(300, 99).save(path).unwrap(),
        "delete" => std::fs::remove_file(path).unwrap(),
        other => panic!("unknown case {other}"),
    }
}

/// The child's side: view, change, then search, get and save; prints one line per call.
#[test]
fn view_child() {
    let (Ok(case), Ok(dir)) = (std::env::var(CHILD_CASE), std::env::var(CHILD_DIR)) else {
        return; // Only as a child of `views_of_files_changed_in_place_refuse_to_answer`.
    };
    let dir = PathBuf::from(dir);
    let path = dir.join("viewed.vdx");
    let index = hnsw(3000, 5);
    index.save(&path).unwrap();
    // An old modification time, so the change below is seen even on a file system whose
    // clock ticks coarsely (the save and the change could fall in the same tick).
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(file);
    let view = HnswIndex::view(&path).unwrap();
    let queries = rows(77, 20);
    let expected = index
        .search(&queries, 5, None, None, &StopFlag::never())
        .unwrap();
    change_file(&case, &path);
    let report = |what: &str, result: vecdex::Result<bool>| match result {
        Ok(same) => println!("RESULT {what} ok same={same}"),
        Err(e) => println!("RESULT {what} {}", e.code()),
    };
    for round in 0..2 {
        let searched = view.search(&queries, 5, None, None, &StopFlag::never());
        report(
            &format!("search{round}"),
            searched.map(|r| r.keys == expected.keys && r.distances == expected.distances),
        );
        report(
            &format!("get{round}"),
            view.try_get(17).map(|v| v == index.get(17)),
        );
    }
    report("save", view.save(&dir.join("copy.vdx")).map(|()| true));
    report(
        "to_bytes",
        view.to_bytes().map(|b| b == index.to_bytes().unwrap()),
    );
}

#[test]
fn views_of_files_changed_in_place_refuse_to_answer() {
    let exe = std::env::current_exe().unwrap();
    let mut failures = Vec::new();
    for &(case, refused) in VIEW_CASES {
        let dir = scratch(&format!("view-{}", case.replace(' ', "-")));
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "view_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_CASE, case)
            .env(CHILD_DIR, &dir)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            use std::os::unix::process::ExitStatusExt;
            failures.push(format!(
                "{case}: the child died ({:?}, signal {:?}): {}",
                out.status,
                out.status.signal(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let lines: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.find("RESULT ").map(|at| &l[at + "RESULT ".len()..]))
            .collect();
        if lines.len() != 6 {
            failures.push(format!("{case}: expected 6 results, got {stdout}"));
            continue;
        }
        for line in lines {
            let ok = if refused {
                line.ends_with(" ERR_IO")
            } else {
                line.ends_with(" ok same=true")
            };
            if !ok {
                failures.push(format!("{case}: {line}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
