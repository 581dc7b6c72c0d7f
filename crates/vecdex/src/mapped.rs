//! Index files mapped read-only into memory, for views: a view searches the file's vectors and
//! links in place (the page cache holds them; nothing is copied), after the same checks a load
//! makes.
//!
//! A mapping reflects the file: if another program truncates or rewrites the file in place
//! while a view is open, reads may fault. vecdex's own saves never do that (they write a new
//! file and rename it over the old one, and the view keeps the old one), which is why views
//! are safe over files only vecdex writes.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use vecdex_store::{FileHeader, IndexKind, Layout};

use crate::error::{Error, Result};
use crate::persist::{corrupt, SectionSource};

/// A whole index file, mapped read-only.
#[derive(Debug)]
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
}

/// A byte range of a mapped file (a section), kept alive by its own reference to the mapping.
#[derive(Debug, Clone)]
pub(crate) struct MappedRange {
    file: Arc<MappedFile>,
    offset: usize,
    len: usize,
}

impl MappedRange {
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
    let file = File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(Error::Io(format!("{shown} is not a file")));
    }
    // SAFETY: the mapping is read-only. Its contents can change only if another program
    // rewrites the file in place, which the module docs rule out for files vecdex writes.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    vecdex_store::parse(&map)?;
    let layout = vecdex_store::parse_layout(&map, map.len())?;
    if layout.header.kind != kind {
        return Err(Error::invalid(format!(
            "the file holds a {} index, not a {} index",
            layout.header.kind.name(),
            kind.name()
        )));
    }
    Ok(MappedSections {
        file: Arc::new(MappedFile { map }),
        layout,
    })
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
