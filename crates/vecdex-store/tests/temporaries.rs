//! Temporary files of saves in progress against the cleanup of abandoned ones (issue 16,
//! finding 5). A save's temporary file is in use while a process holds its lock, whatever pid
//! its name carries: a pid names a process only in its own pid namespace, so two containers
//! sharing a folder each see the other's pids as dead (or as someone else). Here "another
//! namespace" is a live child process holding the lock of a temporary file whose name carries
//! a pid that does not exist here, or one that does but is not the holder's.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the message we want

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use vecdex_store::{encode, save_atomic, FileHeader, IndexKind};

const HOLD: &str = "VECDEX_TEST_HOLD_LOCK";

fn image(seed: u8) -> Vec<u8> {
    let header = FileHeader {
        kind: IndexKind::Flat,
        metric: 2,
        dimensions: 4,
        count: 1,
        config: vec![seed],
    };
    encode(&header, &[(1, &[seed; 100])]).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vecdex-temps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The child's side: locks every file named in `VECDEX_TEST_HOLD_LOCK` (`:`-separated), says
/// so, and holds the locks until its stdin closes.
#[test]
fn lock_holder_child() {
    let Ok(paths) = std::env::var(HOLD) else {
        return;
    };
    let files: Vec<std::fs::File> = paths
        .split(':')
        .map(|p| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .unwrap();
            file.lock().unwrap();
            file
        })
        .collect();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(files);
}

/// Another process holding the locks of `paths` until it is dropped (stdin closed, then
/// waited for).
struct Holder(Child, BufReader<std::process::ChildStdout>);

impl Holder {
    fn lock(paths: &[&Path]) -> Holder {
        let joined: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "lock_holder_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(HOLD, joined.join(":"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("LOCKED") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the holder locked its files"
            );
        }
        Holder(child, stdout)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = std::io::Read::read_to_end(&mut self.1, &mut Vec::new());
        let _ = self.0.wait();
    }
}

/// A pid that names no process here (above the kernel's largest, 2^22).
const NO_SUCH_PID: u32 = 99_999_999;

#[test]
fn a_locked_temporary_file_survives_saves_whatever_pid_it_names() {
    let dir = scratch("held");
    let path = dir.join("index.vdx");
    // As another namespace's saves would name them: pids that are dead here, one that is
    // alive here but is not the holder (1), ours, and old-style and new-style counters.
    let names = [
        format!(".index.vdx.{NO_SUCH_PID}.0.tmp"),
        format!(".index.vdx.{NO_SUCH_PID}.00000000deadbeef.tmp"),
        format!(".index.vdx.{}.3.tmp", NO_SUCH_PID - 1),
        ".index.vdx.1.5.tmp".to_string(),
        format!(".index.vdx.{}.9.tmp", std::process::id()),
    ];
    let held: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    for file in &held {
        std::fs::write(file, b"a save in progress").unwrap();
    }
    let refs: Vec<&Path> = held.iter().map(PathBuf::as_path).collect();
    let holder = Holder::lock(&refs);
    for round in 0..3u8 {
        save_atomic(&path, &image(round)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), image(round));
        for file in &held {
            assert!(
                file.exists(),
                "round {round}: {} is locked by a live process: a save in progress",
                file.display()
            );
        }
    }
    drop(holder);
    // The holder is gone: its files are abandoned now, and the next save removes them.
    save_atomic(&path, &image(9)).unwrap();
    for file in &held {
        assert!(!file.exists(), "{} is abandoned now", file.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn abandoned_temporary_files_are_removed_whatever_pid_they_name() {
    let dir = scratch("abandoned");
    let path = dir.join("index.vdx");
    // Nobody holds these: whether their pid is dead, alive (1, or ours: a pid reused after a
    // crash, or another namespace's pid equal to a live one here), they are abandoned.
    let abandoned: Vec<PathBuf> = [
        format!(".index.vdx.{NO_SUCH_PID}.0.tmp"),
        ".index.vdx.1.0.tmp".to_string(),
        format!(".index.vdx.{}.7.tmp", std::process::id()),
        format!(".index.vdx.{}.00ff00ff00ff00ff.tmp", std::process::id()),
    ]
    .iter()
    .map(|n| dir.join(n))
    .collect();
    // Never touched: other targets' files, names that are not a save's, and a FIFO named like
    // a temporary file (opening it must not block the save).
    let kept: Vec<PathBuf> = [
        format!(".other.vdx.{NO_SUCH_PID}.0.tmp"),
        format!(".index.vdx.{NO_SUCH_PID}.tmp"),
        ".index.vdx.x.0.tmp".to_string(),
        "index.vdx.1.0.tmp".to_string(),
    ]
    .iter()
    .map(|n| dir.join(n))
    .collect();
    for file in abandoned.iter().chain(&kept) {
        std::fs::write(file, b"partial").unwrap();
    }
    let fifo = dir.join(format!(".index.vdx.{NO_SUCH_PID}.1.tmp"));
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (tx, rx) = std::sync::mpsc::channel();
    let (p, bytes) = (path.clone(), image(1));
    std::thread::spawn(move || {
        let _ = tx.send(save_atomic(&p, &bytes));
    });
    let saved = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert!(matches!(saved, Ok(Ok(()))), "the save finished: {saved:?}");
    for file in &abandoned {
        assert!(!file.exists(), "{} is abandoned", file.display());
    }
    for file in &kept {
        assert!(file.exists(), "{} is not ours to remove", file.display());
    }
    assert!(fifo.exists(), "a FIFO is never opened nor removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Many saves of one file at once, from threads of this process and from other processes:
/// none removes another's temporary file, all succeed, and the file is one of them whole.
#[test]
fn concurrent_saves_of_one_file_all_succeed() {
    for (threads, rounds) in [(2usize, 20usize), (8, 10), (24, 4)] {
        let dir = scratch(&format!("concurrent-{threads}"));
        let path = dir.join("index.vdx");
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..rounds)
                        .map(|r| save_atomic(&path, &image((t * rounds + r) as u8)))
                        .filter(Result::is_err)
                        .count()
                })
            })
            .collect();
        let failed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(failed, 0, "{threads} threads: every save succeeds");
        let bytes = std::fs::read(&path).unwrap();
        assert!((0..=255u8).any(|s| bytes == image(s)), "a whole image");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
