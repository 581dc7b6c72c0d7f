//! The vecdex index file: one little-endian format for every index kind (`format.rs` documents
//! the layout), written atomically and read by a parser that validates every byte first.
//!
//! This crate knows bytes and sections, not indexes: the facade turns an index into a
//! configuration and sections (vectors, codes, graph levels and links, keys, tombstones,
//! codebooks) and back, checking the cross-field invariants of what it reads.

pub mod crc;
pub mod error;
pub mod file;
pub mod format;
pub mod read;
pub mod write;

pub use crc::{combine as crc32c_combine, crc32c, crc32c_portable, Crc32c};
pub use error::StoreError;
pub use file::{open_regular, save_target};
pub use format::{IndexKind, FORMAT_VERSION, MAGIC};
pub use read::{
    announced_header_len, parse, parse_layout, FileReader, Layout, Section, SectionEntry,
    StoredFile,
};
pub use write::{encode, save_atomic, save_file, FileHeader};
