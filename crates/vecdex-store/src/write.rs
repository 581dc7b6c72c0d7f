//! Building a file image, and saving it so that a crash never leaves a damaged file behind.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::crc::crc32c;
use crate::error::StoreError;
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
pub fn save_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic(path, |file| file.write_all(bytes))
}

/// The atomic save: `fill` writes the contents into a new temporary file beside `path`.
fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::invalid(format!("{} is not a file path", path.display())))?;
    let name = name.to_string_lossy();
    remove_stale_temporaries(&dir, &name);
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        fill(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        // The rename is durable only once the folder's entry is on disk.
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        Ok::<(), std::io::Error>(())
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temp);
        return Err(StoreError::Io(format!(
            "cannot save {}: {error}",
            path.display()
        )));
    }
    Ok(())
}

/// Removes temporary files that saves of `name` left in `dir` when their process was killed
/// (`.{name}.{pid}.{n}.tmp` whose process no longer exists), so crashes do not pile up files.
/// Files of live processes (a save in progress) are kept. Best effort: errors are ignored.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    #[cfg(unix)]
    {
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
            let Some(pid) = rest
                .split_once('.')
                .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<libc::pid_t>().ok()))
            else {
                continue;
            };
            // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
            let gone = pid > 0
                && unsafe { libc::kill(pid, 0) } == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, name);
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
