//! Reading a file: every field is checked, with checked arithmetic, before anything in it is
//! trusted; a bad file is an error, never a panic, a huge allocation or a read out of bounds.
//!
//! Two ways in: [`parse`] validates a whole image in memory and borrows its sections;
//! [`FileReader`] validates the header and section table of a file, then reads each section
//! straight into the caller's buffer (its final home: no intermediate copy of the file),
//! checking its CRC as it goes.

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use crate::crc::{combine, crc32c};
use crate::error::StoreError;
use crate::format::{
    aligned, IndexKind, ALIGN, FIXED_HEADER, FORMAT_VERSION, MAGIC, MAX_CONFIG, MAX_SECTIONS,
    SECTION_ENTRY,
};
use crate::write::FileHeader;

/// One section of a parsed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    pub id: u32,
    pub bytes: &'a [u8],
}

/// A validated file image: the header and its sections, borrowed from the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile<'a> {
    pub version: u32,
    pub header: FileHeader,
    pub sections: Vec<Section<'a>>,
}

impl StoredFile<'_> {
    /// The payload of section `id`, if present.
    pub fn section(&self, id: u32) -> Option<&[u8]> {
        self.sections.iter().find(|s| s.id == id).map(|s| s.bytes)
    }
}

/// Where a section lies in its file, and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    pub id: u32,
    pub offset: usize,
    pub len: usize,
    pub crc: u32,
}

/// A validated header and section table; the payloads are not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: u32,
    pub header: FileHeader,
    /// Bytes of the header (up to and including its checksum).
    pub header_len: usize,
    pub sections: Vec<SectionEntry>,
}

impl Layout {
    /// The entry of section `id`, if present.
    pub fn entry(&self, id: u32) -> Option<&SectionEntry> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// The padding ranges `(start, end)` between the header and the payloads, which must be 0.
    pub fn gaps(&self) -> Vec<(usize, usize)> {
        let mut end = self.header_len;
        let mut gaps = Vec::new();
        for entry in &self.sections {
            if entry.offset > end {
                gaps.push((end, entry.offset));
            }
            end = entry.offset + entry.len;
        }
        gaps
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn corrupt<T>(message: String) -> Result<T, StoreError> {
    Err(StoreError::Corrupt(message))
}

/// The header length a file announces, from its first [`FIXED_HEADER`] bytes (or fewer, which
/// is an error): magic, version and the configuration and section counts are checked, so the
/// result is small (below 2 MiB) and safe to read.
pub fn announced_header_len(prefix: &[u8]) -> Result<usize, StoreError> {
    if prefix.len() < 8 || prefix[..8] != MAGIC {
        return corrupt("not a vecdex index file (bad magic)".into());
    }
    if prefix.len() < FIXED_HEADER {
        return corrupt(format!(
            "{} bytes is shorter than the {FIXED_HEADER}-byte header",
            prefix.len()
        ));
    }
    let version = u32_at(prefix, 8);
    if version == 0 || version > FORMAT_VERSION {
        return Err(StoreError::Unsupported(format!(
            "index file format version {version}; this build reads versions 1 to {FORMAT_VERSION}"
        )));
    }
    let header_len = u32_at(prefix, 12) as usize;
    let config_len = u32_at(prefix, 32) as usize;
    let section_count = u32_at(prefix, 36) as usize;
    if config_len > MAX_CONFIG || section_count > MAX_SECTIONS {
        return corrupt(format!(
            "{config_len} configuration bytes or {section_count} sections exceed the limits"
        ));
    }
    // Small by the limits above: no overflow possible.
    let table = aligned(FIXED_HEADER + config_len).unwrap_or(usize::MAX);
    let expected = table + SECTION_ENTRY * section_count + 4;
    if header_len != expected {
        return corrupt(format!(
            "header length {header_len} does not match its contents ({expected} bytes)"
        ));
    }
    Ok(header_len)
}

/// Validates the header and section table of a file of `file_len` bytes whose first bytes are
/// `head` (at least the header). Payloads and padding are not checked here.
pub fn parse_layout(head: &[u8], file_len: usize) -> Result<Layout, StoreError> {
    let header_len = announced_header_len(head)?;
    if header_len > head.len() || header_len > file_len {
        return corrupt(format!(
            "the file is {file_len} bytes, shorter than its {header_len}-byte header (truncated?)"
        ));
    }
    let bytes = &head[..header_len];
    if crc32c(&bytes[..header_len - 4]) != u32_at(bytes, header_len - 4) {
        return corrupt("header checksum mismatch".into());
    }
    let kind = IndexKind::from_byte(bytes[16]).ok_or_else(|| {
        StoreError::Unsupported(format!("index kind {} is unknown to this build", bytes[16]))
    })?;
    let metric = bytes[17];
    if metric > 3 {
        return corrupt(format!("metric code {metric} is not 0 to 3"));
    }
    let config_len = u32_at(bytes, 32) as usize;
    let section_count = u32_at(bytes, 36) as usize;
    let table = aligned(FIXED_HEADER + config_len).unwrap_or(usize::MAX);
    if bytes[18] != 0
        || bytes[19] != 0
        || bytes[FIXED_HEADER + config_len..table]
            .iter()
            .any(|&b| b != 0)
    {
        return corrupt("reserved header bytes are not zero".into());
    }
    let header = FileHeader {
        kind,
        metric,
        dimensions: u32_at(bytes, 20),
        count: u64_at(bytes, 24),
        config: bytes[FIXED_HEADER..FIXED_HEADER + config_len].to_vec(),
    };
    let mut sections: Vec<SectionEntry> = Vec::with_capacity(section_count);
    let mut end = header_len;
    for i in 0..section_count {
        let at = table + i * SECTION_ENTRY;
        let id = u32_at(bytes, at);
        if u32_at(bytes, at + 4) != 0 || u32_at(bytes, at + 28) != 0 {
            return corrupt(format!("section entry {i}: reserved fields are not zero"));
        }
        if sections.iter().any(|s| s.id == id) {
            return corrupt(format!("section {id} appears twice"));
        }
        let (Ok(offset), Ok(len)) = (
            usize::try_from(u64_at(bytes, at + 8)),
            usize::try_from(u64_at(bytes, at + 16)),
        ) else {
            return corrupt(format!(
                "section {id}: offset or length does not fit in memory"
            ));
        };
        let Some(stop) = offset.checked_add(len) else {
            return corrupt(format!("section {id}: offset + length overflows"));
        };
        let padded_end = aligned(end).unwrap_or(usize::MAX);
        if offset % ALIGN != 0 || offset != padded_end || stop > file_len {
            return corrupt(format!(
                "section {id}: bytes {offset}..{stop} are not the next aligned range after {end} within the file ({file_len} bytes)"
            ));
        }
        sections.push(SectionEntry {
            id,
            offset,
            len,
            crc: u32_at(bytes, at + 24),
        });
        end = stop;
    }
    if end != file_len {
        return corrupt(format!(
            "the file is {file_len} bytes, but its sections end at {end}"
        ));
    }
    Ok(Layout {
        version: u32_at(bytes, 8),
        header,
        header_len,
        sections,
    })
}

/// Parses and validates a whole file image (see `format.rs` for every rule checked).
pub fn parse(bytes: &[u8]) -> Result<StoredFile<'_>, StoreError> {
    let layout = parse_layout(bytes, bytes.len())?;
    for (start, end) in layout.gaps() {
        if bytes[start..end].iter().any(|&b| b != 0) {
            return corrupt(format!("padding at {start}..{end} is not zero"));
        }
    }
    let mut sections = Vec::with_capacity(layout.sections.len());
    for entry in &layout.sections {
        let payload = &bytes[entry.offset..entry.offset + entry.len];
        if crc32c(payload) != entry.crc {
            return corrupt(format!("section {}: checksum mismatch", entry.id));
        }
        sections.push(Section {
            id: entry.id,
            bytes: payload,
        });
    }
    Ok(StoredFile {
        version: layout.version,
        header: layout.header,
        sections,
    })
}

/// Bytes per read of a large section: one job of the parallel read, checksummed while still in
/// cache.
const READ_CHUNK: usize = 1 << 20;

/// Fills `out` from `file` at `offset`, without moving a shared file position (so chunks can
/// be read from several threads at once).
#[cfg(unix)]
fn read_exact_at(file: &File, out: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(out, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut out: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !out.is_empty() {
        match file.seek_read(out, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                out = &mut out[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// A raw destination pointer handed to the parallel chunk reads (each writes its own range).
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);

// SAFETY: the chunks written through it are disjoint, and the caller of `read_into_uninit`
// keeps the memory alive and unaliased for the whole call.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// # Safety
    /// `offset` must stay inside the destination range.
    unsafe fn add(self, offset: usize) -> *mut u8 {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.add(offset) }
    }
}

/// Reads and checks the header and section table of a file image of `len` bytes starting at
/// byte `base` of `file`: the file itself, or a whole file kept in one of its sections. `what`
/// names the image in messages.
fn read_layout(file: &File, base: usize, len: usize, what: &str) -> Result<Layout, StoreError> {
    let io = |e: std::io::Error| StoreError::Io(e.to_string());
    let mut head = vec![0u8; FIXED_HEADER.min(len)];
    read_exact_at(file, &mut head, base as u64).map_err(io)?;
    let header_len = announced_header_len(&head)?;
    if header_len > len {
        return corrupt(format!(
            "{what} is {len} bytes, shorter than its {header_len}-byte header (truncated?)"
        ));
    }
    head.resize(header_len, 0);
    read_exact_at(
        file,
        &mut head[FIXED_HEADER..],
        (base + FIXED_HEADER) as u64,
    )
    .map_err(io)?;
    parse_layout(&head, len)
}

/// A file being read section by section (see the module docs).
#[derive(Debug)]
pub struct FileReader {
    file: File,
    layout: Layout,
    path: String,
}

impl FileReader {
    /// Opens `path` and validates its header, section table and padding.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| StoreError::Io(format!("cannot read {shown}: {e}"));
        // A regular file only, refused before an open could block (a FIFO) or stream forever
        // (a device): see `file.rs`.
        let file = crate::file::open_regular(path, "read")?;
        let metadata = file.metadata().map_err(io)?;
        let file_len = usize::try_from(metadata.len())
            .map_err(|_| StoreError::Corrupt(format!("{shown} is too large for memory")))?;
        let layout = read_layout(&file, 0, file_len, "the file").map_err(|e| match e {
            StoreError::Io(m) => StoreError::Io(format!("cannot read {shown}: {m}")),
            other => other,
        })?;
        let reader = FileReader {
            file,
            layout,
            path: shown,
        };
        for (start, end) in reader.layout.gaps() {
            let mut padding = [0u8; ALIGN];
            let padding = &mut padding[..end - start];
            reader.read_at(start, padding)?;
            if padding.iter().any(|&b| b != 0) {
                return corrupt(format!("padding at {start}..{end} is not zero"));
            }
        }
        Ok(reader)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn read_at(&self, offset: usize, out: &mut [u8]) -> Result<(), StoreError> {
        read_exact_at(&self.file, out, offset as u64)
            .map_err(|e| StoreError::Io(format!("cannot read {}: {e}", self.path)))
    }

    /// Reads section `id` into `out`, which must be exactly its length, and checks its CRC.
    /// Large sections are read in chunks on the Rayon pool the caller runs in (both the
    /// kernel's copy and the checksum then use every core); the chunks' CRCs are combined.
    pub fn read_into(&mut self, id: u32, out: &mut [u8]) -> Result<(), StoreError> {
        // SAFETY: `out` is valid for writes of its whole length and borrowed exclusively.
        unsafe { self.read_into_uninit(id, out.as_mut_ptr(), out.len()) }
    }

    /// [`read_into`](Self::read_into) for `len` bytes at `out` that need not be initialised
    /// (a fresh allocation: no zeroing pass before the read). On success all `len` bytes are
    /// written; on error their contents are unspecified.
    ///
    /// # Safety
    /// `out` must be valid for writes of `len` bytes, and nothing may read or write them during
    /// the call.
    pub unsafe fn read_into_uninit(
        &mut self,
        id: u32,
        out: *mut u8,
        len: usize,
    ) -> Result<(), StoreError> {
        let entry = *self
            .layout
            .entry(id)
            .ok_or_else(|| StoreError::Corrupt(format!("section {id} is missing")))?;
        if len != entry.len {
            return corrupt(format!(
                "section {id} has {} bytes, not the {len} expected",
                entry.len
            ));
        }
        if len <= READ_CHUNK {
            // One chunk: read it here, without handing work to the pool.
            // SAFETY: the caller's contract: `len` writable bytes at `out`, touched by no one.
            unsafe { self.read_raw(entry.offset, out, len) }?;
            // SAFETY: `read_raw` wrote all `len` bytes, so they are initialised.
            let bytes = unsafe { std::slice::from_raw_parts(out, len) };
            if crc32c(bytes) != entry.crc {
                return corrupt(format!("section {id}: checksum mismatch"));
            }
            return Ok(());
        }
        let base = SendPtr(out);
        let this = &*self;
        let crcs: Vec<(u32, usize)> = (0..len.div_ceil(READ_CHUNK))
            .into_par_iter()
            .map(|i| {
                let start = i * READ_CHUNK;
                let size = READ_CHUNK.min(len - start);
                // SAFETY: chunks are disjoint ranges inside the caller's `len` bytes.
                let chunk = unsafe { base.add(start) };
                // SAFETY: as above: `size` writable bytes at `chunk`, touched by no one else.
                unsafe { this.read_raw(entry.offset + start, chunk, size) }?;
                // SAFETY: `read_raw` wrote all `size` bytes, so they are initialised.
                let bytes = unsafe { std::slice::from_raw_parts(chunk, size) };
                Ok((crc32c(bytes), size))
            })
            .collect::<Result<_, StoreError>>()?;
        let crc = crcs
            .iter()
            .fold(crc32c(&[]), |crc, &(next, len)| combine(crc, next, len));
        if crc != entry.crc {
            return corrupt(format!("section {id}: checksum mismatch"));
        }
        Ok(())
    }

    /// Reads exactly `len` bytes at `offset` into `out` (`len` writable bytes, touched by no
    /// one else) without initialising them first where the platform allows.
    #[cfg(not(unix))]
    unsafe fn read_raw(&self, offset: usize, out: *mut u8, len: usize) -> Result<(), StoreError> {
        // SAFETY: the caller's contract; the bytes are zeroed, so initialised, before the slice.
        let out = unsafe {
            std::ptr::write_bytes(out, 0, len);
            std::slice::from_raw_parts_mut(out, len)
        };
        self.read_at(offset, out)
    }

    /// Reads exactly `len` bytes at `offset` into `out` (`len` writable bytes, touched by no
    /// one else) with `pread`, straight into memory that need not be initialised.
    #[cfg(unix)]
    unsafe fn read_raw(
        &self,
        mut offset: usize,
        mut out: *mut u8,
        mut len: usize,
    ) -> Result<(), StoreError> {
        use std::os::unix::io::AsRawFd;
        let error = |e: std::io::Error| StoreError::Io(format!("cannot read {}: {e}", self.path));
        while len > 0 {
            let at = libc::off_t::try_from(offset)
                .map_err(|_| error(std::io::ErrorKind::InvalidInput.into()))?;
            // SAFETY: `out` is valid for `len` writes (the caller's contract), and `pread`
            // writes at most `len` bytes there.
            let read = unsafe { libc::pread(self.file.as_raw_fd(), out.cast(), len, at) };
            match read {
                n if n > 0 => {
                    let n = n as usize;
                    offset += n;
                    len -= n;
                    // SAFETY: `n ≤ len`, so the pointer stays inside the caller's range.
                    out = unsafe { out.add(n) };
                }
                0 => return Err(error(std::io::ErrorKind::UnexpectedEof.into())),
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(error(e));
                    }
                }
            }
        }
        Ok(())
    }

    /// The header and section table of a whole file stored as section `id` (an index kept
    /// inside another, such as a multi-vector index's FDE graph), read and checked without
    /// reading the nested payloads; `None` when the section is absent.
    pub fn nested_layout(&self, id: u32) -> Result<Option<Layout>, StoreError> {
        let Some(entry) = self.layout.entry(id).copied() else {
            return Ok(None);
        };
        let what = format!("section {id}");
        read_layout(&self.file, entry.offset, entry.len, &what)
            .map(Some)
            .map_err(|e| match e {
                StoreError::Io(m) => StoreError::Io(format!("cannot read {}: {m}", self.path)),
                other => other,
            })
    }

    /// Section `id` as a new vector (for small sections), or `None` when absent.
    pub fn read_vec(&mut self, id: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(len) = self.layout.entry(id).map(|e| e.len) else {
            return Ok(None);
        };
        // The length is checked against the file's, but the file (a sparse one, say) can still
        // be larger than the memory left: refuse rather than abort.
        let mut out = Vec::new();
        out.try_reserve_exact(len).map_err(|_| {
            StoreError::Io(format!("section {id}: {len} bytes do not fit in memory"))
        })?;
        out.resize(len, 0u8);
        self.read_into(id, &mut out)?;
        Ok(Some(out))
    }
}
