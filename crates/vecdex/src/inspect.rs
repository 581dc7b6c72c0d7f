//! What an index file holds, read from its header and section table alone (`vecdex info`):
//! the format, kind, sizes and the settings it was built with. Nothing is loaded: the header
//! checksum, the section table and the padding are checked (as by every loader), the section
//! payloads are not read, so this takes the same few reads on a file of any size.
//! [`Error::CorruptFile`] / [`Error::UnsupportedFormat`] / [`Error::Io`] as for a load.

use std::path::Path;

use vecdex_distance::Metric;
use vecdex_store::{FileReader, IndexKind, Layout};

use crate::compression::{Compression, Quantization, Reduction};
use crate::error::{Error, Result};
use crate::hnsw_index::HnswConfig;
use crate::persist::section;
use crate::ProjectionType;

/// One setting of an index, as shown by `vecdex info`.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Integer(u64),
    Number(f64),
    Text(String),
    Flag(bool),
}

/// Where a section lies in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionInfo {
    pub id: u32,
    /// What the section holds ("keys", "vectors", "layer 0", …; "section N" when unknown).
    pub name: &'static str,
    pub offset: u64,
    pub bytes: u64,
    pub crc32c: u32,
}

/// The description of an index file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    pub format_version: u32,
    /// "flat", "hnsw" or "multiVector" (the index class without `Index`, camelCase).
    pub kind: &'static str,
    pub metric: Metric,
    /// Vector dimensions (token dimensions for a multi-vector index).
    pub dimensions: usize,
    /// Live vectors (documents for a multi-vector index).
    pub count: u64,
    pub file_bytes: u64,
    pub header_bytes: u64,
    pub sections: Vec<SectionInfo>,
    /// The settings in the order the index kind documents them: (camelCase option name, value).
    pub settings: Vec<(String, Setting)>,
}

/// Describes the index file at `path` (see the module docs).
pub fn inspect_file(path: &Path) -> Result<FileInfo> {
    let reader = FileReader::open(path)?;
    let layout = reader.layout();
    let header = &layout.header;
    let metric = crate::persist::metric_from_code(header.metric)?;
    let mut settings = Settings::default();
    match header.kind {
        IndexKind::Flat => {
            let (_, compression) = crate::flat_index::persist::read_config(header)?;
            settings.compression(&compression);
        }
        IndexKind::Hnsw => {
            let stored = crate::hnsw_index::persist::StoredConfig::read(header)?;
            settings.graph(&stored.config, "");
            settings.compression(&stored.compression);
            settings.integer("slots", stored.slots as u64);
        }
        IndexKind::MultiVector => {
            let stored = crate::multi_vector_index::persist::StoredSettings::read(header)?;
            let fde = &stored.fde;
            settings.integer("numRepetitions", fde.num_repetitions as u64);
            settings.integer(
                "numSimhashProjections",
                u64::from(fde.num_simhash_projections),
            );
            settings.text(
                "projectionType",
                match fde.projection_type {
                    ProjectionType::Identity => "identity",
                    ProjectionType::AmsSketch => "amsSketch",
                },
            );
            settings.integer("projectionDimension", fde.projection_dimension as u64);
            settings.flag("fillEmptyPartitions", fde.fill_empty_partitions);
            if let Some(n) = fde.final_projection_dimension {
                settings.integer("finalProjectionDimension", n as u64);
            }
            settings.integer("seed", fde.seed);
            settings.integer("rngVersion", u64::from(vecdex_fde::RNG_VERSION));
            settings.integer("encodingDimensions", fde.output_dimension() as u64);
            settings.integer("candidates", stored.candidates as u64);
            if let Some(tau) = stored.ball_carving {
                settings.number("ballCarving", f64::from(tau));
            }
            settings.text("strategy", stored.strategy.name());
            settings.text("fdeMetric", stored.fde_metric.name());
            // The FDE graph's own settings, from the header of the file nested in the section.
            let nested = reader
                .nested_layout(section::FDE_INDEX)?
                .ok_or_else(|| Error::CorruptFile("the FDE index section is missing".into()))?;
            check_nested(&nested)?;
            let graph = crate::hnsw_index::persist::StoredConfig::read(&nested.header).map_err(
                |e| match e {
                    Error::CorruptFile(m) => Error::CorruptFile(format!("FDE index: {m}")),
                    other => other,
                },
            )?;
            settings.graph(&graph.config, "graph.");
            settings.compression(&graph.compression);
        }
        IndexKind::Collection => {
            // The nested index's own settings, from the header of the file in the section.
            let nested = reader
                .nested_layout(section::COLLECTION_INDEX)?
                .ok_or_else(|| {
                    Error::CorruptFile("the collection index section is missing".into())
                })?;
            let in_collection = |e: Error| match e {
                Error::CorruptFile(m) => Error::CorruptFile(format!("collection index: {m}")),
                other => other,
            };
            match nested.header.kind {
                IndexKind::Flat => {
                    settings.text("index", "flat");
                    let (_, compression) =
                        crate::flat_index::persist::read_config(&nested.header)
                            .map_err(in_collection)?;
                    settings.compression(&compression);
                }
                IndexKind::Hnsw => {
                    settings.text("index", "hnsw");
                    let stored = crate::hnsw_index::persist::StoredConfig::read(&nested.header)
                        .map_err(in_collection)?;
                    settings.graph(&stored.config, "");
                    settings.compression(&stored.compression);
                }
                other => {
                    return Err(Error::CorruptFile(format!(
                        "a collection cannot hold a {} index",
                        other.name()
                    )))
                }
            }
        }
    }
    Ok(FileInfo {
        format_version: layout.version,
        kind: match header.kind {
            IndexKind::Flat => "flat",
            IndexKind::Hnsw => "hnsw",
            IndexKind::MultiVector => "multiVector",
            IndexKind::Collection => "collection",
        },
        metric,
        dimensions: header.dimensions as usize,
        count: header.count,
        file_bytes: file_len(layout),
        header_bytes: layout.header_len as u64,
        sections: sections(layout),
        settings: settings.0,
    })
}

fn check_nested(layout: &Layout) -> Result<()> {
    if layout.header.kind != IndexKind::Hnsw
        || layout.header.metric != crate::persist::metric_code(Metric::Dot)
    {
        return Err(Error::CorruptFile(
            "the FDE index is not an inner-product HNSW file".into(),
        ));
    }
    Ok(())
}

/// The file ends where its last section ends (or with the header when it has none).
fn file_len(layout: &Layout) -> u64 {
    layout
        .sections
        .iter()
        .map(|s| (s.offset + s.len) as u64)
        .max()
        .unwrap_or(layout.header_len as u64)
        .max(layout.header_len as u64)
}

fn sections(layout: &Layout) -> Vec<SectionInfo> {
    layout
        .sections
        .iter()
        .map(|s| SectionInfo {
            id: s.id,
            name: section_name(s.id),
            offset: s.offset as u64,
            bytes: s.len as u64,
            crc32c: s.crc,
        })
        .collect()
}

fn section_name(id: u32) -> &'static str {
    match id {
        section::KEYS => "keys",
        section::VECTORS => "vectors",
        section::SLOT_STATES => "slot states",
        section::LAYER0 => "layer 0",
        section::UPPER => "upper layers",
        section::ENTRY => "entry point",
        section::CODEC_MODEL => "codec model",
        section::CODES => "codes",
        section::FDE_INDEX => "FDE index",
        section::TOKENS => "tokens",
        section::TOKEN_STARTS => "token starts",
        section::FULL_VECTORS => "full-vector file",
        section::SLOT_ROWS => "slot rows",
        _ => "unknown",
    }
}

#[derive(Default)]
struct Settings(Vec<(String, Setting)>);

impl Settings {
    fn integer(&mut self, name: &str, value: u64) {
        self.0.push((name.into(), Setting::Integer(value)));
    }
    fn number(&mut self, name: &str, value: f64) {
        self.0.push((name.into(), Setting::Number(value)));
    }
    fn text(&mut self, name: &str, value: &str) {
        self.0.push((name.into(), Setting::Text(value.into())));
    }
    fn flag(&mut self, name: &str, value: bool) {
        self.0.push((name.into(), Setting::Flag(value)));
    }

    /// HNSW settings, named as the index options are (`prefix` for a nested graph).
    fn graph(&mut self, config: &HnswConfig, prefix: &str) {
        self.integer(&format!("{prefix}m"), config.m as u64);
        self.integer(
            &format!("{prefix}efConstruction"),
            config.ef_construction as u64,
        );
        self.integer(&format!("{prefix}efSearch"), config.ef_search as u64);
        self.integer(&format!("{prefix}seed"), config.seed);
        self.text(
            &format!("{prefix}insertionOrder"),
            config.insertion_order.name(),
        );
    }

    /// Compression settings, named as the index options are; nothing for an uncompressed index.
    fn compression(&mut self, c: &Compression) {
        if !matches!(c.quantization, Quantization::None) {
            self.text("quantization", c.quantization.name());
        }
        match c.quantization {
            Quantization::Sq8(sq) | Quantization::Sq4(sq) => {
                self.number("clipQuantile", sq.clip_quantile);
                self.flag("symmetric", sq.symmetric);
            }
            Quantization::Pq(pq) => {
                self.integer("subspaces", pq.subspaces as u64);
                self.integer("iterations", pq.iterations as u64);
            }
            _ => {}
        }
        match c.reduction {
            Reduction::None => {}
            Reduction::Prefix(n) => self.integer("prefixDimensions", n as u64),
            Reduction::Pca(n) => self.integer("pcaDimensions", n as u64),
        }
        if let Some(n) = c.oversample {
            self.integer("oversample", n as u64);
        }
        if let Some(n) = c.training_size {
            self.integer("trainingSize", n as u64);
        }
    }
}
