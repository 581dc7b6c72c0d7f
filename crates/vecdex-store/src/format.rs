//! File format version 1. Little-endian throughout; every offset and length is in bytes.
//!
//! ```text
//! offset size  field
//!  0      8    magic "VECDEXIX"
//!  8      4    format version (1)
//! 12      4    header length H: bytes from 0 to the end of the header checksum
//! 16      1    index kind (1 flat, 2 HNSW, 3 multi-vector, 4 collection)
//! 17      1    metric (0 cosine, 1 dot, 2 l2sq, 3 hamming)
//! 18      2    reserved, 0
//! 20      4    dimensions
//! 24      8    count (vectors or documents)
//! 32      4    configuration length C
//! 36      4    section count S (at most MAX_SECTIONS)
//! 40      C    configuration bytes (kind-specific: graph, codec, FDE parameters, RNG version)
//! 40+C    pad  zeros up to a multiple of 64
//! T      32·S  section table, one entry per section:
//!                id u32, reserved u32 (0), offset u64, length u64, crc32c u32, reserved u32 (0)
//! T+32S   4    CRC-32C of bytes 0 .. T+32S
//! H       …    section payloads at their offsets: each 64-byte aligned, in table order, after the
//!              header, not overlapping, zero padding between them, the file ending at the end of
//!              the last one.
//! ```
//!
//! Every byte of a valid file is covered by a checksum or must be zero, so any change to a file
//! is detected. A file never changes once written (saves write a new file and rename it over the
//! old one), which is what lets an index later be a set of immutable segment files plus a small
//! manifest, with deletes in a separate small file.

/// First eight bytes of every vecdex index file.
pub const MAGIC: [u8; 8] = *b"VECDEXIX";
/// The version this build writes; it reads every version up to this one.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the configuration.
pub const FIXED_HEADER: usize = 40;
/// Bytes per section-table entry.
pub const SECTION_ENTRY: usize = 32;
/// Sections per file, at most (a corrupt count must not make the reader allocate much).
pub const MAX_SECTIONS: usize = 256;
/// Configuration bytes, at most.
pub const MAX_CONFIG: usize = 1 << 20;
/// Payload alignment: a cache line, so vectors read in place from a memory-mapped file (a
/// view) start on cache-line boundaries as they do in memory.
pub const ALIGN: usize = 64;

/// What kind of index a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Flat = 1,
    Hnsw = 2,
    MultiVector = 3,
    /// A collection: an index of kind 1 or 2 nested in a section, with item ids, texts and
    /// metadata beside it.
    Collection = 4,
}

impl IndexKind {
    /// The name in messages: "flat", "HNSW" or "multi-vector".
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Flat => "flat",
            IndexKind::Hnsw => "HNSW",
            IndexKind::MultiVector => "multi-vector",
            IndexKind::Collection => "collection",
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(IndexKind::Flat),
            2 => Some(IndexKind::Hnsw),
            3 => Some(IndexKind::MultiVector),
            4 => Some(IndexKind::Collection),
            _ => None,
        }
    }
}

/// Rounds `n` up to a multiple of [`ALIGN`], or `None` on overflow.
pub fn aligned(n: usize) -> Option<usize> {
    n.checked_add(ALIGN - 1).map(|m| m / ALIGN * ALIGN)
}
