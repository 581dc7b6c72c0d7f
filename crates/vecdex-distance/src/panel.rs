//! Blocked ("panel") storage of f32 vectors and the exact-scan kernels that run on it.
//!
//! Layout: vectors are grouped in blocks of [`LANES`] = 16. Block `b` holds vectors
//! `16b .. 16b+15`, dimension-major: element `k` of vector `16b + l` lives at
//! `rows[b * dim + k].0[l]`, each row being 16 f32 aligned to 64 bytes. Lanes past `len` are 0.
//!
//! This is the packed right-hand operand of a matrix product (as BLIS/GotoBLAS pack B panels,
//! Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication", 2008), kept packed
//! for the life of the index, so a scan never repacks: one SIMD load gives one dimension of 16
//! vectors, and a query element broadcast against it updates 16 dot products at once.
//!
//! The kernel computes an `R × (16·C)` tile of inner products (R query rows, C blocks) in
//! registers, turns it into distances, and compares 16 at a time against each query's current
//! top-k threshold, so selection costs one compare per 16 candidates in the common case.

use crate::dispatch::{KernelPath, SimdLevel};
use std::collections::TryReserveError;

/// Vectors per block: one AVX-512 register of f32.
pub const LANES: usize = 16;

/// One dimension of one block: 16 f32, cache-line aligned.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(64))]
pub struct LaneRow(pub [f32; LANES]);

/// f32 vectors in blocked layout (see module docs).
#[derive(Debug, Clone)]
pub struct PanelMatrix {
    dim: usize,
    len: usize,
    rows: Vec<LaneRow>,
}

impl PanelMatrix {
    /// An empty matrix of `dim`-dimensional vectors. `dim` must be > 0.
    pub fn new(dim: usize) -> Self {
        assert!(dim > 0, "PanelMatrix needs dim > 0");
        PanelMatrix {
            dim,
            len: 0,
            rows: Vec::new(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of blocks in use (the last may be partly filled).
    pub fn blocks(&self) -> usize {
        self.len.div_ceil(LANES)
    }

    /// Bytes held, including spare capacity.
    pub fn allocated_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<LaneRow>()
    }

    /// Makes room for `additional` more vectors without reallocating.
    pub fn reserve(&mut self, additional: usize) {
        let blocks = (self.len + additional).div_ceil(LANES);
        let needed = blocks * self.dim;
        self.rows.reserve(needed.saturating_sub(self.rows.len()));
    }

    /// [`Self::reserve`], failing (matrix unchanged) where that would abort: room for sizes that
    /// come from a caller (a batch, a file header) may not fit in memory.
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        let needed = self.rows_for(additional);
        self.rows
            .try_reserve(needed.saturating_sub(self.rows.len()))
    }

    /// Rows (blocks × dim) that `len + additional` vectors fill, saturating: a size past the
    /// address space then fails to reserve like any other that does not fit.
    fn rows_for(&self, additional: usize) -> usize {
        self.len
            .saturating_add(additional)
            .div_ceil(LANES)
            .saturating_mul(self.dim)
    }

    /// Vectors that fit without reallocating.
    pub fn capacity(&self) -> usize {
        self.rows.capacity() / self.dim * LANES
    }

    /// A copy with room for at least `additional` more vectors, so a caller can do the copying
    /// part of growing while others still read this one.
    pub fn copy_with_room(&self, additional: usize) -> Result<PanelMatrix, TryReserveError> {
        let mut rows = Vec::new();
        rows.try_reserve_exact(self.rows_for(additional))?;
        rows.extend_from_slice(&self.rows);
        Ok(PanelMatrix {
            dim: self.dim,
            len: self.len,
            rows,
        })
    }

    /// Appends a vector; returns its position.
    pub fn push(&mut self, vector: &[f32]) -> usize {
        assert_eq!(vector.len(), self.dim, "vector length must equal dim");
        let index = self.len;
        if index.is_multiple_of(LANES) {
            self.rows
                .resize((index / LANES + 1) * self.dim, LaneRow::default());
        }
        self.len += 1;
        self.set(index, vector);
        index
    }

    /// Overwrites vector `index`.
    pub fn set(&mut self, index: usize, vector: &[f32]) {
        assert!(index < self.len, "index out of range");
        assert_eq!(vector.len(), self.dim, "vector length must equal dim");
        let (block, lane) = (index / LANES, index % LANES);
        let rows = &mut self.rows[block * self.dim..(block + 1) * self.dim];
        for (row, value) in rows.iter_mut().zip(vector) {
            row.0[lane] = *value;
        }
    }

    /// Copies vector `index` into `out`.
    pub fn read(&self, index: usize, out: &mut [f32]) {
        assert!(index < self.len, "index out of range");
        let (block, lane) = (index / LANES, index % LANES);
        let rows = &self.rows[block * self.dim..(block + 1) * self.dim];
        for (value, row) in out.iter_mut().zip(rows) {
            *value = row.0[lane];
        }
    }

    pub fn vector(&self, index: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.read(index, &mut out);
        out
    }

    /// Removes vector `index` by moving the last vector into its place (O(dim)). Returns the old
    /// position of the moved vector, if one moved.
    pub fn swap_remove(&mut self, index: usize) -> Option<usize> {
        assert!(index < self.len, "index out of range");
        let last = self.len - 1;
        let moved = if index != last {
            let (lb, ll) = (last / LANES, last % LANES);
            let (ib, il) = (index / LANES, index % LANES);
            for k in 0..self.dim {
                self.rows[ib * self.dim + k].0[il] = self.rows[lb * self.dim + k].0[ll];
            }
            Some(last)
        } else {
            None
        };
        let (lb, ll) = (last / LANES, last % LANES);
        for k in 0..self.dim {
            self.rows[lb * self.dim + k].0[ll] = 0.0;
        }
        self.len = last;
        self.rows.truncate(self.blocks() * self.dim);
        moved
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.len = 0;
    }

    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
    }

    fn block_ptr(&self, block: usize) -> *const f32 {
        self.rows[block * self.dim..].as_ptr().cast()
    }
}

/// What a scan computes per (query, vector) pair.
///
/// `Expansion`: from inner products `s`, `d = column_bias[j] + row_bias[r] − scale·s` — one FMA
/// per element, the matrix-product form. Dot and cosine (on normalised vectors): bias 1,
/// scale 1 → `1 − s`. Squared L2 by expansion, `‖x‖² + ‖q‖² − 2s`, is possible too, but its
/// rounding grows with the norms and swamps small gaps far from the origin.
///
/// `DirectL2`: `d = Σ (qₖ − xₖ)²` — exact squared L2 at two operations per element.
#[derive(Debug, Clone, Copy)]
pub enum TileTransform<'a> {
    Expansion(Expansion<'a>),
    DirectL2,
}

#[derive(Debug, Clone, Copy)]
pub struct Expansion<'a> {
    /// Per stored vector, indexed like the matrix and padded with zeros to whole blocks
    /// (`blocks() * LANES` values); `None` means 0.
    pub column_bias: Option<&'a [f32]>,
    pub scale: f32,
}

/// Receives candidates that beat a query's threshold.
pub trait TileSink {
    /// Current threshold of query row `row` (candidates must be strictly below it to be offered).
    fn threshold(&self, row: usize) -> f32;
    /// Offers vector `index` at `distance` to query row `row`. `index` may be a padding lane
    /// (≥ the matrix length); sinks must ignore those.
    fn offer(&mut self, row: usize, index: usize, distance: f32);
}

/// A batch of query rows, row-major `count × dim`, with a per-row bias (see [`TileTransform`]).
#[derive(Debug, Clone, Copy)]
pub struct QueryRows<'a> {
    pub data: &'a [f32],
    pub row_bias: &'a [f32],
}

/// The kernel [`scan`] runs at `level` on this CPU: AVX-512 or AVX2 + FMA where the CPU has
/// them (x86-64 only), the portable loop otherwise. [`scan`] dispatches on this, so a report of
/// it cannot disagree with what runs.
pub fn scan_path(level: SimdLevel) -> KernelPath {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 if SimdLevel::detect() >= SimdLevel::Avx512 => KernelPath::Avx512,
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 | SimdLevel::Avx512 if SimdLevel::detect() >= SimdLevel::Avx2 => {
            KernelPath::Avx2Fma
        }
        _ => KernelPath::Portable,
    }
}

/// Scans blocks `blocks` of `matrix` against query rows `rows` (indices into `queries`),
/// offering every candidate below a row's threshold to `sink` with the row's index.
pub fn scan(
    level: SimdLevel,
    matrix: &PanelMatrix,
    queries: QueryRows<'_>,
    rows: std::ops::Range<usize>,
    blocks: std::ops::Range<usize>,
    transform: TileTransform<'_>,
    sink: &mut impl TileSink,
) {
    let dim = matrix.dim;
    assert!(
        queries.data.len() >= rows.end * dim,
        "query rows out of range"
    );
    assert!(queries.row_bias.len() >= rows.end, "row bias out of range");
    assert!(blocks.end <= matrix.blocks(), "blocks out of range");
    if let TileTransform::Expansion(Expansion {
        column_bias: Some(bias),
        ..
    }) = transform
    {
        assert!(
            bias.len() >= blocks.end * LANES,
            "column bias must cover whole blocks"
        );
    }
    let ctx = ScanContext {
        matrix,
        queries,
        transform,
    };
    match scan_path(level) {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => {
            // SAFETY: `scan_path` gives Avx512 only when the CPU supports AVX-512F; bounds were
            // asserted above.
            unsafe { x86::scan_avx512(&ctx, rows, blocks, sink) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => {
            // SAFETY: `scan_path` gives Avx2Fma only when the CPU supports AVX2 and FMA; bounds
            // asserted above.
            unsafe { x86::scan_avx2(&ctx, rows, blocks, sink) }
        }
        _ => scan_scalar(&ctx, rows, blocks, sink),
    }
}

struct ScanContext<'a> {
    matrix: &'a PanelMatrix,
    queries: QueryRows<'a>,
    transform: TileTransform<'a>,
}

/// Blocks per cache tile: keep the tile of the matrix being reused by successive query groups
/// within about 256 KiB (a fraction of L2 on current x86 and ARM cores).
fn blocks_per_tile(dim: usize) -> usize {
    let block_bytes = dim * std::mem::size_of::<LaneRow>();
    (256 * 1024 / block_bytes).max(1)
}

fn scan_scalar(
    ctx: &ScanContext<'_>,
    rows: std::ops::Range<usize>,
    blocks: std::ops::Range<usize>,
    sink: &mut impl TileSink,
) {
    let dim = ctx.matrix.dim;
    let mut sums = [0f32; LANES];
    for block in blocks {
        let panel = &ctx.matrix.rows[block * dim..(block + 1) * dim];
        for row in rows.clone() {
            let query = &ctx.queries.data[row * dim..(row + 1) * dim];
            sums.fill(0.0);
            let direct = matches!(ctx.transform, TileTransform::DirectL2);
            for (q, lane_row) in query.iter().zip(panel) {
                for (s, x) in sums.iter_mut().zip(&lane_row.0) {
                    if direct {
                        *s += (q - x) * (q - x);
                    } else {
                        *s += q * x;
                    }
                }
            }
            let threshold = sink.threshold(row);
            for (lane, s) in sums.iter().enumerate() {
                let index = block * LANES + lane;
                let distance = match ctx.transform {
                    TileTransform::DirectL2 => *s,
                    TileTransform::Expansion(e) => {
                        e.column_bias.map_or(0.0, |b| b[index]) + ctx.queries.row_bias[row]
                            - e.scale * s
                    }
                };
                if distance < threshold {
                    sink.offer(row, index, distance);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{blocks_per_tile, ScanContext, TileSink, TileTransform, LANES};
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// Query rows per AVX-512 micro-kernel: 8 rows × 2 blocks = 16 accumulators of 32 registers.
    const ROWS_512: usize = 8;
    /// Query rows per AVX2 micro-kernel: 6 rows × 2 registers = 12 accumulators of 16.
    const ROWS_256: usize = 6;
    /// Query rows per packed group (the AVX-512 kernel's row count).
    const PACK: usize = ROWS_512;

    /// The scanned query rows repacked in groups of [`PACK`], dimension-major inside a group:
    /// value `k` of row `first + g·PACK + r` is at `data[(g·dim + k)·PACK + r]`. The kernel then
    /// broadcasts a group's 8 values for one dimension from one cache line with constant
    /// offsets, instead of from 8 rows `dim` floats apart (BLIS packs its A panels likewise).
    pub(super) struct PackedRows {
        first: usize,
        dim: usize,
        data: Vec<f32>,
    }

    impl PackedRows {
        /// Where row `row`'s values start: its group's data plus its place in the group, so
        /// value `k` of row `row + r` is at offset `k·PACK + r` (for rows in the same group).
        fn group_ptr(&self, row: usize) -> *const f32 {
            let (group, r) = ((row - self.first) / PACK, (row - self.first) % PACK);
            self.data[group * self.dim * PACK + r..].as_ptr()
        }
    }

    pub(super) fn pack_rows(ctx: &ScanContext<'_>, rows: &Range<usize>) -> PackedRows {
        let dim = ctx.matrix.dim;
        let groups = rows.len().div_ceil(PACK);
        let mut data = vec![0f32; groups * dim * PACK];
        for (i, row) in rows.clone().enumerate() {
            let (group, r) = (i / PACK, i % PACK);
            let values = &ctx.queries.data[row * dim..(row + 1) * dim];
            for (k, value) in values.iter().enumerate() {
                data[(group * dim + k) * PACK + r] = *value;
            }
        }
        PackedRows {
            first: rows.start,
            dim,
            data,
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scan_avx512(
        ctx: &ScanContext<'_>,
        rows: Range<usize>,
        blocks: Range<usize>,
        sink: &mut impl TileSink,
    ) {
        let tile = blocks_per_tile(ctx.matrix.dim);
        let direct = matches!(ctx.transform, TileTransform::DirectL2);
        // Direct L2 holds a difference register per block as well: fewer rows per kernel.
        let max_rows = if direct { 4 } else { ROWS_512 };
        let packed = pack_rows(ctx, &rows);
        let mut tile_start = blocks.start;
        while tile_start < blocks.end {
            let tile_end = (tile_start + tile).min(blocks.end);
            let mut row = rows.start;
            while row < rows.end {
                let take = (rows.end - row).min(max_rows);
                let mut block = tile_start;
                while block < tile_end {
                    let left = tile_end - block;
                    // Blocks per kernel call: 8 query rows share 2 blocks (16 accumulators); one
                    // row keeps 8 (or 4) blocks in flight so independent accumulator chains hide
                    // the FMA latency; other row counts take one block.
                    let step = match take {
                        8 if !direct && left >= 2 => 2,
                        4 if direct && left >= 2 => 2,
                        1 if left >= 8 => 8,
                        1 if left >= 4 => 4,
                        _ => 1,
                    };
                    // SAFETY: rows row..row+take and blocks block..block+step are in range
                    // (asserted by `scan`, and step ≤ left), and the caller guarantees AVX-512F.
                    unsafe {
                        match (direct, take, step) {
                            (false, 8, 2) => {
                                tile_512::<8, 2, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 8, _) => {
                                tile_512::<8, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 7, _) => {
                                tile_512::<7, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 6, _) => {
                                tile_512::<6, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 5, _) => {
                                tile_512::<5, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 4, _) => {
                                tile_512::<4, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 3, _) => {
                                tile_512::<3, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, 2, _) => {
                                tile_512::<2, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (false, _, 8) => {
                                tile_512::<1, 8, false>(ctx, &packed, row, block, sink)
                            }
                            (false, _, 4) => {
                                tile_512::<1, 4, false>(ctx, &packed, row, block, sink)
                            }
                            (false, _, _) => {
                                tile_512::<1, 1, false>(ctx, &packed, row, block, sink)
                            }
                            (true, 4, 2) => tile_512::<4, 2, true>(ctx, &packed, row, block, sink),
                            (true, 4, _) => tile_512::<4, 1, true>(ctx, &packed, row, block, sink),
                            (true, 3, _) => tile_512::<3, 1, true>(ctx, &packed, row, block, sink),
                            (true, 2, _) => tile_512::<2, 1, true>(ctx, &packed, row, block, sink),
                            (true, _, 8) => tile_512::<1, 8, true>(ctx, &packed, row, block, sink),
                            (true, _, 4) => tile_512::<1, 4, true>(ctx, &packed, row, block, sink),
                            (true, _, _) => tile_512::<1, 1, true>(ctx, &packed, row, block, sink),
                        }
                    }
                    block += step;
                }
                row += take;
            }
            tile_start = tile_end;
        }
    }

    /// R query rows × C blocks of inner products, then transform and threshold test. Query
    /// values come from `packed` (see [`pack_rows`]).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_512<const R: usize, const C: usize, const DIRECT: bool>(
        ctx: &ScanContext<'_>,
        packed: &PackedRows,
        row0: usize,
        block0: usize,
        sink: &mut impl TileSink,
    ) {
        let dim = ctx.matrix.dim;
        let panel = ctx.matrix.block_ptr(block0);
        let queries = packed.group_ptr(row0);
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        for k in 0..dim {
            let mut x = [_mm512_setzero_ps(); C];
            for (c, xc) in x.iter_mut().enumerate() {
                // SAFETY: block0 + c < blocks, so (c·dim + k) rows past the block start are in the
                // matrix; rows are 64-byte aligned.
                *xc = unsafe { _mm512_load_ps(panel.add((c * dim + k) * LANES)) };
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: kernels never straddle groups (row steps divide PACK), so the place in
                // the group plus r stays below PACK, and the group holds dim · PACK values.
                let q = _mm512_set1_ps(unsafe { *queries.add(k * PACK + r) });
                for c in 0..C {
                    acc_r[c] = if DIRECT {
                        let diff = _mm512_sub_ps(x[c], q);
                        _mm512_fmadd_ps(diff, diff, acc_r[c])
                    } else {
                        _mm512_fmadd_ps(q, x[c], acc_r[c])
                    };
                }
            }
        }
        let (scale, column_bias) = match ctx.transform {
            TileTransform::Expansion(e) => (e.scale, e.column_bias),
            TileTransform::DirectL2 => (0.0, None),
        };
        let scale = _mm512_set1_ps(scale);
        let mut spill = [0f32; LANES];
        for (r, acc_r) in acc.iter().enumerate() {
            let row = row0 + r;
            let threshold = _mm512_set1_ps(sink.threshold(row));
            let row_bias = _mm512_set1_ps(ctx.queries.row_bias[row]);
            for (c, acc_rc) in acc_r.iter().enumerate() {
                let first = (block0 + c) * LANES;
                let distance = if DIRECT {
                    *acc_rc
                } else {
                    let bias = match column_bias {
                        // SAFETY: `scan` asserted the bias covers whole blocks.
                        Some(b) => _mm512_add_ps(row_bias, unsafe {
                            _mm512_loadu_ps(b.as_ptr().add(first))
                        }),
                        None => row_bias,
                    };
                    _mm512_fnmadd_ps(scale, *acc_rc, bias)
                };
                let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(distance, threshold);
                if below != 0 {
                    // SAFETY: spill holds 16 f32.
                    unsafe { _mm512_storeu_ps(spill.as_mut_ptr(), distance) };
                    let mut bits = below;
                    while bits != 0 {
                        let lane = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        // The threshold may have dropped since the compare: re-check.
                        if spill[lane] < sink.threshold(row) {
                            sink.offer(row, first + lane, spill[lane]);
                        }
                    }
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scan_avx2(
        ctx: &ScanContext<'_>,
        rows: Range<usize>,
        blocks: Range<usize>,
        sink: &mut impl TileSink,
    ) {
        let tile = blocks_per_tile(ctx.matrix.dim);
        let direct = matches!(ctx.transform, TileTransform::DirectL2);
        let max_rows = if direct { 1 } else { ROWS_256 };
        let mut tile_start = blocks.start;
        while tile_start < blocks.end {
            let tile_end = (tile_start + tile).min(blocks.end);
            let mut row = rows.start;
            while row < rows.end {
                let take = (rows.end - row).min(max_rows);
                for block in tile_start..tile_end {
                    // SAFETY: as in scan_avx512; the caller guarantees AVX2 and FMA.
                    unsafe {
                        match (take, direct) {
                            (_, true) => tile_256::<1, true>(ctx, row, block, sink),
                            (6, false) => tile_256::<6, false>(ctx, row, block, sink),
                            (5, false) => tile_256::<5, false>(ctx, row, block, sink),
                            (4, false) => tile_256::<4, false>(ctx, row, block, sink),
                            (3, false) => tile_256::<3, false>(ctx, row, block, sink),
                            (2, false) => tile_256::<2, false>(ctx, row, block, sink),
                            _ => tile_256::<1, false>(ctx, row, block, sink),
                        }
                    }
                }
                row += take;
            }
            tile_start = tile_end;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_256<const R: usize, const DIRECT: bool>(
        ctx: &ScanContext<'_>,
        row0: usize,
        block: usize,
        sink: &mut impl TileSink,
    ) {
        let dim = ctx.matrix.dim;
        let panel = ctx.matrix.block_ptr(block);
        let queries = ctx.queries.data.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for k in 0..dim {
            // SAFETY: row k of this block is in the matrix and 64-byte aligned.
            let (lo, hi) = unsafe {
                let p = panel.add(k * LANES);
                (_mm256_load_ps(p), _mm256_load_ps(p.add(8)))
            };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: row0 + r < rows.end.
                let q = _mm256_set1_ps(unsafe { *queries.add((row0 + r) * dim + k) });
                if DIRECT {
                    let (dl, dh) = (_mm256_sub_ps(lo, q), _mm256_sub_ps(hi, q));
                    acc_r[0] = _mm256_fmadd_ps(dl, dl, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(dh, dh, acc_r[1]);
                } else {
                    acc_r[0] = _mm256_fmadd_ps(q, lo, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(q, hi, acc_r[1]);
                }
            }
        }
        let (scale, column_bias) = match ctx.transform {
            TileTransform::Expansion(e) => (e.scale, e.column_bias),
            TileTransform::DirectL2 => (0.0, None),
        };
        let scale = _mm256_set1_ps(scale);
        let first = block * LANES;
        let mut spill = [0f32; LANES];
        for (r, acc_r) in acc.iter().enumerate() {
            let row = row0 + r;
            let row_bias = _mm256_set1_ps(ctx.queries.row_bias[row]);
            for (half, acc_h) in acc_r.iter().enumerate() {
                let distance = if DIRECT {
                    *acc_h
                } else {
                    let bias = match column_bias {
                        // SAFETY: `scan` asserted the bias covers whole blocks.
                        Some(b) => _mm256_add_ps(row_bias, unsafe {
                            _mm256_loadu_ps(b.as_ptr().add(first + half * 8))
                        }),
                        None => row_bias,
                    };
                    _mm256_fnmadd_ps(scale, *acc_h, bias)
                };
                // SAFETY: spill holds 16 f32; half·8 + 8 ≤ 16.
                unsafe { _mm256_storeu_ps(spill.as_mut_ptr().add(half * 8), distance) };
            }
            let threshold = sink.threshold(row);
            for (lane, d) in spill.iter().enumerate() {
                if *d < threshold && *d < sink.threshold(row) {
                    sink.offer(row, first + lane, *d);
                }
            }
        }
    }
}
