//! Building a file image, and saving it so that a crash never leaves a damaged file behind.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::crc::crc32c;
use crate::error::StoreError;
use crate::file::save_target;
use crate::format::{
    aligned, IndexKind, ALIGN, FIXED_HEADER, FORMAT_VERSION, MAGIC, MAX_CONFIG, MAX_SECTIONS,
    SECTION_ENTRY,
};

/// The header fields of a file (see `format.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    pub kind: IndexKind,
    /// Metric code: 0 cosine, 1 dot, 2 l2sq, 3 hamming.
    pub metric: u8,
    pub dimensions: u32,
    pub count: u64,
    /// Kind-specific configuration bytes.
    pub config: Vec<u8>,
}

/// Lays out a file: the header, then each `(id, payload)` section in order.
pub fn encode(header: &FileHeader, sections: &[(u32, &[u8])]) -> Result<Vec<u8>, StoreError> {
    let layout = Layout::new(header, sections)?;
    let mut out = Vec::new();
    out.try_reserve_exact(layout.total)
        .map_err(|_| StoreError::invalid("the index is too large for one file"))?;
    layout
        .write(&mut out, header, sections)
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok(out)
}

/// Where each part of a file goes.
struct Layout {
    /// Offset of the section table.
    table: usize,
    header_len: usize,
    offsets: Vec<usize>,
    total: usize,
}

impl Layout {
    fn new(header: &FileHeader, sections: &[(u32, &[u8])]) -> Result<Self, StoreError> {
        if header.config.len() > MAX_CONFIG || sections.len() > MAX_SECTIONS {
            return Err(StoreError::invalid(
                "too many sections or too much configuration for one file",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((id, _)) = sections.iter().find(|(id, _)| !seen.insert(*id)) {
            return Err(StoreError::invalid(format!("section {id} given twice")));
        }
        let overflow = || StoreError::invalid("the index is too large for one file");
        let table = aligned(FIXED_HEADER + header.config.len()).ok_or_else(overflow)?;
        let header_len = table + SECTION_ENTRY * sections.len() + 4;
        let mut offsets = Vec::with_capacity(sections.len());
        let mut end = aligned(header_len).ok_or_else(overflow)?;
        for (_, payload) in sections {
            offsets.push(end);
            end = end.checked_add(payload.len()).ok_or_else(overflow)?;
            end = aligned(end).ok_or_else(overflow)?;
        }
        let total = offsets
            .last()
            .zip(sections.last())
            .map_or(header_len, |(o, (_, p))| o + p.len());
        Ok(Layout {
            table,
            header_len,
            offsets,
            total,
        })
    }

    /// Writes the whole file to `out`, streaming the payloads (they are read twice: once for
    /// their checksums, once to write them).
    fn write<W: Write>(
        &self,
        out: &mut W,
        header: &FileHeader,
        sections: &[(u32, &[u8])],
    ) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(self.header_len);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&(self.header_len as u32).to_le_bytes());
        head.push(header.kind as u8);
        head.push(header.metric);
        head.extend_from_slice(&[0, 0]);
        head.extend_from_slice(&header.dimensions.to_le_bytes());
        head.extend_from_slice(&header.count.to_le_bytes());
        head.extend_from_slice(&(header.config.len() as u32).to_le_bytes());
        head.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        head.extend_from_slice(&header.config);
        head.resize(self.table, 0);
        for ((id, payload), offset) in sections.iter().zip(&self.offsets) {
            head.extend_from_slice(&id.to_le_bytes());
            head.extend_from_slice(&0u32.to_le_bytes());
            head.extend_from_slice(&(*offset as u64).to_le_bytes());
            head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            head.extend_from_slice(&crc32c(payload).to_le_bytes());
            head.extend_from_slice(&0u32.to_le_bytes());
        }
        let header_crc = crc32c(&head);
        head.extend_from_slice(&header_crc.to_le_bytes());
        out.write_all(&head)?;
        let mut written = head.len();
        const ZEROS: [u8; ALIGN] = [0; ALIGN];
        for ((_, payload), offset) in sections.iter().zip(&self.offsets) {
            out.write_all(&ZEROS[..offset - written])?;
            out.write_all(payload)?;
            written = offset + payload.len();
        }
        Ok(())
    }
}

/// Saves a file made of `header` and `sections` to `path` atomically (see [`save_atomic`]),
/// streaming the sections to disk without building the image in memory.
pub fn save_file(
    path: &Path,
    header: &FileHeader,
    sections: &[(u32, &[u8])],
) -> Result<(), StoreError> {
    let layout = Layout::new(header, sections)?;
    write_atomic(path, |file| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        layout.write(&mut out, header, sections)?;
        out.flush()
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder is written and
/// fsynced, renamed over `path`, and the folder is fsynced, so after a crash at any moment
/// `path` holds either its old contents or `bytes`, never a mix. A failed save removes its
/// temporary file and leaves `path` as it was.
///
/// `path` must name a regular file or nothing yet: a FIFO, a device, a directory or a socket
/// is refused (`StoreError::Io`) and left as it is. A symbolic link is written through: its
/// final target is replaced atomically (or created), and the link stays (see `file.rs`).
pub fn save_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic(path, |file| file.write_all(bytes))
}

/// The atomic save: `fill` writes the contents into a new temporary file beside the target.
fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let target = save_target(path)?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| StoreError::invalid(format!("{} is not a file path", path.display())))?;
    let name = name.to_string_lossy();
    remove_abandoned_temporaries(&dir, &name);
    let failed =
        |error: std::io::Error| StoreError::Io(format!("cannot save {}: {error}", path.display()));
    let (temp, mut file) = create_locked_temporary(&dir, &name).map_err(failed)?;
    let result = (|| {
        fill(&mut file)?;
        file.sync_all()?;
        // The lock goes with the descriptor, after the rename: until then the temporary file
        // is visibly in use. (Windows renames only closed files.)
        #[cfg(not(unix))]
        drop(file);
        fs::rename(&temp, &target)?;
        #[cfg(unix)]
        drop(file);
        // The rename is durable only once the folder's entry is on disk.
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        Ok::<(), std::io::Error>(())
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temp);
        return Err(failed(error));
    }
    Ok(())
}

/// Creates `.{name}.{pid}.{random}.tmp` in `dir` and takes an exclusive lock on it, which the
/// kernel releases when this process closes it or dies: that lock, not the pid, tells other
/// saves the file is in use (a pid means nothing in another pid namespace, such as another
/// container sharing the folder). A cleaner may have locked and removed the new file between
/// its creation and our lock; then the path no longer names our file, and we start over.
fn create_locked_temporary(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let temp = dir.join(format!(
            ".{name}.{}.{:016x}.tmp",
            std::process::id(),
            unique()
        ));
        let file = match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        file.lock()?;
        if same_file(&file, &temp) {
            return Ok((temp, file));
        }
        last = Some(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the temporary file was removed while it was being created",
        ));
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()))
}

/// Whether `path` still names the open `file` (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Removes the temporary files that saves of `name` left in `dir` when they were killed
/// (`.{name}.{pid}.{n}.tmp` that no process holds locked, see [`create_locked_temporary`]),
/// so crashes do not pile up files. Files locked by a save in progress, in this process or any
/// other (whatever its pid namespace), are kept. Best effort: errors are ignored, and only
/// regular files are opened (never a FIFO or a device that happens to have such a name).
fn remove_abandoned_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
        else {
            continue;
        };
        let ours = rest.split_once('.').is_some_and(|(pid, n)| {
            !pid.is_empty()
                && !n.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ours {
            continue;
        }
        let path = entry.path();
        let Ok(temp) = crate::file::open_regular(&path, "clean up") else {
            continue;
        };
        // Held by a save in progress: keep it. Free: its save is gone; remove it while we hold
        // the lock (a save never takes over an existing temporary file), if the name still
        // names the file we locked.
        if temp.try_lock().is_ok() && same_file(&temp, &path) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// A number no other save will pick: random per process, then counted, so names differ across
/// processes whose pids are equal (one per pid namespace).
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static BASE: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        // RandomState is seeded from the operating system's random source.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    });
    base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}
