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
const encoder = (dimension, fde) => new v.FdeEncoder({ dimension, ...fde })
/** A multi-vector index whose encodings have 65,536 values (one 65,536-value block). */
const wide = () => new v.MultiVectorIndex({ dimensions: 4, metric: 'dot', fde: { numRepetitions: 1, numSimhashProjections: 0, projectionDimension: 65536 } })
const k24 = { numRepetitions: 1, numSimhashProjections: 24, projectionDimension: 1 }
const block24 = { numRepetitions: 1, numSimhashProjections: 0, projectionDimension: 1 << 24 }
const final24 = { numRepetitions: 2, numSimhashProjections: 8, projectionDimension: 16, finalProjectionDimension: 1 << 24 }

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
    return index.search(batch(1, 40000, 4), { k: 1 })
  },
  // An exact search pads each query to 16 tokens: 40,000 one-token queries of 1,024 values
  // (160 MiB) need 2.6 GB prepared.
  'multi exact many queries sync': () => {
    const index = new v.MultiVectorIndex({ dimensions: 1024, metric: 'dot' })
    index.addSync([1], clouds(1, 1, 1024))
    return index.searchExactSync(batch(40000, 1, 1024), { k: 1 })
  },
  'multi exact many queries async': async () => {
    const index = new v.MultiVectorIndex({ dimensions: 1024, metric: 'dot' })
    await index.add([1], clouds(1, 1, 1024))
    return index.searchExact(batch(40000, 1, 1024), { k: 1 })
  },
  // PCA of 65,536 dimensions: a 65,536² matrix of f64 (32 GiB).
  'pca flat sync': () => new v.FlatIndex({ dimensions: 65536, metric: 'l2sq', pcaDimensions: 8 }).trainSync(new Float32Array(4 * 65536).map((_, i) => i % 13)),
  'pca hnsw async': () => new v.HnswIndex({ dimensions: 65536, metric: 'dot', pcaDimensions: 8 }).train(new Float32Array(4 * 65536).map((_, i) => i % 7)),
  // A huge k sizes nothing: every document comes back (no error at all).
  'multi exact huge k sync': () => {
    const index = new v.MultiVectorIndex({ dimensions: 4, metric: 'dot' })
    index.addSync(keys(3), clouds(3, 2, 4))
    return index.searchExactSync(batch(2, 1, 4), { k: 2 ** 32 - 1 })
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
