//! What the indexes share to become files and come back: the configuration encoding, section
//! ids, little-endian slice conversions, and reading files (whole, or memory-mapped).
//!
//! Every index kind writes a `vecdex-store` file (layout in `vecdex_store::format`): its
//! configuration bytes and sections are documented where each kind saves itself
//! (`hnsw_index/persist.rs`, `flat_index.rs`). A loader checks every cross-field invariant
//! before building anything, so a file that passes the checksums but lies (a crafted file)
//! is still an [`Error::CorruptFile`], never a panic or an out-of-bounds read.

use std::path::Path;

use vecdex_distance::Metric;

use vecdex_store::{FileHeader, FileReader, IndexKind};

use crate::compression::{Compression, Quantization, Reduction};
use crate::error::{Error, Result};
use crate::{PqConfig, SqConfig};

/// Section ids (stable across format versions; a kind uses the ones it needs).
pub(crate) mod section {
    /// u64 key per slot.
    pub const KEYS: u32 = 1;
    /// f32 vectors (layout per kind).
    pub const VECTORS: u32 = 2;
    /// One state byte per slot (kind-specific meaning).
    pub const SLOT_STATES: u32 = 3;
    /// HNSW layer-0 link words.
    pub const LAYER0: u32 = 4;
    /// HNSW upper-layer link words.
    pub const UPPER: u32 = 5;
    /// HNSW entry point: u64 node, or u64::MAX when empty.
    pub const ENTRY: u32 = 6;
    /// The trained compression model (see `compression.rs`).
    pub const CODEC_MODEL: u32 = 7;
    /// Compressed codes, `code_size` bytes per slot.
    pub const CODES: u32 = 8;
    /// A multi-vector index's FDE graph: a whole nested HNSW file.
    pub const FDE_INDEX: u32 = 9;
    /// Multi-vector token values.
    pub const TOKENS: u32 = 10;
    /// Multi-vector document starts in the token values.
    pub const TOKEN_STARTS: u32 = 11;
    /// A collection's index: a whole nested flat or HNSW file, keyed by row.
    pub const COLLECTION_INDEX: u32 = 12;
    /// A collection's id of each row.
    pub const ITEM_IDS: u32 = 13;
    /// A collection's text of each row.
    pub const ITEM_TEXTS: u32 = 14;
    /// A collection's metadata JSON of each row.
    pub const ITEM_METADATA: u32 = 15;
    /// Full vectors kept in a file of their own (`fullVectors: { path }`): where it is, its
    /// id, the length referred to and the checksums (see `row_file.rs`).
    pub const FULL_VECTORS: u32 = 16;
    /// The row of each slot in that file (u32; `u32::MAX` for a slot that holds none).
    pub const SLOT_ROWS: u32 = 17;
}

/// `save`, `to_bytes`, `load` and `from_bytes` of an index type, the same for every kind, over
/// its own `write_file(&self, out)` (hands the header and sections to `out`) and
/// `from_source(&mut source)` (rebuilds the index from checked sections).
macro_rules! persist_methods {
    ($index:ty, $kind:expr) => {
        impl $index {
            /// Saves the index to `path` atomically: a temporary file in the same folder is
            /// written and fsynced, renamed over `path`, and the folder fsynced, so a crash or an
            /// error at any moment leaves the previous file at `path` intact.
            ///
            /// `path` must name a regular file or nothing yet: a FIFO, a device, a directory or
            /// a socket is an `Error::Io` and stays as it is. A symbolic link is written
            /// through: the file it (finally) points to is replaced atomically, the link stays.
            pub fn save(&self, path: &std::path::Path) -> $crate::error::Result<()> {
                self.write_file(|header, sections| {
                    vecdex_store::save_file(path, header, sections)
                        .map_err($crate::error::Error::from)
                })
            }

            /// The index as one file image in memory (what [`save`](Self::save) writes).
            pub fn to_bytes(&self) -> $crate::error::Result<Vec<u8>> {
                let mut out = Vec::new();
                self.write_file(|header, sections| {
                    out = vecdex_store::encode(header, sections)?;
                    Ok(())
                })?;
                Ok(out)
            }

            /// Loads an index saved by [`save`](Self::save), reading each section straight
            /// into the index's memory (large ones in parallel chunks) and checking every
            /// checksum and cross-field invariant before use, on vecdex's pool.
            ///
            /// `path` must be a regular file (or a symbolic link to one): anything else is an
            /// `Error::Io` before it is opened. The file is opened and its header checked on
            /// the calling thread, so no pool thread ever waits on a file that cannot be read.
            pub fn load(path: &std::path::Path) -> $crate::error::Result<Self> {
                let mut source = $crate::persist::file_source(path, $kind)?;
                $crate::threads::run(|| Self::from_source(&mut source))
            }

            /// Rebuilds an index from a file image after the same checks as
            /// [`load`](Self::load): a damaged or crafted image is an `Error::CorruptFile` (or
            /// `Error::UnsupportedFormat`), never a panic.
            pub fn from_bytes(bytes: &[u8]) -> $crate::error::Result<Self> {
                $crate::threads::run(|| {
                    Self::from_source(&mut $crate::persist::memory_source(bytes, $kind)?)
                })
            }
        }
    };
}
pub(crate) use persist_methods;

/// Metric code in files: 0 cosine, 1 dot, 2 l2sq, 3 hamming.
pub(crate) fn metric_code(metric: Metric) -> u8 {
    match metric {
        Metric::Cosine => 0,
        Metric::Dot => 1,
        Metric::L2sq => 2,
        Metric::Hamming => 3,
    }
}

pub(crate) fn metric_from_code(code: u8) -> Result<Metric> {
    match code {
        0 => Ok(Metric::Cosine),
        1 => Ok(Metric::Dot),
        2 => Ok(Metric::L2sq),
        3 => Ok(Metric::Hamming),
        _ => Err(corrupt(format!("metric code {code}"))),
    }
}

pub(crate) fn corrupt(message: impl Into<String>) -> Error {
    Error::CorruptFile(message.into())
}

/// Little-endian configuration bytes being written.
#[derive(Default)]
pub(crate) struct ConfigWriter(pub Vec<u8>);

impl ConfigWriter {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }
}

/// Reads configuration bytes; running short or leaving bytes over is a corrupt file.
pub(crate) struct ConfigReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> ConfigReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        ConfigReader { bytes, at: 0 }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.at + N;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| corrupt("the configuration is shorter than its fields"))?;
        self.at = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// The next `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8]> {
        let slice = self
            .at
            .checked_add(len)
            .and_then(|end| self.bytes.get(self.at..end))
            .ok_or_else(|| corrupt("the configuration is shorter than its fields"))?;
        self.at += len;
        Ok(slice)
    }
    /// A u64 that must fit in usize.
    pub fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| corrupt("a size does not fit in memory"))
    }
    pub fn finish(self) -> Result<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(corrupt(format!(
                "{} configuration bytes left over",
                self.bytes.len() - self.at
            )))
        }
    }
}

/// Writes a [`Compression`]: quantization tag and its parameters, reduction tag and size,
/// oversample (0 = default), training size (0 = default), and the codec model version.
///
/// ```text
/// u8 quantization: 0 none, 1 f16, 2 bf16, 3 sq8, 4 sq4, 5 binary, 6 pq, 7 rabitq (1 bit),
///   8 rabitq (extended)
///   sq8/sq4: f64 clipQuantile, u8 symmetric     pq: u64 subspaces, u64 iterations, u64 seed
///   extended rabitq: u8 bits
/// u8 reduction: 0 none, 1 prefix, 2 pca;  u64 dimensions (0 for none)
/// u64 oversample (0 = codec default);  u64 trainingSize (0 = default)
/// u32 model version (vecdex_quant::MODEL_VERSION)
/// ```
pub(crate) fn write_compression(out: &mut ConfigWriter, c: &Compression) {
    match c.quantization {
        Quantization::None => out.u8(0),
        Quantization::F16 => out.u8(1),
        Quantization::Bf16 => out.u8(2),
        Quantization::Sq8(sq) | Quantization::Sq4(sq) => out
            .u8(if matches!(c.quantization, Quantization::Sq8(_)) {
                3
            } else {
                4
            })
            .f64(sq.clip_quantile)
            .u8(u8::from(sq.symmetric)),
        Quantization::Binary => out.u8(5),
        Quantization::Pq(pq) => out
            .u8(6)
            .u64(pq.subspaces as u64)
            .u64(pq.iterations as u64)
            .u64(pq.seed),
        Quantization::Rabitq { bits: 1 } => out.u8(7),
        Quantization::Rabitq { bits } => out.u8(8).u8(bits),
    };
    let (tag, dims) = match c.reduction {
        Reduction::None => (0, 0),
        Reduction::Prefix(n) => (1, n),
        Reduction::Pca(n) => (2, n),
    };
    out.u8(tag)
        .u64(dims as u64)
        .u64(c.oversample.unwrap_or(0) as u64)
        .u64(c.training_size.unwrap_or(0) as u64)
        .u32(vecdex_quant::MODEL_VERSION);
}

/// Reads what [`write_compression`] wrote and checks it against `dim` as a new index would.
pub(crate) fn read_compression(input: &mut ConfigReader<'_>, dim: usize) -> Result<Compression> {
    let sq = |input: &mut ConfigReader<'_>| -> Result<SqConfig> {
        let clip_quantile = input.f64()?;
        let symmetric = match input.u8()? {
            0 => false,
            1 => true,
            b => return Err(corrupt(format!("symmetric flag {b}"))),
        };
        Ok(SqConfig {
            clip_quantile,
            symmetric,
        })
    };
    let quantization = match input.u8()? {
        0 => Quantization::None,
        1 => Quantization::F16,
        2 => Quantization::Bf16,
        3 => Quantization::Sq8(sq(input)?),
        4 => Quantization::Sq4(sq(input)?),
        5 => Quantization::Binary,
        6 => Quantization::Pq(PqConfig {
            subspaces: input.usize()?,
            iterations: input.usize()?,
            seed: input.u64()?,
        }),
        7 => Quantization::Rabitq { bits: 1 },
        8 => match input.u8()? {
            bits if bits > 1 && vecdex_quant::rabitq::EXTENDED_BITS.contains(&bits) => {
                Quantization::Rabitq { bits }
            }
            bits => return Err(corrupt(format!("rabitq bits {bits}"))),
        },
        t => return Err(corrupt(format!("quantization tag {t}"))),
    };
    let reduction = match (input.u8()?, input.usize()?) {
        (0, 0) => Reduction::None,
        (1, n) => Reduction::Prefix(n),
        (2, n) => Reduction::Pca(n),
        (t, n) => return Err(corrupt(format!("reduction tag {t} with {n} dimensions"))),
    };
    let optional = |n: usize| (n != 0).then_some(n);
    let compression = Compression {
        quantization,
        reduction,
        oversample: optional(input.usize()?),
        training_size: optional(input.usize()?),
    };
    let model_version = input.u32()?;
    if model_version != vecdex_quant::MODEL_VERSION {
        return Err(Error::UnsupportedFormat(format!(
            "codec model version {model_version}; this build reads version {}",
            vecdex_quant::MODEL_VERSION
        )));
    }
    compression
        .check(dim)
        .map_err(|e| corrupt(format!("compression settings: {e}")))?;
    Ok(compression)
}

/// Little-endian bytes of a slice of plain numbers, borrowed where the machine is
/// little-endian (every platform we ship), copied otherwise.
pub(crate) trait LeBytes: Copy {
    const SIZE: usize;
    #[cfg_attr(target_endian = "little", allow(dead_code))] // big-endian machines only
    fn put(self, out: &mut Vec<u8>);
    /// The value whose little-endian bytes are this value's memory.
    #[cfg_attr(target_endian = "little", allow(dead_code))] // big-endian machines only
    fn reread_as_le(self) -> Self;
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn reread_as_le(self) -> Self {
                <$t>::from_le_bytes(self.to_ne_bytes())
            }
        }
    )*};
}
le_bytes!(u32, u64, f32);

pub(crate) fn as_le_bytes<T: LeBytes>(values: &[T]) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: `T` is u32, u64 or f32 (no padding, every bit pattern valid as bytes), and on
        // a little-endian machine their memory is their little-endian encoding.
        std::borrow::Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        })
    }
    #[cfg(not(target_endian = "little"))]
    {
        let mut out = Vec::with_capacity(values.len() * T::SIZE);
        values.iter().for_each(|v| v.put(&mut out));
        std::borrow::Cow::Owned(out)
    }
}

/// Checks that a section holds exactly `count × size` bytes.
pub(crate) fn expect_len(bytes: &[u8], count: usize, size: usize, what: &str) -> Result<()> {
    if count.checked_mul(size) == Some(bytes.len()) {
        Ok(())
    } else {
        Err(corrupt(format!(
            "{what}: {} bytes, not {count} × {size}",
            bytes.len()
        )))
    }
}

/// Where a loader reads sections from: a file image already checked in memory, or a file
/// read section by section straight into the index's own buffers ([`FileReader`]).
pub(crate) trait SectionSource {
    fn header(&self) -> &FileHeader;
    /// Bytes of section `id`, if present.
    fn section_len(&self, id: u32) -> Option<usize>;
    /// Fills `out` (exactly the section's length) with section `id`, checksum checked.
    fn read_into(&mut self, id: u32, out: &mut [u8]) -> Result<()>;

    /// [`read_into`](Self::read_into) for `len` bytes at `out` that need not be initialised.
    ///
    /// # Safety
    /// `out` must be valid for writes of `len` bytes and unaliased during the call; on success
    /// all of them are written.
    unsafe fn read_into_uninit(&mut self, id: u32, out: *mut u8, len: usize) -> Result<()> {
        // SAFETY: the caller's contract; the bytes are zeroed, so initialised, before the slice.
        unsafe {
            std::ptr::write_bytes(out, 0, len);
            self.read_into(id, std::slice::from_raw_parts_mut(out, len))
        }
    }

    /// Section `id` in place in a read-only mapping, when the source is one (a view).
    fn mapped(&self, _id: u32) -> Option<crate::mapped::MappedRange> {
        None
    }

    /// Section `id` as a new vector, or `None` when absent (for small sections).
    fn read_vec(&mut self, id: u32) -> Result<Option<Vec<u8>>> {
        let Some(len) = self.section_len(id) else {
            return Ok(None);
        };
        // The length is checked against the file's, but the file (a sparse one, say) can still
        // be larger than the memory left.
        let mut out = crate::validate::try_filled(len, 0u8, "section bytes")?;
        self.read_into(id, &mut out)?;
        Ok(Some(out))
    }

    /// A section that must be present.
    fn required_vec(&mut self, id: u32, what: &str) -> Result<Vec<u8>> {
        self.read_vec(id)?
            .ok_or_else(|| corrupt(format!("the {what} section is missing")))
    }

    /// `count` little-endian values of a section that must hold exactly that many.
    fn required_values<T: LeBytes + Default + Clone>(
        &mut self,
        id: u32,
        count: usize,
        what: &str,
    ) -> Result<Vec<T>> {
        let bytes = count
            .checked_mul(T::SIZE)
            .ok_or_else(|| corrupt(format!("{what}: {count} values overflow")))?;
        match self.section_len(id) {
            None => return Err(corrupt(format!("the {what} section is missing"))),
            Some(len) if len != bytes => {
                return Err(corrupt(format!(
                    "{what}: {len} bytes, not {count} × {}",
                    T::SIZE
                )))
            }
            _ => {}
        }
        let mut values = crate::validate::try_filled(count, T::default(), what)?;
        self.read_into(id, as_bytes_mut(&mut values))?;
        from_le_in_place(&mut values);
        Ok(values)
    }
}

/// A file image in memory, parsed (every checksum checked) up front.
pub(crate) struct MemorySections<'a>(vecdex_store::StoredFile<'a>);

impl SectionSource for MemorySections<'_> {
    fn header(&self) -> &FileHeader {
        &self.0.header
    }
    fn section_len(&self, id: u32) -> Option<usize> {
        self.0.section(id).map(<[u8]>::len)
    }
    fn read_into(&mut self, id: u32, out: &mut [u8]) -> Result<()> {
        let bytes = self
            .0
            .section(id)
            .ok_or_else(|| corrupt(format!("section {id} is missing")))?;
        if bytes.len() != out.len() {
            return Err(corrupt(format!("section {id}: unexpected length")));
        }
        out.copy_from_slice(bytes);
        Ok(())
    }
}

impl SectionSource for FileReader {
    fn header(&self) -> &FileHeader {
        &self.layout().header
    }
    fn section_len(&self, id: u32) -> Option<usize> {
        self.layout().entry(id).map(|e| e.len)
    }
    fn read_into(&mut self, id: u32, out: &mut [u8]) -> Result<()> {
        FileReader::read_into(self, id, out).map_err(Error::from)
    }
    unsafe fn read_into_uninit(&mut self, id: u32, out: *mut u8, len: usize) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { FileReader::read_into_uninit(self, id, out, len) }.map_err(Error::from)
    }
}

/// Checks the kind of a source.
fn check_kind(header: &FileHeader, kind: IndexKind) -> Result<()> {
    if header.kind != kind {
        return Err(Error::invalid(format!(
            "the file holds a {} index, not a {} index",
            header.kind.name(),
            kind.name()
        )));
    }
    Ok(())
}

/// A file image in memory, checked whole, holding `kind`.
pub(crate) fn memory_source(bytes: &[u8], kind: IndexKind) -> Result<MemorySections<'_>> {
    let file = vecdex_store::parse(bytes)?;
    check_kind(&file.header, kind)?;
    Ok(MemorySections(file))
}

/// A file opened for reading section by section, holding `kind`.
pub(crate) fn file_source(path: &Path, kind: IndexKind) -> Result<FileReader> {
    let reader = FileReader::open(path)?;
    check_kind(&reader.layout().header, kind)?;
    Ok(reader)
}

/// The bytes of plain numbers, to read into.
pub(crate) fn as_bytes_mut<T: LeBytes>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: `T` is a plain number type (u32, u64 or f32: no padding, every bit pattern
    // valid), so its memory may be written as bytes.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(values),
        )
    }
}

/// Turns values read as little-endian bytes into machine order (nothing to do on
/// little-endian machines).
pub(crate) fn from_le_in_place<T: LeBytes>(values: &mut [T]) {
    #[cfg(not(target_endian = "little"))]
    for v in values.iter_mut() {
        *v = v.reread_as_le();
    }
    #[cfg(target_endian = "little")]
    let _ = values;
}
