//! A [`FlatIndex`] as a file (kind 1), and back.
//!
//! Configuration bytes: the compression (see `persist::write_compression`). The header's count
//! is the number of vectors `n`. Sections:
//! ```text
//! KEYS         n × u64        keys in slot order (distinct)
//! VECTORS      n × dim f32    row-major vectors as stored (normalised for cosine)
//! CODEC_MODEL  optional       the trained compression model (Codes::saved_model)
//! CODES        optional       n × code size
//! ```

use std::collections::HashMap;

use vecdex_distance::PanelMatrix;
use vecdex_store::{FileHeader, IndexKind};

use super::{FlatConfig, FlatIndex};
use crate::compression::{Codes, Compression};
use crate::error::Result;
use crate::filter::IndexVersion;
use crate::persist::{
    as_le_bytes, corrupt, metric_code, metric_from_code, read_compression, section,
    write_compression, ConfigReader, ConfigWriter, SectionSource,
};
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
        let mut rows = vec![0f32; self.len() * dim];
        for (slot, row) in rows.chunks_exact_mut(dim).enumerate() {
            self.vectors.read(slot, row);
        }
        let rows = as_le_bytes(&rows);
        let keys = as_le_bytes(&self.keys);
        let model = self.codes.saved_model();
        let mut sections: Vec<(u32, &[u8])> =
            vec![(section::KEYS, &keys), (section::VECTORS, &rows)];
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
        let values = len
            .checked_mul(dim)
            .ok_or_else(|| corrupt("vector storage size overflows"))?;
        let rows: Vec<f32> = source.required_values(section::VECTORS, values, "vectors")?;
        let mut vectors = PanelMatrix::new(dim);
        vectors
            .try_reserve(len)
            .map_err(|_| crate::validate::out_of_memory("FlatIndex vectors", len))?;
        for (slot, row) in rows.chunks_exact(dim).enumerate() {
            if !row.iter().all(|x| x.is_finite()) {
                return Err(corrupt(format!("slot {slot} holds a non-finite value")));
            }
            vectors.push(row);
        }
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
        })
    }
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
