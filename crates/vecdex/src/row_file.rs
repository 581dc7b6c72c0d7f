//! Full vectors on disk (`fullVectors: { path }`): a file of f32 rows that an index owns,
//! appended to and never changed in place, memory-mapped read-only so a search reads only the
//! rows of the candidates it rescores (the page cache holds them, not the index's heap).
//!
//! Layout: a 4 KiB header (magic `VECDEXRW`, u32 version, u32 row bytes, a 16-byte id), then
//! rows of `row bytes` each (the index's zero-padded row, a multiple of 64 bytes, so every row
//! is 64-byte aligned in the mapping). Row `r` starts at `HEADER + r × row bytes`.
//!
//! **Crash safety.** Bytes below the file's length never change: every write appends at the
//! file's end, under an exclusive `flock` (two indexes appending to one file interleave whole
//! batches). An index file records the length it refers to and the CRC-32C of every
//! [`BLOCK`]-byte block below it; a save makes the appended rows durable (`fsync`) before the
//! index file that refers to them is renamed into place. A crash therefore leaves every saved
//! index file valid; rows appended after the last save are dead space past its length. Rows
//! of removed or replaced vectors stay in the file as dead space too: the file grows with
//! every vector ever added (rebuild the index into a new file to reclaim it).
//!
//! **Checks.** Opening a saved index reads the file once to compare every block's checksum
//! (a damaged, truncated or foreign file is [`Error::CorruptFile`]; a missing one
//! [`Error::Io`]). It reads with `pread`, not through the mapping, so the check leaves nothing
//! resident in the process. As with views (`mapped.rs`), truncating the file while an index
//! maps it is not supported (reads past the end would kill the process with SIGBUS).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::persist::corrupt;

const MAGIC: &[u8; 8] = b"VECDEXRW";
const VERSION: u32 = 1;
/// Bytes before the first row: one page, so rows stay page- and 64-byte aligned.
pub(crate) const HEADER: usize = 4096;
/// Bytes covered by one checksum.
pub(crate) const BLOCK: usize = 1 << 20;
/// Smallest mapping: appends remap only when the rows outgrow it, then to twice the size.
const MIN_MAPPING: usize = 64 << 20;

/// What an index file records of its row file: enough to find, identify and check it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowFileRef {
    pub path: PathBuf,
    pub id: [u8; 16],
    pub row_bytes: usize,
    /// File bytes (header included) the index's rows lie within.
    pub len: u64,
    /// CRC-32C of each [`BLOCK`] of rows below `len` (the last one partial).
    pub crcs: Vec<u32>,
}

/// An open row file, mapped read-only.
#[derive(Debug)]
pub(crate) struct RowFile {
    path: PathBuf,
    file: File,
    id: [u8; 16],
    row_bytes: usize,
    writable: bool,
    map: Option<memmap2::Mmap>,
    /// File bytes known to be written (rows below are readable through the mapping).
    known: usize,
    /// Checksums of the complete blocks below `known`, computed so far (blocks never change).
    block_crcs: Mutex<Vec<u32>>,
}

fn io_error(path: &Path, action: &str, error: std::io::Error) -> Error {
    Error::Io(format!(
        "cannot {action} the full-vector file {}: {error}",
        path.display()
    ))
}

impl RowFile {
    /// Opens `path` for a new index's rows: creates it, or appends to a row file of the same
    /// row size already there (its rows stay valid for the index files that refer to them).
    /// A file that is not a row file is refused, never overwritten.
    pub fn create(path: &Path, row_bytes: usize) -> Result<Self> {
        let path = absolute(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(&path, "open", e))?;
        let mut row_file = RowFile {
            path,
            file,
            id: [0; 16],
            row_bytes,
            writable: true,
            map: None,
            known: HEADER,
            block_crcs: Mutex::new(Vec::new()),
        };
        let (created, len) = row_file.with_lock(|file| {
            let len = file.metadata()?.len();
            if len > 0 {
                return Ok((None, len));
            }
            let id = new_id();
            file.write_all_at(&header(id, row_bytes), 0)?;
            Ok((Some(id), HEADER as u64))
        })?;
        row_file.id = match created {
            Some(id) => id,
            // Not a row file of this size: refused, never overwritten.
            None => row_file.read_header(len).map_err(|e| match e {
                Error::CorruptFile(m) => Error::invalid(format!(
                    "fullVectors.path names a file vecdex cannot append rows to: {m}"
                )),
                e => e,
            })?,
        };
        row_file.known = HEADER;
        Ok(row_file)
    }

    /// Opens the row file an index file refers to, checking every block below its length.
    pub fn open(saved: &RowFileRef, writable: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&saved.path)
            .map_err(|e| io_error(&saved.path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_error(&saved.path, "read", e))?
            .len();
        let mut row_file = RowFile {
            path: saved.path.clone(),
            file,
            id: saved.id,
            row_bytes: saved.row_bytes,
            writable,
            map: None,
            known: HEADER,
            block_crcs: Mutex::new(Vec::new()),
        };
        let id = row_file.read_header(len)?;
        if id != saved.id {
            return Err(corrupt(format!(
                "the full-vector file {} belongs to another index (its id differs from the one \
                 this index recorded)",
                saved.path.display()
            )));
        }
        if len < saved.len {
            return Err(corrupt(format!(
                "the full-vector file {} is {len} bytes, shorter than the {} this index refers to",
                saved.path.display(),
                saved.len
            )));
        }
        let known = usize::try_from(saved.len).map_err(|_| corrupt("full-vector file length"))?;
        let blocks = (known - HEADER).div_ceil(BLOCK);
        if saved.crcs.len() != blocks {
            return Err(corrupt(format!(
                "{} full-vector checksums for {blocks} blocks",
                saved.crcs.len()
            )));
        }
        let crcs = row_file.checksums(0, known)?;
        if let Some(block) = (0..blocks).find(|&b| crcs[b] != saved.crcs[b]) {
            return Err(corrupt(format!(
                "the full-vector file {} is damaged: block {block} (bytes {} – {}) fails its \
                 checksum",
                saved.path.display(),
                HEADER + block * BLOCK,
                (HEADER + (block + 1) * BLOCK).min(known)
            )));
        }
        let complete = (known - HEADER) / BLOCK;
        *row_file
            .block_crcs
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = crcs[..complete].to_vec();
        row_file.known = known;
        row_file.remap()?;
        Ok(row_file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// Checks the header of a file of `len` bytes; returns its id.
    fn read_header(&self, len: u64) -> Result<[u8; 16]> {
        let path = self.path.display();
        if len < HEADER as u64 {
            return Err(corrupt(format!(
                "{path} is not a vecdex full-vector file ({len} bytes, shorter than its header)"
            )));
        }
        let mut bytes = [0u8; 32];
        self.file
            .read_exact_at(&mut bytes, 0)
            .map_err(|e| io_error(&self.path, "read", e))?;
        if &bytes[..8] != MAGIC {
            return Err(corrupt(format!("{path} is not a vecdex full-vector file")));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
        if version != VERSION {
            return Err(Error::UnsupportedFormat(format!(
                "{path} is a full-vector file of version {version}; this build reads version \
                 {VERSION}"
            )));
        }
        let row_bytes = u32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default());
        if row_bytes as usize != self.row_bytes {
            return Err(corrupt(format!(
                "{path} holds rows of {row_bytes} bytes, this index's are {} bytes",
                self.row_bytes
            )));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[16..32]);
        Ok(id)
    }

    /// Runs `work` holding an exclusive `flock` on the file (other writers wait).
    fn with_lock<T>(&self, work: impl FnOnce(&File) -> std::io::Result<T>) -> Result<T> {
        let fd = self.file.as_raw_fd();
        // SAFETY: `fd` is this open file's descriptor; flock has no memory effects.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(io_error(
                &self.path,
                "lock",
                std::io::Error::last_os_error(),
            ));
        }
        let result = work(&self.file);
        // SAFETY: as above; closing the descriptor would release the lock as well.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        result.map_err(|e| io_error(&self.path, "write", e))
    }

    /// Appends whole rows (`bytes` is a multiple of the row size) at the file's end; returns
    /// the number of the first one.
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        debug_assert_eq!(bytes.len() % self.row_bytes, 0);
        let row_bytes = self.row_bytes as u64;
        let first = self.with_lock(|file| {
            let len = file.metadata()?.len().max(HEADER as u64);
            // A writer killed mid-append leaves part of a row: start at the next whole row.
            let first = (len - HEADER as u64).div_ceil(row_bytes);
            file.write_all_at(bytes, HEADER as u64 + first * row_bytes)?;
            Ok(first)
        })?;
        let end = HEADER as u64 + first * row_bytes + bytes.len() as u64;
        self.known = usize::try_from(end).map_err(|_| Error::invalid("full-vector file size"))?;
        if self.map.as_ref().is_none_or(|m| m.len() < self.known) {
            self.remap()?;
        }
        Ok(first)
    }

    /// Maps the file with room to grow: pages past its end are never read (only rows below
    /// `known` are handed out).
    fn remap(&mut self) -> Result<()> {
        let len = self.known.next_power_of_two().max(MIN_MAPPING);
        // SAFETY: the mapping is read-only and this module never writes below the file's
        // length; see the module docs for what other programs must not do.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.file) }
            .map_err(|e| io_error(&self.path, "map", e))?;
        // Rows are read one by one at random: the kernel's readahead (128 KiB around each fault)
        // would read 30 unwanted rows per wanted one, and under a memory limit those evict the
        // rows and code pages in use (measured: 4.5 QPS with readahead, 5,000 without, 100k ×
        // 384 in a 120 MiB cgroup). A hint: a failure changes nothing else.
        let _ = map.advise(memmap2::Advice::Random);
        self.map = Some(map);
        Ok(())
    }

    /// The rows written so far, as f32 values (row `r` at `r × row_bytes / 4`).
    pub fn floats(&self) -> &[f32] {
        let Some(map) = &self.map else {
            return &[];
        };
        let bytes = &map[HEADER..self.known];
        // SAFETY: the mapping is page aligned and HEADER is a page, so the pointer is aligned
        // for f32; every bit pattern is a valid f32; these bytes lie within the file (below
        // `known`) and stay mapped while `self` does.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
    }

    /// Makes the rows appended so far durable and returns what an index file records of them.
    /// Call before the index file that refers to them is written.
    pub fn commit(&self) -> Result<RowFileRef> {
        if self.writable {
            self.file
                .sync_data()
                .map_err(|e| io_error(&self.path, "sync", e))?;
        }
        let mut cached = self.block_crcs.lock().unwrap_or_else(|e| e.into_inner());
        let complete = (self.known - HEADER) / BLOCK;
        let mut crcs = cached.clone();
        crcs.extend(self.checksums(crcs.len(), self.known)?);
        cached.clone_from(&crcs);
        cached.truncate(complete);
        Ok(RowFileRef {
            path: self.path.clone(),
            id: self.id,
            row_bytes: self.row_bytes,
            len: self.known as u64,
            crcs,
        })
    }

    /// CRC-32C of blocks `first ..` up to byte `end`, read with `pread` (nothing stays mapped).
    fn checksums(&self, first: usize, end: usize) -> Result<Vec<u32>> {
        let mut buffer = vec![0u8; BLOCK];
        let mut crcs = Vec::new();
        let mut start = HEADER + first * BLOCK;
        while start < end {
            let len = BLOCK.min(end - start);
            self.file
                .read_exact_at(&mut buffer[..len], start as u64)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => corrupt(format!(
                        "the full-vector file {} ends before byte {end}",
                        self.path.display()
                    )),
                    _ => io_error(&self.path, "read", e),
                })?;
            crcs.push(vecdex_store::crc32c(&buffer[..len]));
            start += len;
        }
        Ok(crcs)
    }

    /// Drops the mapping's pages from this process (the page cache keeps them): a search then
    /// faults in only the rows it reads.
    pub fn release_resident(&self) {
        if let Some(map) = &self.map {
            let len = self.known.div_ceil(4096) * 4096;
            // SAFETY: the range lies within the mapping; MADV_DONTNEED on a shared read-only
            // file mapping only drops this process's page-table entries.
            unsafe {
                libc::madvise(map.as_ptr() as *mut libc::c_void, len, libc::MADV_DONTNEED);
            }
        }
    }
}

/// The row file of a new index with full vectors on disk: rows padded to a multiple of 16
/// values, as the indexes' kernels read them. Refused without compression: an uncompressed
/// index searches its full vectors, so they stay in memory.
pub(crate) fn create_for(
    path: &Path,
    compression: &crate::compression::Compression,
    dim: usize,
) -> Result<RowFile> {
    if !compression.is_enabled() {
        return Err(Error::invalid(
            "fullVectors on disk needs a quantization or a reduction: an uncompressed index \
             searches its full vectors, so they stay in memory",
        ));
    }
    RowFile::create(path, vecdex_distance::padded_len(dim) * 4)
}

/// Appends the row-major `vectors` (`dim` values each; normalised first for cosine, padded
/// with zeros to the file's row size); returns the number of the first row.
pub(crate) fn append_rows(
    file: &mut RowFile,
    vectors: &[f32],
    dim: usize,
    cosine: bool,
) -> Result<u32> {
    let stride = file.row_bytes() / 4;
    let count = vectors.len() / dim;
    let mut batch = crate::validate::try_filled(count * stride, 0f32, "row batch")?;
    for (row, vector) in batch
        .chunks_exact_mut(stride)
        .zip(vectors.chunks_exact(dim))
    {
        row[..dim].copy_from_slice(vector);
        if cosine {
            crate::validate::normalize(&mut row[..dim]);
        }
    }
    // SAFETY: f32 has no padding and any byte is a valid u8; the length covers the values.
    let bytes = unsafe { std::slice::from_raw_parts(batch.as_ptr().cast::<u8>(), batch.len() * 4) };
    let first = file.append(bytes)?;
    u32::try_from(first + count as u64)
        .ok()
        .filter(|&end| end < u32::MAX)
        .ok_or_else(|| {
            Error::invalid(
                "a full-vector file holds at most 4,294,967,294 rows: rebuild the index into a \
                 new file",
            )
        })?;
    Ok(first as u32)
}

fn header(id: [u8; 16], row_bytes: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
    bytes[12..16].copy_from_slice(&(row_bytes as u32).to_le_bytes());
    bytes[16..32].copy_from_slice(&id);
    bytes
}

/// An id unlikely to repeat: the time, the process and a counter, mixed (SplitMix64).
fn new_id() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&next().to_le_bytes());
    id[8..].copy_from_slice(&next().to_le_bytes());
    id
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::invalid("fullVectors.path must not be empty"));
    }
    std::path::absolute(path).map_err(|e| io_error(path, "resolve", e))
}

impl RowFileRef {
    /// Little-endian: id, u32 row bytes, u64 length, u32 checksum count, checksums, u32 path
    /// length, the path (UTF-8).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let path = self.path.to_str().ok_or_else(|| {
            Error::invalid(format!(
                "the full-vector path {} is not UTF-8",
                self.path.display()
            ))
        })?;
        let mut out = Vec::with_capacity(40 + self.crcs.len() * 4 + path.len());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&(self.row_bytes as u32).to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&(self.crcs.len() as u32).to_le_bytes());
        for crc in &self.crcs {
            out.extend_from_slice(&crc.to_le_bytes());
        }
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut input = crate::persist::ConfigReader::new(bytes);
        let mut id = [0u8; 16];
        for byte in &mut id {
            *byte = input.u8()?;
        }
        let row_bytes = input.u32()? as usize;
        let len = input.u64()?;
        let count = input.u32()? as usize;
        if count > bytes.len() / 4 {
            return Err(corrupt(format!("{count} full-vector checksums")));
        }
        let crcs = (0..count)
            .map(|_| input.u32())
            .collect::<Result<Vec<_>>>()?;
        let path_len = input.u32()? as usize;
        let path = input.bytes(path_len)?.to_vec();
        input.finish()?;
        let path = String::from_utf8(path).map_err(|_| corrupt("full-vector path is not UTF-8"))?;
        if row_bytes == 0 || !row_bytes.is_multiple_of(64) || len < HEADER as u64 {
            return Err(corrupt(format!(
                "full-vector rows of {row_bytes} bytes in {len} bytes"
            )));
        }
        Ok(RowFileRef {
            path: PathBuf::from(path),
            id,
            row_bytes,
            len,
            crcs,
        })
    }
}
