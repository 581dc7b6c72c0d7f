//! Reading a file image: every field is checked, with checked arithmetic, before anything in it
//! is trusted; a bad file is an error, never a panic, a huge allocation or a read out of bounds.

use crate::crc::crc32c;
use crate::error::StoreError;
use crate::format::{
    aligned, IndexKind, ALIGN, FIXED_HEADER, FORMAT_VERSION, MAGIC, MAX_CONFIG, MAX_SECTIONS,
    SECTION_ENTRY,
};
use crate::write::FileHeader;

/// One section of a parsed file.
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

/// Parses and validates a whole file image (see `format.rs` for every rule checked).
pub fn parse(bytes: &[u8]) -> Result<StoredFile<'_>, StoreError> {
    let corrupt = |m: String| Err(StoreError::Corrupt(m));
    if bytes.len() < 8 || bytes[..8] != MAGIC {
        return corrupt("not a vecdex index file (bad magic)".into());
    }
    if bytes.len() < FIXED_HEADER {
        return corrupt(format!(
            "{} bytes is shorter than the {FIXED_HEADER}-byte header",
            bytes.len()
        ));
    }
    let version = u32_at(bytes, 8);
    if version == 0 || version > FORMAT_VERSION {
        return Err(StoreError::Unsupported(format!(
            "index file format version {version}; this build reads versions 1 to {FORMAT_VERSION}"
        )));
    }
    let header_len = u32_at(bytes, 12) as usize;
    let config_len = u32_at(bytes, 32) as usize;
    let section_count = u32_at(bytes, 36) as usize;
    if config_len > MAX_CONFIG || section_count > MAX_SECTIONS {
        return corrupt(format!(
            "{config_len} configuration bytes or {section_count} sections exceed the limits"
        ));
    }
    // Small by the limits above: no overflow possible.
    let table = aligned(FIXED_HEADER + config_len).unwrap_or(usize::MAX);
    let expected_header = table + SECTION_ENTRY * section_count + 4;
    if header_len != expected_header {
        return corrupt(format!(
            "header length {header_len} does not match its contents ({expected_header} bytes)"
        ));
    }
    if header_len > bytes.len() {
        return corrupt(format!(
            "the file is {} bytes, shorter than its {header_len}-byte header (truncated?)",
            bytes.len()
        ));
    }
    let stored_crc = u32_at(bytes, header_len - 4);
    if crc32c(&bytes[..header_len - 4]) != stored_crc {
        return corrupt("header checksum mismatch".into());
    }
    let kind = IndexKind::from_byte(bytes[16]).ok_or_else(|| {
        StoreError::Unsupported(format!("index kind {} is unknown to this build", bytes[16]))
    })?;
    let metric = bytes[17];
    if metric > 3 {
        return corrupt(format!("metric code {metric} is not 0 to 3"));
    }
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
    let mut sections = Vec::with_capacity(section_count);
    let mut end = header_len;
    for i in 0..section_count {
        let entry = table + i * SECTION_ENTRY;
        let id = u32_at(bytes, entry);
        let offset = u64_at(bytes, entry + 8);
        let length = u64_at(bytes, entry + 16);
        let crc = u32_at(bytes, entry + 24);
        if u32_at(bytes, entry + 4) != 0 || u32_at(bytes, entry + 28) != 0 {
            return corrupt(format!("section entry {i}: reserved fields are not zero"));
        }
        if sections.iter().any(|s: &Section<'_>| s.id == id) {
            return corrupt(format!("section {id} appears twice"));
        }
        let (Ok(offset), Ok(length)) = (usize::try_from(offset), usize::try_from(length)) else {
            return corrupt(format!(
                "section {id}: offset or length does not fit in memory"
            ));
        };
        let Some(stop) = offset.checked_add(length) else {
            return corrupt(format!("section {id}: offset + length overflows"));
        };
        let padded_end = aligned(end).unwrap_or(usize::MAX);
        if offset % ALIGN != 0 || offset != padded_end || stop > bytes.len() {
            return corrupt(format!(
                "section {id}: bytes {offset}..{stop} are not the next aligned range after {end} within the file ({} bytes)",
                bytes.len()
            ));
        }
        if bytes[end..offset].iter().any(|&b| b != 0) {
            return corrupt(format!("section {id}: padding before it is not zero"));
        }
        let payload = &bytes[offset..stop];
        if crc32c(payload) != crc {
            return corrupt(format!("section {id}: checksum mismatch"));
        }
        sections.push(Section { id, bytes: payload });
        end = stop;
    }
    if end != bytes.len() {
        return corrupt(format!(
            "{} bytes after the last section",
            bytes.len() - end
        ));
    }
    Ok(StoredFile {
        version,
        header,
        sections,
    })
}
