//! An [`HnswIndex`] as a file (kind 2), and back.
//!
//! Configuration bytes (little-endian):
//! ```text
//! u64 m, u64 efConstruction, u64 efSearch, u64 seed,
//! u8 insertion order (0 given, 1 random, 2 lid),
//! compression (see persist::write_compression),
//! u64 slots: nodes saved (`used`), live vectors + tombstones + free slots
//! ```
//! Sections (`slots` = the count above, `stride` = dimensions rounded up to 16):
//! ```text
//! KEYS         slots × u64         key of each slot (0 for free slots)
//! SLOT_STATES  slots × u8          0 free, 1 live, 2 removed (a tombstone, still a waypoint)
//! VECTORS      slots × stride f32  rows as stored (normalised for cosine), zero padded;
//!                                  absent when the rows are in a row file (the next two)
//! FULL_VECTORS optional            the row file: path, id, length and checksums (row_file.rs)
//! SLOT_ROWS    optional            slots × u32: each slot's row there (u32::MAX for a free slot)
//! LAYER0       graph layer 0       (see vecdex_hnsw::persist)
//! UPPER        graph upper layers  (see vecdex_hnsw::persist)
//! ENTRY        u64                 entry point slot, or u64::MAX when no slot is held
//! CODEC_MODEL  optional            the trained compression model (Codes::saved_model)
//! CODES        optional            slots × code size
//! ```
//! The header's count is the number of live vectors.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use vecdex_distance::padded_len;
use vecdex_hnsw::{Graph, HnswParams, Layer0, SavedGraph};
use vecdex_store::{FileHeader, IndexKind};

use super::{check_ef, AlignedRows, DiskRows, HnswConfig, HnswIndex};
use crate::compression::{Codes, Compression};
use crate::error::Result;
use crate::filter::IndexVersion;
use crate::insertion_order::InsertionOrder;
use crate::persist::{
    as_le_bytes, corrupt, expect_len, from_le_in_place, metric_code, metric_from_code,
    read_compression, section, write_compression, ConfigReader, ConfigWriter, SectionSource,
};
use crate::row_file::{RowFile, RowFileRef, HEADER};
use crate::validate::check_f32_config;

const FREE: u8 = 0;
const LIVE: u8 = 1;
const REMOVED: u8 = 2;

/// The configuration bytes of an HNSW file, decoded and checked as a new index's would be.
pub(crate) struct StoredConfig {
    pub config: HnswConfig,
    pub compression: Compression,
    /// Slots saved: live vectors, tombstones and free slots.
    pub slots: usize,
}

impl StoredConfig {
    pub fn read(header: &FileHeader) -> Result<Self> {
        let metric = metric_from_code(header.metric)?;
        let dim = header.dimensions as usize;
        check_f32_config(dim, metric, "HnswIndex").map_err(|e| corrupt(e.to_string()))?;
        let mut input = ConfigReader::new(&header.config);
        let m = input.usize()?;
        let ef_construction = input.usize()?;
        let ef_search = input.usize()?;
        let seed = input.u64()?;
        let insertion_order = match input.u8()? {
            0 => InsertionOrder::Given,
            1 => InsertionOrder::Random,
            2 => InsertionOrder::DescendingLid,
            t => return Err(corrupt(format!("insertion order {t}"))),
        };
        let compression = read_compression(&mut input, dim)?;
        let slots = input.usize()?;
        input.finish()?;
        HnswParams::new(m, ef_construction, seed).map_err(|e| corrupt(e.0.clone()))?;
        check_ef(ef_search).map_err(|e| corrupt(e.to_string()))?;
        if slots > u32::MAX as usize {
            return Err(corrupt(format!("{slots} slots exceed 2^32 − 1")));
        }
        Ok(StoredConfig {
            config: HnswConfig {
                dim,
                metric,
                m,
                ef_construction,
                ef_search,
                seed,
                insertion_order,
            },
            compression,
            slots,
        })
    }
}

/// Everything a save writes, borrowed or snapshotted from the index.
struct Snapshot<'a> {
    header: FileHeader,
    keys: &'a [u64],
    states: Vec<u8>,
    rows: &'a [f32],
    layer0: Vec<u8>,
    upper: Vec<u8>,
    entry: u64,
    model: Option<Vec<u8>>,
    codes: &'a [u8],
    /// The row file's reference and each slot's row, for an index with rows on disk.
    row_file: Option<(Vec<u8>, Vec<u8>)>,
}

impl Snapshot<'_> {
    fn write(&self, out: impl FnOnce(&FileHeader, &[(u32, &[u8])]) -> Result<()>) -> Result<()> {
        let rows = as_le_bytes(self.rows);
        let keys = as_le_bytes(self.keys);
        let entry = self.entry.to_le_bytes();
        // Rows in the file, or a reference to the file that holds them, in the same place.
        let mut sections: Vec<(u32, &[u8])> =
            vec![(section::KEYS, &keys), (section::SLOT_STATES, &self.states)];
        match &self.row_file {
            Some((reference, slot_rows)) => {
                sections.push((section::FULL_VECTORS, reference));
                sections.push((section::SLOT_ROWS, slot_rows));
            }
            None => sections.push((section::VECTORS, &rows)),
        }
        sections.extend([
            (section::LAYER0, &self.layer0[..]),
            (section::UPPER, &self.upper[..]),
            (section::ENTRY, &entry[..]),
        ]);
        if let Some(model) = &self.model {
            sections.push((section::CODEC_MODEL, model));
        }
        if !self.codes.is_empty() {
            sections.push((section::CODES, self.codes));
        }
        out(&self.header, &sections)
    }
}

crate::persist::persist_methods!(HnswIndex, IndexKind::Hnsw);

impl HnswIndex {
    /// A consistent picture of the index. Needs only shared access: a batch being linked
    /// meanwhile is not acknowledged yet, so its slots are saved as removed (waypoints whose
    /// links stay valid), and its keys are not in the file.
    fn snapshot(&self) -> Result<Snapshot<'_>> {
        let used = self.used;
        let mut states = vec![REMOVED; used];
        for &slot in &self.free {
            states[slot as usize] = FREE;
        }
        for slot in 0..used as u32 {
            if self.is_live(slot) {
                states[slot as usize] = LIVE;
            }
        }
        let config = self.config;
        let mut bytes = ConfigWriter::default();
        bytes
            .u64(config.m as u64)
            .u64(config.ef_construction as u64)
            .u64(config.ef_search as u64)
            .u64(config.seed)
            .u8(match config.insertion_order {
                InsertionOrder::Given => 0,
                InsertionOrder::Random => 1,
                InsertionOrder::DescendingLid => 2,
            });
        write_compression(&mut bytes, self.codes.config());
        bytes.u64(used as u64);
        let model = self.codes.saved_model();
        let row_file = match &self.disk {
            // Durable before the file that refers to them is written (see row_file.rs).
            Some(disk) => {
                let reference = disk.file.commit()?.to_bytes()?;
                let slot_rows: Vec<u8> = (0..used)
                    .flat_map(|s| {
                        let row = if states[s] == FREE {
                            u32::MAX
                        } else {
                            disk.slot_rows[s]
                        };
                        row.to_le_bytes()
                    })
                    .collect();
                Some((reference, slot_rows))
            }
            None => None,
        };
        Ok(Snapshot {
            header: FileHeader {
                kind: IndexKind::Hnsw,
                metric: metric_code(config.metric),
                dimensions: config.dim as u32,
                count: states.iter().filter(|&&s| s == LIVE).count() as u64,
                config: bytes.0,
            },
            keys: &self.slot_keys[..used],
            states,
            rows: match self.disk {
                Some(_) => &[],
                None => &self.rows.values()[..used * self.stride],
            },
            layer0: self.graph.saved_layer0(used),
            upper: self.graph.saved_upper(used),
            entry: self.graph.entry().map_or(u64::MAX, |(n, _)| u64::from(n)),
            codes: self.codes.saved_codes(used),
            model,
            row_file,
        })
    }

    fn write_file(
        &self,
        out: impl FnOnce(&FileHeader, &[(u32, &[u8])]) -> Result<()>,
    ) -> Result<()> {
        // A view saves what it maps: never bytes changed since they were checked.
        self.check_view()?;
        self.snapshot()?.write(out)
    }

    /// A read-only view of an index file: the file is memory-mapped and searched in place
    /// (vectors and layer-0 links are not copied; the operating system pages them in as
    /// searches touch them), after the same checks as [`load`](Self::load). Writes are
    /// [`Error::ReadOnly`]. See `mapped.rs` for why views suit files only vecdex writes.
    pub fn view(path: &Path) -> Result<Self> {
        let mut mapped = crate::mapped::map_file(path, IndexKind::Hnsw)?;
        let index = Self::from_source(&mut mapped)?;
        mapped.release_resident();
        if let Some(disk) = &index.disk {
            disk.file.release_resident();
        }
        Ok(index)
    }

    /// A view of the HNSW file nested in another mapped file (a collection's index).
    pub(crate) fn view_nested(source: &mut crate::mapped::MappedSections) -> Result<Self> {
        Self::from_source(source)
    }

    fn from_source(source: &mut (impl SectionSource + Send)) -> Result<Self> {
        let header = source.header().clone();
        let StoredConfig {
            config,
            compression,
            slots: used,
        } = StoredConfig::read(&header)?;
        let (dim, metric, m) = (config.dim, config.metric, config.m);
        let params = HnswParams::new(m, config.ef_construction, config.seed)
            .map_err(|e| corrupt(e.0.clone()))?;

        // Small sections first: a file whose counts disagree fails before the big reads.
        let states = source.required_vec(section::SLOT_STATES, "slot states")?;
        expect_len(&states, used, 1, "slot states")?;
        if let Some(s) = states.iter().find(|&&s| s > REMOVED) {
            return Err(corrupt(format!("slot state {s}")));
        }
        let live_count = states.iter().filter(|&&s| s == LIVE).count();
        if live_count as u64 != header.count {
            return Err(corrupt(format!(
                "the header counts {} vectors, the slots hold {live_count}",
                header.count
            )));
        }
        let entry: Vec<u64> = source.required_values(section::ENTRY, 1, "entry point")?;
        let entry = match entry[0] {
            u64::MAX => None,
            n => Some(u32::try_from(n).map_err(|_| corrupt(format!("entry point {n}")))?),
        };
        let upper = source.required_vec(section::UPPER, "upper layers")?;
        let stride0 = 1 + 2 * m;
        let layer0_words = used
            .checked_mul(stride0)
            .ok_or_else(|| corrupt("layer 0 size overflows"))?;

        let keys: Vec<u64> = source.required_values(section::KEYS, used, "keys")?;
        let stride = padded_len(dim);
        let values = used
            .checked_mul(stride)
            .ok_or_else(|| corrupt("vector storage size overflows"))?;
        let disk = match source.read_vec(section::FULL_VECTORS)? {
            Some(bytes) => Some(RowFileRef::from_bytes(&bytes)?),
            None => None,
        };
        if disk.as_ref().is_some_and(|d| d.row_bytes != stride * 4) {
            return Err(corrupt("the full-vector rows do not match the dimensions"));
        }
        let rows_in_file = disk.is_some();
        // The key map is built on one core while the vectors are read and checked on the other.
        let (slot_sets, rows) = crate::threads::run(|| {
            Ok(rayon::join(
                || SlotSets::new(&keys, &states, live_count),
                || match rows_in_file {
                    // A view's index file is mapped whatever it holds.
                    true => Ok((
                        AlignedRows::default(),
                        source.mapped(section::ENTRY).is_some(),
                    )),
                    false => read_rows(&mut *source, values, stride, dim, &states),
                },
            ))
        })?;
        let SlotSets {
            slots,
            live,
            tombstones,
            free,
        } = slot_sets?;
        let (rows, read_only) = rows?;
        let disk = match disk {
            Some(reference) => Some(Box::new(open_row_file(
                &mut *source,
                &reference,
                &states,
                read_only,
            )?)),
            None => None,
        };

        let layer0 = match source.mapped(section::LAYER0) {
            Some(range) => {
                expect_len(range.bytes(), layer0_words, 4, "layer 0")?;
                Layer0::Shared(std::sync::Arc::new(range))
            }
            None => Layer0::from_words(source.required_values(
                section::LAYER0,
                layer0_words,
                "layer 0",
            )?),
        };
        let held = |slot: u32| states.get(slot as usize).is_some_and(|&s| s != FREE);
        let graph = Graph::from_saved(
            params,
            SavedGraph {
                used,
                layer0,
                upper: &upper,
                entry,
            },
            &held,
        )
        .map_err(corrupt)?;

        let model = source.read_vec(section::CODEC_MODEL)?;
        let code_bytes = source.read_vec(section::CODES)?;
        let codes = Codes::restore(
            compression,
            dim,
            metric,
            model.as_deref(),
            code_bytes.as_deref(),
            used,
        )?;
        let mut index = HnswIndex {
            config,
            kernel: vecdex_distance::RowKernel::default(),
            stride,
            rows,
            graph,
            used,
            slot_keys: keys,
            slots,
            live,
            tombstones,
            free,
            version: IndexVersion::next(),
            codes,
            read_only,
            disk,
        };
        index.codes.reserve(used)?;
        let capacity = index.graph.capacity().max(used);
        if let Some(disk) = &mut index.disk {
            disk.slot_rows.resize(capacity, u32::MAX);
        }
        Ok(index)
    }
}

/// The key map and slot lists of a loaded index.
struct SlotSets {
    slots: HashMap<u64, u32>,
    live: Vec<u64>,
    tombstones: Vec<u32>,
    free: Vec<u32>,
}

impl SlotSets {
    fn new(keys: &[u64], states: &[u8], live_count: usize) -> Result<Self> {
        let mut slots = HashMap::with_capacity(live_count);
        let mut live = vec![0u64; states.len().div_ceil(64)];
        let (mut tombstones, mut free) = (Vec::new(), Vec::new());
        for (slot, &state) in states.iter().enumerate() {
            match state {
                LIVE => {
                    if slots.insert(keys[slot], slot as u32).is_some() {
                        return Err(corrupt(format!("key {} is live twice", keys[slot])));
                    }
                    if keys[slot] == crate::validate::NO_KEY {
                        return Err(corrupt(format!("key {} is reserved", keys[slot])));
                    }
                    live[slot / 64] |= 1 << (slot % 64);
                }
                REMOVED => tombstones.push(slot as u32),
                _ => free.push(slot as u32),
            }
        }
        // Later inserts take free slots from the end: lowest slots first.
        free.reverse();
        Ok(SlotSets {
            slots,
            live,
            tombstones,
            free,
        })
    }
}

/// The vectors: read into owned storage, or in place from a mapping (then the index is a
/// read-only view); checked either way. Returns the rows and whether they are mapped.
fn read_rows(
    source: &mut impl SectionSource,
    values: usize,
    stride: usize,
    dim: usize,
    states: &[u8],
) -> Result<(AlignedRows, bool)> {
    let (rows, mapped) = match source.mapped(section::VECTORS) {
        Some(range) => {
            expect_len(range.bytes(), values, 4, "vectors")?;
            (AlignedRows::shared(range), true)
        }
        None => {
            match source.section_len(section::VECTORS) {
                None => return Err(corrupt("the vectors section is missing")),
                Some(len) if Some(len) != values.checked_mul(4) => {
                    return Err(corrupt(format!(
                        "vectors: {len} bytes, not {values} values × 4"
                    )))
                }
                _ => {}
            }
            let mut rows = AlignedRows::filled(values, |out, len| {
                // SAFETY: `filled` hands over `len` writable, unaliased bytes.
                unsafe { source.read_into_uninit(section::VECTORS, out, len) }
            })?;
            from_le_in_place(rows.values_mut());
            (rows, false)
        }
    };
    check_rows(&rows.values()[..values], stride, dim, states)?;
    Ok((rows, mapped))
}

/// The row file an index file refers to, checked, with each held slot's row in it.
fn open_row_file(
    source: &mut impl SectionSource,
    reference: &RowFileRef,
    states: &[u8],
    view: bool,
) -> Result<DiskRows> {
    if source.section_len(section::VECTORS).is_some() {
        return Err(corrupt(
            "the vectors are both in the file and in a full-vector file",
        ));
    }
    let slot_rows: Vec<u32> =
        source.required_values(section::SLOT_ROWS, states.len(), "slot rows")?;
    let rows = (reference.len - HEADER as u64) / reference.row_bytes as u64;
    for (slot, (&row, &state)) in slot_rows.iter().zip(states).enumerate() {
        if state != FREE && u64::from(row) >= rows {
            return Err(corrupt(format!(
                "slot {slot} refers to row {row} of a full-vector file of {rows} rows"
            )));
        }
    }
    let file = RowFile::open(reference, !view)?;
    Ok(DiskRows {
        file,
        slot_rows,
        view: if view {
            source.mapped(section::ENTRY)
        } else {
            None
        },
    })
}

/// Rows per parallel job of the row check.
const CHECK_ROWS: usize = 2048;

/// Every held row finite, every row's padding zero.
fn check_rows(values: &[f32], stride: usize, dim: usize, states: &[u8]) -> Result<()> {
    values
        .par_chunks(stride * CHECK_ROWS)
        .enumerate()
        .try_for_each(|(chunk, rows)| {
            for (i, row) in rows.chunks_exact(stride).enumerate() {
                let slot = chunk * CHECK_ROWS + i;
                let Some(&state) = states.get(slot) else {
                    return Ok(());
                };
                // Exponent all ones: infinity or NaN. Branch-free over the row, so it vectorises.
                let non_finite = row[..dim].iter().fold(0u32, |acc, x| {
                    acc | u32::from(x.to_bits() & 0x7F80_0000 == 0x7F80_0000)
                });
                if state != FREE && non_finite != 0 {
                    return Err(corrupt(format!("slot {slot} holds a non-finite value")));
                }
                if row[dim..].iter().any(|&x| x.to_bits() != 0) {
                    return Err(corrupt(format!("slot {slot}: row padding is not zero")));
                }
            }
            Ok(())
        })
}
