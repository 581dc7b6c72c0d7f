//! Index files mapped read-only into memory, for views: a view searches the file's vectors and
//! links in place (the page cache holds them; nothing is copied), after the same checks a load
//! makes.
//!
//! A mapping shows the file as it is now, not as it was checked. What is safe with a view:
//!
//! - **Replacing the file** (a vecdex save, or any writer that writes a new file and renames it
//!   over the path): safe. The view keeps the file it opened (its inode lives on while mapped)
//!   and answers from it, unchanged, until closed; open a new view to see the new file.
//! - **Deleting the file**: safe, for the same reason.
//! - **Changing the file in place** (truncating it, or writing into it: `truncate`, `cp` over
//!   it, `>` redirection, an editor that saves in place): not supported. Before every call that
//!   reads the mapping (searches, `get`, walks, saves; the binding's `stats`), the view compares the size and modification
//!   time of the file it holds with those it checked; if either changed, the call fails with
//!   [`Error::Io`] ("changed in place") and so does every later one: the view never answers
//!   from bytes it did not check. Two cases are beyond that check: a change made *while* a
//!   call runs (after its check: if the file shrank, the process may be killed by SIGBUS; if
//!   it was rewritten, that call's answers are undefined, though memory-safe: link ids are
//!   bounds-checked, so at worst a panic becomes `Error::Internal`), and an in-place rewrite
//!   that keeps both the size and the modification time (a writer that restores the time).
//!
//! vecdex itself never changes a file in place, so views over files only vecdex writes are
//! always safe; for files other programs touch, load instead.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use vecdex_store::{FileHeader, IndexKind, Layout};

use crate::error::{Error, Result};
use crate::persist::{corrupt, SectionSource};

/// A whole index file, mapped read-only, with what it looked like when checked.
#[derive(Debug)]
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
    /// The mapped file itself (not its path, which a rename may point elsewhere).
    file: File,
    path: String,
    checked: Fingerprint,
    /// Set once a change was seen: the view stays failed (the file may change back).
    changed: AtomicBool,
}

/// What an in-place change alters: the size and the modification time (to the nanosecond
/// where the file system records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
}

impl Fingerprint {
    fn of(file: &File) -> std::io::Result<Self> {
        let metadata = file.metadata()?;
        Ok(Fingerprint {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

impl MappedFile {
    /// [`Error::Io`] if the file was changed in place since it was checked (see the module
    /// docs): one `fstat`, so cheap enough before every call that reads the mapping.
    pub fn check_unchanged(&self) -> Result<()> {
        let now = Fingerprint::of(&self.file);
        if self.changed.load(Ordering::Relaxed) || now.as_ref().ok() != Some(&self.checked) {
            self.changed.store(true, Ordering::Relaxed);
            let detail = match now {
                Ok(now) if now.len != self.checked.len => format!(
                    "its size went from {} to {} bytes",
                    self.checked.len, now.len
                ),
                Ok(_) => "it was modified".to_string(),
                Err(e) => format!("it cannot be checked: {e}"),
            };
            return Err(Error::Io(format!(
                "the file behind this view ({}) was changed in place by another program since \
                 it was opened ({detail}): its contents can no longer be trusted; close the \
                 view and open the file again",
                self.path
            )));
        }
        Ok(())
    }
}

/// A byte range of a mapped file (a section), kept alive by its own reference to the mapping.
#[derive(Debug, Clone)]
pub(crate) struct MappedRange {
    file: Arc<MappedFile>,
    offset: usize,
    len: usize,
}

impl MappedRange {
    /// See [`MappedFile::check_unchanged`].
    pub fn check_unchanged(&self) -> Result<()> {
        self.file.check_unchanged()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.file.map[self.offset..self.offset + self.len]
    }

    /// The range as f32 values (little-endian machines only; see [`map_file`]).
    pub fn floats(&self) -> &[f32] {
        let bytes = self.bytes();
        // SAFETY: sections start 64-byte aligned in the file and the mapping is page aligned,
        // so the pointer is aligned for f32; every bit pattern is a valid f32; the length is
        // whole values (checked by the loader before this range is used as rows); the bytes
        // stay mapped while `self` holds the mapping.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
    }
}

impl vecdex_hnsw::SharedWords for MappedRange {
    fn words(&self) -> &[AtomicU32] {
        let bytes = self.bytes();
        // SAFETY: aligned as in `floats`; `AtomicU32` has u32's layout and bit validity. The
        // mapping is read-only and a view never writes its graph (every write path checks
        // `read_only` first), and atomic loads from read-only memory are allowed for sizes the
        // platform loads lock-free.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<AtomicU32>(), bytes.len() / 4) }
    }
}

/// The sections of a mapped file: checked whole once (every checksum and all padding), then
/// read in place or copied out for small sections.
pub(crate) struct MappedSections {
    file: Arc<MappedFile>,
    layout: Layout,
}

/// Maps `path` read-only and checks it holds a valid file of `kind`.
pub(crate) fn map_file(path: &Path, kind: IndexKind) -> Result<MappedSections> {
    if cfg!(target_endian = "big") {
        return Err(Error::UnsupportedFormat(
            "views read little-endian files in place: this machine is big-endian (use load)".into(),
        ));
    }
    let shown = path.display();
    let io = |e: std::io::Error| Error::Io(format!("cannot view {shown}: {e}"));
    // A regular file only, refused before an open could block (a FIFO) or a mapping fault.
    let file = vecdex_store::open_regular(path, "view")?;
    let checked = Fingerprint::of(&file).map_err(io)?;
    // SAFETY: the mapping is read-only. Its contents can change only if another program
    // changes the file in place; every read of it is preceded by `check_unchanged`, and the
    // module docs state what remains unsafe (a change during a call).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    if map.len() as u64 != checked.len {
        return Err(Error::Io(format!(
            "cannot view {shown}: it changed while it was being opened"
        )));
    }
    vecdex_store::parse(&map)?;
    let layout = vecdex_store::parse_layout(&map, map.len())?;
    if Fingerprint::of(&file).ok() != Some(checked) {
        return Err(Error::Io(format!(
            "cannot view {shown}: it changed while it was being checked"
        )));
    }

    if layout.header.kind != kind {
        return Err(Error::invalid(format!(
            "the file holds a {} index, not a {} index",
            layout.header.kind.name(),
            kind.name()
        )));
    }
    Ok(MappedSections {
        file: Arc::new(MappedFile {
            map,
            file,
            path: shown.to_string(),
            checked,
            changed: AtomicBool::new(false),
        }),
        layout,
    })
}

impl MappedSections {
    /// Drops every page of the file from this process's mapping. Opening a view reads the whole
    /// file through it (the checksums, then the checks of rows and links), which leaves the
    /// whole file resident; once the view is built, searches fault back in what they touch
    /// (from the page cache while it holds them), so a view's resident memory is what its
    /// searches use. Only a hint: a failure changes nothing else.
    pub fn release_resident(&self) {
        #[cfg(unix)]
        // SAFETY: a read-only shared mapping of a file: dropped pages are read again from the
        // file on the next access, with the same bytes (the view checks the file is unchanged
        // before every call that reads the mapping).
        let _ = unsafe {
            self.file
                .map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// The whole file of `kind` stored as section `id` (an index kept inside a collection's
    /// file), in place in the same mapping: the outer file's checksums cover its bytes, and its
    /// own layout is checked as a file's. Sections stay 64-byte aligned in memory (the nested
    /// file starts on a 64-byte boundary of a page-aligned mapping).
    pub fn nested(&self, id: u32, kind: IndexKind) -> Result<MappedSections> {
        let entry = *self
            .layout
            .entry(id)
            .ok_or_else(|| corrupt(format!("section {id} is missing")))?;
        let bytes = &self.file.map[entry.offset..entry.offset + entry.len];
        vecdex_store::parse(bytes)?;
        let mut layout = vecdex_store::parse_layout(bytes, bytes.len())?;
        if layout.header.kind != kind {
            return Err(corrupt(format!(
                "section {id} holds a {} index, not a {} index",
                layout.header.kind.name(),
                kind.name()
            )));
        }
        for section in &mut layout.sections {
            section.offset += entry.offset;
        }
        Ok(MappedSections {
            file: self.file.clone(),
            layout,
        })
    }
}

impl SectionSource for MappedSections {
    fn header(&self) -> &FileHeader {
        &self.layout.header
    }
    fn section_len(&self, id: u32) -> Option<usize> {
        self.layout.entry(id).map(|e| e.len)
    }
    fn read_into(&mut self, id: u32, out: &mut [u8]) -> Result<()> {
        let range = self
            .mapped(id)
            .ok_or_else(|| corrupt(format!("section {id} is missing")))?;
        if range.len != out.len() {
            return Err(corrupt(format!("section {id}: unexpected length")));
        }
        out.copy_from_slice(range.bytes());
        Ok(())
    }
    fn mapped(&self, id: u32) -> Option<MappedRange> {
        self.layout.entry(id).map(|e| MappedRange {
            file: self.file.clone(),
            offset: e.offset,
            len: e.len,
        })
    }
}
