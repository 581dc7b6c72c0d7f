//! A [`Collection`] as a file (kind 4), and back: the index, the ids, the texts and the
//! metadata in one file, written by one atomic save, so they always come from the same state.
//!
//! The header's dimensions and metric are the index's, its count the live items.
//! Configuration bytes (little-endian):
//! ```text
//! u8  index kind of the nested file (1 flat, 2 HNSW)
//! u64 rows R (live and free)
//! u32 declared fields F, then F × { u8 type (FieldType::code), u32 name length, UTF-8 name }
//! ```
//! Sections, each holding one entry per row `0 .. R`:
//! ```text
//! COLLECTION_INDEX  a whole flat or HNSW index file whose keys are the live rows
//! ITEM_IDS          per row: u8 0 (free row) | 1 + u64 integer id | 2 + u32 length + UTF-8 string id
//! ITEM_TEXTS        per row: u32 length (u32::MAX: no text) + UTF-8 bytes
//! ITEM_METADATA     per row: u32 length (u32::MAX: none) + the metadata object's JSON text
//! ```
//! Declared fields' columns are not stored: loading rebuilds them from the metadata, so they
//! cannot disagree with it.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use vecdex_store::{FileHeader, IndexKind};

use super::{Collection, CollectionIndex, Columns, FieldType, ItemId, MAX_ID_BYTES, MAX_ITEMS};
use crate::error::{Error, Result};
use crate::flat_index::FlatIndex;
use crate::hnsw_index::HnswIndex;
use crate::index::Persistent;
use crate::persist::{corrupt, metric_code, section, ConfigReader, ConfigWriter, SectionSource};

crate::persist::persist_methods!(Collection, IndexKind::Collection);
crate::index::persistent!(Collection);

/// Marks "no text" / "no metadata" in a row's length.
const ABSENT: u32 = u32::MAX;

/// A collection's file, encoded: made under the collection's read lock by
/// [`Collection::snapshot`], written by [`save`](Self::save) after the lock is released, so a
/// slow disk holds up no write (nor the reads ordered after a write). It holds what the
/// encoding needs anyway (the nested index file and the id, text and metadata sections), so it
/// costs no memory that saving under the lock would not.
pub struct CollectionSnapshot {
    header: FileHeader,
    sections: Vec<(u32, Vec<u8>)>,
}

impl CollectionSnapshot {
    /// Writes the file to `path` atomically (as [`Collection::save`] does), then frees the
    /// snapshot's buffers and returns freed memory to the operating system.
    pub fn save(self, path: &std::path::Path) -> Result<()> {
        let result = self.write(|header, sections| {
            vecdex_store::save_file(path, header, sections).map_err(Error::from)
        });
        drop(self);
        crate::memory::release_freed_memory();
        result
    }

    fn write(&self, out: impl FnOnce(&FileHeader, &[(u32, &[u8])]) -> Result<()>) -> Result<()> {
        let sections: Vec<(u32, &[u8])> = self.sections.iter().map(|(id, bytes)| (*id, bytes.as_slice())).collect();
        out(&self.header, &sections)
    }
}

impl Collection {
    /// The collection's file, encoded in memory for [`CollectionSnapshot::save`].
    pub fn snapshot(&self) -> Result<CollectionSnapshot> {
        let (kind, nested) = match &self.index {
            CollectionIndex::Flat(index) => (IndexKind::Flat, index.to_bytes()?),
            CollectionIndex::Hnsw(index) => (IndexKind::Hnsw, index.to_bytes()?),
        };
        let mut config = ConfigWriter::default();
        config.u8(kind as u8).u64(self.row_ids.len() as u64);
        config.u32(self.fields().len() as u32);
        for (name, field_type) in self.fields() {
            config.u8(field_type.code()).u32(name.len() as u32);
            config.0.extend_from_slice(name.as_bytes());
        }
        let header = FileHeader {
            kind: IndexKind::Collection,
            metric: metric_code(self.metric()),
            dimensions: self.dim() as u32,
            count: self.len() as u64,
            config: config.0,
        };
        let mut ids = Vec::new();
        for id in &self.row_ids {
            match id {
                Some(id) => id.encode(&mut ids),
                None => ids.push(0),
            }
        }
        let texts = encode_strings(&self.texts)?;
        let metadata = encode_strings(&self.metadata)?;
        Ok(CollectionSnapshot {
            header,
            sections: vec![
                (section::COLLECTION_INDEX, nested),
                (section::ITEM_IDS, ids),
                (section::ITEM_TEXTS, texts),
                (section::ITEM_METADATA, metadata),
            ],
        })
    }

    pub(crate) fn write_file(
        &self,
        out: impl FnOnce(&FileHeader, &[(u32, &[u8])]) -> Result<()>,
    ) -> Result<()> {
        self.snapshot()?.write(out)
    }

    pub(crate) fn from_source(source: &mut impl SectionSource) -> Result<Self> {
        Self::from_parts(source, |source, kind| {
            let nested = source.required_vec(section::COLLECTION_INDEX, "collection index")?;
            let nested_error = |e: Error| match e {
                Error::CorruptFile(m) => corrupt(format!("collection index: {m}")),
                other => other,
            };
            let index = match kind {
                1 => CollectionIndex::Flat(FlatIndex::from_bytes(&nested).map_err(nested_error)?),
                2 => CollectionIndex::Hnsw(HnswIndex::from_bytes(&nested).map_err(nested_error)?),
                k => return Err(corrupt(format!("collection index kind {k}"))),
            };
            drop(nested);
            Ok(index)
        })
    }

    /// A read-only view of a saved collection: its HNSW index is searched in place in the
    /// memory-mapped file (see [`HnswIndex::view`]); ids, texts and metadata are read into
    /// memory. Writes are [`Error::ReadOnly`]. A flat collection's index is read into memory.
    pub fn view(path: &std::path::Path) -> Result<Self> {
        let mut mapped = crate::mapped::map_file(path, IndexKind::Collection)?;
        let mut collection = Self::from_parts(&mut mapped, |mapped, kind| match kind {
            2 => {
                let mut nested = mapped
                    .nested(section::COLLECTION_INDEX, IndexKind::Hnsw)
                    .map_err(|e| match e {
                        Error::CorruptFile(m) => corrupt(format!("collection index: {m}")),
                        other => other,
                    })?;
                Ok(CollectionIndex::Hnsw(HnswIndex::view_nested(&mut nested)?))
            }
            1 => {
                let nested = mapped.required_vec(section::COLLECTION_INDEX, "collection index")?;
                Ok(CollectionIndex::Flat(FlatIndex::from_bytes(&nested)?))
            }
            k => Err(corrupt(format!("collection index kind {k}"))),
        })?;
        collection.read_only = true;
        mapped.release_resident();
        Ok(collection)
    }

    /// A collection from a checked source, its index made by `index(source, kind)`.
    fn from_parts<S: SectionSource>(
        source: &mut S,
        index: impl FnOnce(&mut S, u8) -> Result<CollectionIndex>,
    ) -> Result<Self> {
        let header = source.header().clone();
        let mut input = ConfigReader::new(&header.config);
        let kind = input.u8()?;
        let rows = input.usize()?;
        if rows > MAX_ITEMS {
            return Err(corrupt(format!("{rows} rows")));
        }
        let field_count = input.u32()? as usize;
        let mut fields = Vec::new();
        for _ in 0..field_count {
            let code = input.u8()?;
            let field_type = FieldType::from_code(code)
                .ok_or_else(|| corrupt(format!("field type {code}")))?;
            let len = input.u32()? as usize;
            let name = input.bytes(len)?;
            let name = std::str::from_utf8(name)
                .map_err(|_| corrupt("a field name is not UTF-8"))?
                .to_owned();
            fields.push((name, field_type));
        }
        input.finish()?;
        let columns = Columns::new(fields).map_err(|e| corrupt(format!("fields: {e}")))?;

        let index = index(source, kind)?;
        if index.dim() != header.dimensions as usize || metric_code(index.metric()) != header.metric
        {
            return Err(corrupt("the collection index does not match the header"));
        }

        let ids = source.required_vec(section::ITEM_IDS, "item ids")?;
        let row_ids = decode_ids(&ids, rows)?;
        drop(ids);
        let texts = decode_strings(&source.required_vec(section::ITEM_TEXTS, "item texts")?, rows, "item texts")?;
        let metadata = decode_strings(
            &source.required_vec(section::ITEM_METADATA, "item metadata")?,
            rows,
            "item metadata",
        )?;

        let mut collection = Collection::empty(index, columns);
        let mut map = HashMap::with_capacity(rows);
        let mut live = RoaringBitmap::new();
        let mut free_rows = Vec::new();
        for (row, id) in row_ids.iter().enumerate() {
            let row32 = row as u32;
            match id {
                Some(id) => {
                    if map.insert(id.clone(), row32).is_some() {
                        return Err(corrupt(format!("the id {id} is stored twice")));
                    }
                    if !collection.index.index().contains(row as u64) {
                        return Err(corrupt(format!("item {id} has no vector")));
                    }
                    let parsed = match &metadata[row] {
                        Some(text) => super::parse_metadata(text)
                            .map_err(|e| corrupt(format!("metadata of item {id}: {e}")))?,
                        None => None,
                    };
                    collection
                        .columns
                        .check(parsed.as_ref())
                        .map_err(|e| corrupt(format!("metadata of item {id}: {e}")))?;
                    collection.columns.insert(row32, parsed.as_ref());
                    live.insert(row32);
                }
                None => {
                    if texts[row].is_some() || metadata[row].is_some() {
                        return Err(corrupt(format!("free row {row} holds a text or metadata")));
                    }
                    free_rows.push(row32);
                }
            }
        }
        // Every live row has a vector, and the index holds as many: exactly the live rows.
        if collection.index.index().len() != map.len() || header.count != map.len() as u64 {
            return Err(corrupt(format!(
                "{} items, but the index holds {} vectors and the header counts {}",
                map.len(),
                collection.index.index().len(),
                header.count
            )));
        }
        // Reused lowest first, as a fresh collection would.
        free_rows.reverse();
        collection.row_ids = row_ids;
        collection.rows = map;
        collection.free_rows = free_rows;
        collection.texts = texts;
        collection.metadata = metadata;
        for r in 0..collection.row_ids.len() {
            let row = collection.row_heap(r);
            collection.heap.add(row);
        }
        collection.live = live;
        Ok(collection)
    }
}

fn encode_strings(column: &[Option<Box<str>>]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for value in column {
        match value {
            Some(s) => {
                let len = u32::try_from(s.len())
                    .ok()
                    .filter(|&n| n != ABSENT)
                    .ok_or_else(|| Error::invalid("a text or metadata of 4 GiB or more cannot be saved"))?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            None => out.extend_from_slice(&ABSENT.to_le_bytes()),
        }
    }
    Ok(out)
}

/// Reads `n` bytes at `*at`, advancing it; a short section is corrupt.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| corrupt(format!("{what}: the section ends early")))?;
    let out = &bytes[*at..end];
    *at = end;
    Ok(out)
}

fn take_u32(bytes: &[u8], at: &mut usize, what: &str) -> Result<u32> {
    let b = take(bytes, at, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn decode_strings(bytes: &[u8], rows: usize, what: &str) -> Result<Vec<Option<Box<str>>>> {
    let mut at = 0;
    let mut out = Vec::new();
    out.try_reserve_exact(rows)
        .map_err(|_| Error::OutOfMemory(format!("{what}: {rows} rows do not fit in memory")))?;
    for _ in 0..rows {
        let len = take_u32(bytes, &mut at, what)?;
        if len == ABSENT {
            out.push(None);
            continue;
        }
        let raw = take(bytes, &mut at, len as usize, what)?;
        let text = std::str::from_utf8(raw).map_err(|_| corrupt(format!("{what}: not UTF-8")))?;
        out.push(Some(text.into()));
    }
    if at != bytes.len() {
        return Err(corrupt(format!("{what}: {} bytes left over", bytes.len() - at)));
    }
    Ok(out)
}

fn decode_ids(bytes: &[u8], rows: usize) -> Result<Vec<Option<ItemId>>> {
    const WHAT: &str = "item ids";
    let mut at = 0;
    let mut out = Vec::new();
    out.try_reserve_exact(rows)
        .map_err(|_| Error::OutOfMemory(format!("{WHAT}: {rows} rows do not fit in memory")))?;
    for _ in 0..rows {
        let tag = take(bytes, &mut at, 1, WHAT)?[0];
        out.push(match tag {
            0 => None,
            1 => {
                let b = take(bytes, &mut at, 8, WHAT)?;
                let mut n = [0u8; 8];
                n.copy_from_slice(b);
                Some(ItemId::Int(u64::from_le_bytes(n)))
            }
            2 => {
                let len = take_u32(bytes, &mut at, WHAT)? as usize;
                if len == 0 || len > MAX_ID_BYTES {
                    return Err(corrupt(format!("{WHAT}: a string id of {len} bytes")));
                }
                let raw = take(bytes, &mut at, len, WHAT)?;
                let text = std::str::from_utf8(raw).map_err(|_| corrupt(format!("{WHAT}: not UTF-8")))?;
                Some(ItemId::Str(text.into()))
            }
            t => return Err(corrupt(format!("{WHAT}: tag {t}"))),
        });
    }
    if at != bytes.len() {
        return Err(corrupt(format!("{WHAT}: {} bytes left over", bytes.len() - at)));
    }
    Ok(out)
}
