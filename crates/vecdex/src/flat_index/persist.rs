//! A [`FlatIndex`] as a file (kind 1), and back.
//!
//! Configuration bytes: the compression (see `persist::write_compression`). The header's count
//! is the number of vectors `n`. Sections:
//! ```text
//! KEYS         n × u64        keys in slot order (distinct)
//! VECTORS      n × dim f32    row-major vectors as stored (normalised for cosine); absent
//!                             when they are in a row file (the next two)
//! FULL_VECTORS optional       the row file: path, id, length and checksums (row_file.rs)
//! SLOT_ROWS    optional       n × u32: each slot's row there
//! CODEC_MODEL  optional       the trained compression model (Codes::saved_model)
//! CODES        optional       n × code size
//! ```

use std::collections::HashMap;

use vecdex_distance::PanelMatrix;
use vecdex_store::{FileHeader, IndexKind};

use super::{FlatConfig, FlatDiskRows, FlatIndex};
use crate::compression::{Codes, Compression};
use crate::error::Result;
use crate::filter::IndexVersion;
use crate::persist::{
    as_le_bytes, corrupt, metric_code, metric_from_code, read_compression, section,
    write_compression, ConfigReader, ConfigWriter, SectionSource,
};
use crate::row_file::{RowFile, RowFileRef, HEADER};
use crate::validate::check_f32_config;

crate::persist::persist_methods!(FlatIndex, IndexKind::Flat);

impl FlatIndex {
    fn write_file(
        &self,
        out: impl FnOnce(&FileHeader, &[(u32, &[u8])]) -> Result<()>,
    ) -> Result<()> {
        let mut config = ConfigWriter::default();
        write_compression(&mut config, self.codes.config());
        let header = FileHeader {
            kind: IndexKind::Flat,
            metric: metric_code(self.metric()),
            dimensions: self.dim() as u32,
            count: self.len() as u64,
            config: config.0,
        };
        let dim = self.dim();
        let keys = as_le_bytes(&self.keys);
        let mut sections: Vec<(u32, &[u8])> = vec![(section::KEYS, &keys)];
        // Durable before the file that refers to them is written (see row_file.rs).
        let reference = match &self.disk {
            Some(disk) => Some(disk.file.commit()?.to_bytes()?),
            None => None,
        };
        let mut values = Vec::new();
        if self.disk.is_none() {
            values = vec![0f32; self.len() * dim];
            for (slot, row) in values.chunks_exact_mut(dim).enumerate() {
                self.vectors.read(slot, row);
            }
        }
        let rows = as_le_bytes(&values);
        let slot_rows = self.disk.as_ref().map(|d| as_le_bytes(&d.slot_rows));
        match (&reference, &slot_rows) {
            (Some(reference), Some(slot_rows)) => {
                sections.push((section::FULL_VECTORS, reference));
                sections.push((section::SLOT_ROWS, slot_rows));
            }
            _ => sections.push((section::VECTORS, &rows)),
        }
        let model = self.codes.saved_model();
        if let Some(model) = &model {
            sections.push((section::CODEC_MODEL, model));
        }
        let codes = self.codes.saved_codes(self.len());
        if !codes.is_empty() {
            sections.push((section::CODES, codes));
        }
        out(&header, &sections)
    }

    fn from_source(source: &mut impl SectionSource) -> Result<Self> {
        let header = source.header().clone();
        let (FlatConfig { dim, metric }, compression) = read_config(&header)?;
        let len = usize::try_from(header.count)
            .ok()
            .filter(|&n| n <= u32::MAX as usize)
            .ok_or_else(|| corrupt(format!("{} vectors exceed 2^32 − 1", header.count)))?;
        let keys: Vec<u64> = source.required_values(section::KEYS, len, "keys")?;
        let mut slots = HashMap::with_capacity(len);
        for (slot, &key) in keys.iter().enumerate() {
            if slots.insert(key, slot as u32).is_some() {
                return Err(corrupt(format!("key {key} appears twice")));
            }
            if key == crate::validate::NO_KEY {
                return Err(corrupt(format!("key {key} is reserved")));
            }
        }
        let mut vectors = PanelMatrix::new(dim);
        let disk = match source.read_vec(section::FULL_VECTORS)? {
            Some(bytes) => Some(Box::new(open_row_file(source, &bytes, dim, len)?)),
            None => {
                let values = len
                    .checked_mul(dim)
                    .ok_or_else(|| corrupt("vector storage size overflows"))?;
                let rows: Vec<f32> = source.required_values(section::VECTORS, values, "vectors")?;
                vectors
                    .try_reserve(len)
                    .map_err(|_| crate::validate::out_of_memory("FlatIndex vectors", len))?;
                for (slot, row) in rows.chunks_exact(dim).enumerate() {
                    if !row.iter().all(|x| x.is_finite()) {
                        return Err(corrupt(format!("slot {slot} holds a non-finite value")));
                    }
                    vectors.push(row);
                }
                None
            }
        };
        let model = source.read_vec(section::CODEC_MODEL)?;
        let codes = source.read_vec(section::CODES)?;
        Ok(FlatIndex {
            config: FlatConfig { dim, metric },
            vectors,
            keys,
            slots,
            version: IndexVersion::next(),
            codes: Codes::restore(
                compression,
                dim,
                metric,
                model.as_deref(),
                codes.as_deref(),
                len,
            )?,
            disk,
        })
    }
}

/// The row file a flat file refers to (`reference`: its FULL_VECTORS section), checked, with
/// each slot's row in it.
fn open_row_file(
    source: &mut impl SectionSource,
    reference: &[u8],
    dim: usize,
    len: usize,
) -> Result<FlatDiskRows> {
    let reference = RowFileRef::from_bytes(reference)?;
    if reference.row_bytes != vecdex_distance::padded_len(dim) * 4 {
        return Err(corrupt("the full-vector rows do not match the dimensions"));
    }
    if source.section_len(section::VECTORS).is_some() {
        return Err(corrupt(
            "the vectors are both in the file and in a full-vector file",
        ));
    }
    let slot_rows: Vec<u32> = source.required_values(section::SLOT_ROWS, len, "slot rows")?;
    let rows = (reference.len - HEADER as u64) / reference.row_bytes as u64;
    if let Some((slot, row)) = slot_rows
        .iter()
        .enumerate()
        .find(|(_, &row)| u64::from(row) >= rows)
    {
        return Err(corrupt(format!(
            "slot {slot} refers to row {row} of a full-vector file of {rows} rows"
        )));
    }
    Ok(FlatDiskRows {
        file: RowFile::open(&reference, true)?,
        slot_rows,
    })
}

/// The configuration of a flat file, decoded and checked as a new index's would be.
pub(crate) fn read_config(header: &FileHeader) -> Result<(FlatConfig, Compression)> {
    let metric = metric_from_code(header.metric)?;
    let dim = header.dimensions as usize;
    check_f32_config(dim, metric, "FlatIndex").map_err(|e| corrupt(e.to_string()))?;
    let mut input = ConfigReader::new(&header.config);
    let compression = read_compression(&mut input, dim)?;
    input.finish()?;
    Ok((FlatConfig { dim, metric }, compression))
}
