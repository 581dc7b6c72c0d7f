//! `inspectIndexFile`: an index file's header, sections and settings, without loading it.

use napi::bindgen_prelude::{Either3, Object};
use napi::Env;
use napi_derive::napi;

use crate::error::{guarded, Result};
use crate::tasks;

/// One section of an index file.
#[napi(object)]
pub struct NativeSectionInfo {
    pub id: u32,
    /// What it holds: "keys", "vectors", "layer 0", … ("unknown" for ids this build does not use).
    pub name: String,
    /// Byte offset in the file.
    pub offset: f64,
    pub bytes: f64,
    pub crc: u32,
}

/// One setting the index was built with, named as its option.
#[napi(object)]
pub struct NativeSetting {
    pub name: String,
    /// Integers above 2^53 (seeds) are decimal strings.
    pub value: Either3<f64, String, bool>,
}

/// What `vecdex::inspect_file` reads from a file's header.
#[napi(object)]
pub struct NativeIndexFileInfo {
    pub format_version: u32,
    /// "flat", "hnsw" or "multiVector".
    pub kind: String,
    pub metric: String,
    pub dimensions: u32,
    pub count: f64,
    pub file_bytes: f64,
    pub header_bytes: f64,
    pub sections: Vec<NativeSectionInfo>,
    pub settings: Vec<NativeSetting>,
}

fn to_js(info: vecdex::FileInfo) -> NativeIndexFileInfo {
    const EXACT: u64 = 1 << 53;
    NativeIndexFileInfo {
        format_version: info.format_version,
        kind: info.kind.to_string(),
        metric: info.metric.name().to_string(),
        dimensions: info.dimensions as u32,
        count: info.count as f64,
        file_bytes: info.file_bytes as f64,
        header_bytes: info.header_bytes as f64,
        sections: info
            .sections
            .into_iter()
            .map(|s| NativeSectionInfo {
                id: s.id,
                name: s.name.to_string(),
                offset: s.offset as f64,
                bytes: s.bytes as f64,
                crc: s.crc32c,
            })
            .collect(),
        settings: info
            .settings
            .into_iter()
            .map(|(name, value)| NativeSetting {
                name,
                value: match value {
                    vecdex::Setting::Integer(n) if n <= EXACT => Either3::A(n as f64),
                    vecdex::Setting::Integer(n) => Either3::B(n.to_string()),
                    vecdex::Setting::Number(x) => Either3::A(x),
                    vecdex::Setting::Text(t) => Either3::B(t),
                    vecdex::Setting::Flag(b) => Either3::C(b),
                },
            })
            .collect(),
    }
}

/// Reads the header and section table of the index file at `path` (a few small reads).
#[napi]
pub fn inspect_index_file_sync(path: String) -> Result<NativeIndexFileInfo> {
    guarded(|| vecdex::inspect_file(std::path::Path::new(&path))).map(to_js)
}

/// Async twin of `inspectIndexFileSync`.
#[napi(ts_return_type = "Promise<NativeIndexFileInfo>")]
pub fn inspect_index_file<'env>(env: &'env Env, path: String) -> Result<Object<'env>> {
    tasks::spawn_file(
        env,
        move || vecdex::inspect_file(std::path::Path::new(&path)),
        |_, info| Ok(to_js(info)),
    )
}
