// Helper process of memory-limit.spec.ts (not a spec itself): runs one case under the
// address-space limit its parent set (ulimit -v), so that an allocation of several GiB fails
// on any machine. A case asks for such a buffer through a public entry point; an abort kills
// this process, a typed error does not. Then the process proves it still works.
//
// argv[2]: the case name. VECDEX_DIST: the package entry to test (default ../dist/index.js).
// Prints JSON { code, message, alive } (code undefined when the call succeeded).
const path = require('node:path')
const v = require(process.env.VECDEX_DIST ?? path.resolve(__dirname, '../dist/index.js'))

/** `count` clouds of `tokens` tokens, each (1, 0, …) of `dim` values. */
function clouds(count, tokens, dim) {
  const token = Array.from({ length: dim }, (_, i) => (i === 0 ? 1 : 0))
  return Array.from({ length: count }, () => Array.from({ length: tokens }, () => token))
}

/** The same clouds as one CSR batch. */
function batch(count, tokens, dim) {
  const flat = new Float32Array(count * tokens * dim)
  for (let i = 0; i < flat.length; i += dim) flat[i] = 1
  return { tokens: flat, offsets: Uint32Array.from({ length: count + 1 }, (_, i) => i * tokens) }
}

const keys = (count) => Array.from({ length: count }, (_, i) => i + 1)
const encoder = (dimension, fde) => new v.FdeEncoder({ dimensions: dimension, ...fde })
/** A multi-vector index whose encodings have 65,536 values (one 65,536-value block). */
const wide = () => new v.MultiVectorIndex({ dimensions: 4, metric: 'dot', fde: { numRepetitions: 1, numSimhashProjections: 0, projectionDimension: 65536 } })
const k24 = { numRepetitions: 1, numSimhashProjections: 24, projectionDimension: 1 }
const block24 = { numRepetitions: 1, numSimhashProjections: 0, projectionDimension: 1 << 24 }
const final24 = { numRepetitions: 2, numSimhashProjections: 8, projectionDimension: 16, finalProjectionDimension: 1 << 24 }


/** CRC-32C (Castagnoli), as the file format checksums its header. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  return c >>> 0
})
function crc32c(bytes) {
  let crc = 0xffffffff
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

/**
 * Saves `index` to a scratch file, then rewrites it so that the sections in `grow` (id →
 * bytes) announce those lengths (and the header `count` vectors, if given), with offsets and
 * header checksum fixed: the layout checks pass, and the grown sections are holes of a sparse
 * file (no disk used). Loading must then allocate them before it can read them.
 */
function inflated(index, grow, count) {
  const fs = require('node:fs')
  const os = require('node:os')
  const file = path.join(os.tmpdir(), `vecdex-memory-limit-${process.pid}.vdx`)
  index.saveSync(file)
  const bytes = fs.readFileSync(file)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLen = view.getUint32(12, true)
  const sectionCount = view.getUint32(36, true)
  const head = Buffer.from(bytes.subarray(0, headerLen))
  const headView = new DataView(head.buffer, head.byteOffset, head.byteLength)
  if (count !== undefined) headView.setBigUint64(24, BigInt(count), true)
  const table = headerLen - 4 - 32 * sectionCount
  let end = headerLen
  const kept = []
  for (let i = 0; i < sectionCount; i++) {
    const at = table + 32 * i
    const id = headView.getUint32(at, true)
    const oldOffset = Number(headView.getBigUint64(at + 8, true))
    const oldLen = Number(headView.getBigUint64(at + 16, true))
    const offset = Math.ceil(end / 64) * 64
    const len = grow[id] ?? oldLen
    headView.setBigUint64(at + 8, BigInt(offset), true)
    headView.setBigUint64(at + 16, BigInt(len), true)
    if (grow[id] === undefined) kept.push([offset, bytes.subarray(oldOffset, oldOffset + oldLen)])
    end = offset + len
  }
  headView.setUint32(headerLen - 4, crc32c(head.subarray(0, headerLen - 4)), true)
  const fd = fs.openSync(file, 'w')
  fs.writeSync(fd, head, 0, head.length, 0)
  for (const [offset, payload] of kept) fs.writeSync(fd, payload, 0, payload.length, offset)
  fs.ftruncateSync(fd, end)
  fs.closeSync(fd)
  process.on('exit', () => fs.rmSync(file, { force: true }))
  return file
}

const GIB = 2 ** 30
// Section ids of the file format (crates/vecdex/src/persist.rs).
const KEYS = 1
const VECTORS = 2
const UPPER = 5
/** A file of a one-vector FlatIndex announcing `count` vectors (8 + 4 bytes each). */
function bigFlatFile(count) {
  const index = new v.FlatIndex({ dimensions: 1, metric: 'l2sq' })
  index.addSync([7], new Float32Array([0.5]))
  return inflated(index, { [KEYS]: 8 * count, [VECTORS]: 4 * count }, count)
}
/** A file of a small HnswIndex announcing `bytes` of upper-layer links. */
function bigHnswFile(bytes) {
  const index = new v.HnswIndex({ dimensions: 4, metric: 'l2sq' })
  index.addSync(keys(16), Float32Array.from({ length: 64 }, (_, i) => i % 7))
  return inflated(index, { [UPPER]: bytes })
}
/** An HnswIndex of `m` and a batch of `count` vectors whose graph (2m + 1 words a node) does
 *  not fit. */
function hnswBatch(m, count) {
  const index = new v.HnswIndex({ dimensions: 4, metric: 'l2sq', m })
  const ids = BigUint64Array.from({ length: count }, (_, i) => BigInt(i))
  return { index, ids, vectors: new Float32Array(count * 4).fill(0.25) }
}

const CASES = {
  // FdeEncoder: 100 encodings of 2^24 values (6.7 GB), the example.
  'fde k24 sync': () => encoder(4, k24).encodeDocumentsSync(clouds(100, 1, 4)),
  'fde k24 async': () => encoder(4, k24).encodeDocuments(clouds(100, 1, 4)),
  'fde k24 queries async': () => encoder(4, k24).encodeQueries(clouds(100, 1, 4)),
  // One cloud of 100 tokens projected to 2^24 values each (6.7 GB of scratch).
  'fde block sync': () => encoder(4, block24).encodeDocument(clouds(1, 100, 4)[0]),
  'fde block query sync': () => encoder(4, block24).encodeQuery(clouds(1, 100, 4)[0]),
  'fde block async': () => encoder(4, block24).encodeDocuments(clouds(1, 100, 4)),
  // Final projection to 2^24 values, 100 clouds.
  'fde final sync': () => encoder(4, final24).encodeQueriesSync(clouds(100, 1, 4)),
  'fde final async': () => encoder(4, final24).encodeDocuments(clouds(100, 1, 4)),
  // MultiVectorIndex: 40,000 encodings of 65,536 values (10 GB); a document or a query of
  // 40,000 tokens projected to 65,536 values each (10 GB).
  'multi add many sync': () => wide().addSync(keys(40000), clouds(40000, 1, 4)),
  'multi add many async': () => wide().add(keys(40000), clouds(40000, 1, 4)),
  'multi add long sync': () => wide().addSync([1], clouds(1, 40000, 4)),
  'multi add long async': () => wide().add([1], clouds(1, 40000, 4)),
  'multi search long sync': () => {
    const index = wide()
    index.addSync([1], clouds(1, 1, 4))
    return index.searchSync(clouds(1, 40000, 4)[0], { k: 1 })
  },
  'multi search long async': async () => {
    const index = wide()
    await index.add([1], clouds(1, 1, 4))
    return index.searchBatch(batch(1, 40000, 4), { k: 1 })
  },
  // An exact search pads each query to 16 tokens: 40,000 one-token queries of 1,024 values
  // (160 MiB) need 2.6 GB prepared.
  'multi exact many queries sync': () => {
    const index = new v.MultiVectorIndex({ dimensions: 1024, metric: 'dot' })
    index.addSync([1], clouds(1, 1, 1024))
    return index.searchExactBatchSync(batch(40000, 1, 1024), { k: 1 })
  },
  'multi exact many queries async': async () => {
    const index = new v.MultiVectorIndex({ dimensions: 1024, metric: 'dot' })
    await index.add([1], clouds(1, 1, 1024))
    return index.searchExactBatch(batch(40000, 1, 1024), { k: 1 })
  },
  // PCA of 65,536 dimensions: a 65,536² matrix of f64 (32 GiB).
  'pca flat sync': () => new v.FlatIndex({ dimensions: 65536, metric: 'l2sq', pcaDimensions: 8 }).trainSync(new Float32Array(4 * 65536).map((_, i) => i % 13)),
  'pca hnsw async': () => new v.HnswIndex({ dimensions: 65536, metric: 'dot', pcaDimensions: 8 }).train(new Float32Array(4 * 65536).map((_, i) => i % 7)),
  // Index files larger than memory (sparse): 2^30 and 2^31 vectors of a FlatIndex (12 GiB and
  // 24 GiB), 4 and 64 GiB of HnswIndex upper layers.
  'flat load 2^30 sync': () => v.FlatIndex.loadSync(bigFlatFile(2 ** 30)),
  'flat load 2^31 async': () => v.FlatIndex.load(bigFlatFile(2 ** 31)),
  'hnsw load 4 GiB sync': () => v.HnswIndex.loadSync(bigHnswFile(4 * GIB)),
  'hnsw load 64 GiB async': () => v.HnswIndex.load(bigHnswFile(64 * GIB)),
  // HnswIndex adds whose graph does not fit: 2^21 nodes of 513 link words (4.3 GB), 2^22 of
  // 257 (4.3 GB).
  'hnsw add m256 sync': () => {
    const { index, ids, vectors } = hnswBatch(256, 2 ** 21)
    index.addSync(ids, vectors)
  },
  'hnsw add m128 async': async () => {
    const { index, ids, vectors } = hnswBatch(128, 2 ** 22)
    await index.add(ids, vectors)
  },
  // A huge k sizes nothing: every document comes back (no error at all).
  'multi exact huge k sync': () => {
    const index = new v.MultiVectorIndex({ dimensions: 4, metric: 'dot' })
    index.addSync(keys(3), clouds(3, 2, 4))
    return index.searchExactBatchSync(batch(2, 1, 4), { k: 2 ** 32 - 1 })
  },
  'multi exact huge k async': async () => {
    const index = new v.MultiVectorIndex({ dimensions: 4, metric: 'dot' })
    await index.add(keys(3), clouds(3, 2, 4))
    return index.searchExact(clouds(1, 2, 4)[0], { k: 2 ** 32 - 1 })
  },
}

/** Work that must still succeed after the case: the process is alive and usable. */
async function alive() {
  const out = await encoder(4, {}).encodeDocuments(clouds(3, 2, 4))
  const index = new v.MultiVectorIndex({ dimensions: 4 })
  index.addSync([1, 2], clouds(2, 2, 4))
  return out.length === 3 * 10240 && index.searchSync(clouds(1, 1, 4)[0], { k: 1 }).counts[0] === 1
}

async function main() {
  const result = {}
  try {
    const answer = await CASES[process.argv[2]]()
    if (answer && typeof answer.k === 'number') result.k = answer.k
  } catch (error) {
    result.code = error.code
    result.message = String(error.message)
  }
  result.alive = await alive()
  process.stdout.write(JSON.stringify(result))
}

main()
