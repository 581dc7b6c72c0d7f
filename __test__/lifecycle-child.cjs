// Helper process of lifecycle.spec.ts (not a spec itself), run with --expose-gc so that the
// resident set and V8's external memory can be measured around a close or a collection
// without the test runner's own heap in the figures.
//
// argv[2]: the index kind (flat, hnsw, multi); argv[3]: how it is let go — 'close' (close()
// while the object stays referenced) or 'collect' (no close: the last reference is dropped and
// the garbage collector finalizes it). VECDEX_DIST: the package entry (default ../dist/index.js).
// Prints JSON { rss: [before, built, released], memoryBytes, closed }.
const path = require('node:path')
const v = require(process.env.VECDEX_DIST ?? path.resolve(__dirname, '../dist/index.js'))

const [kind, how] = process.argv.slice(2)

/** The resident set after full collections with turns of the event loop between them
 * (finalizers run there). */
async function settledRss() {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().rss
}

/** Deterministic values in [-1, 1) (mulberry32). */
function fill(out, seed) {
  let a = seed >>> 0
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1
  }
  return out
}

/** An index holding 50 to 150 MB (`batches` of them), filled from one small reused buffer so
 * that JS holds little. */
function build(batches) {
  if (kind === 'flat') {
    const dim = 512
    const index = new v.FlatIndex({ dimensions: dim, metric: 'l2sq' })
    const rows = new Float32Array(1000 * dim)
    for (let b = 0; b < 8 * batches; b++) index.addSync(Uint32Array.from({ length: 1000 }, (_, i) => b * 1000 + i), fill(rows, b + 1))
    return index
  }
  if (kind === 'hnsw') {
    // Wide rows and a light graph: the rows, not the build, make the size.
    const dim = 2048
    const index = new v.HnswIndex({ dimensions: dim, metric: 'l2sq', m: 4, efConstruction: 8 })
    const rows = new Float32Array(1000 * dim)
    for (let b = 0; b < batches; b++) index.addSync(Uint32Array.from({ length: 1000 }, (_, i) => b * 1000 + i), fill(rows, b + 1))
    return index
  }
  if (kind === 'multi') {
    const dim = 256
    const index = new v.MultiVectorIndex({ dimensions: dim, fde: { numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 8 } })
    const tokens = new Float32Array(100 * 100 * dim)
    const docs = Array.from({ length: 100 }, (_, i) => tokens.subarray(i * 100 * dim, (i + 1) * 100 * dim))
    for (let b = 0; b < batches; b++) index.addSync(Array.from({ length: 100 }, (_, i) => b * 100 + i), (fill(tokens, b + 1), docs))
    return index
  }
  throw new Error(`unknown kind ${kind}`)
}

async function main() {
  // A small index first: the thread pools, their allocator arenas and the JIT's code are then
  // in place before the baseline, so the figures hold only the index.
  build(1).close()
  const before = await settledRss()
  let index = build(6)
  const memoryBytes = index.memoryBytes
  const built = await settledRss()
  if (how === 'close') {
    index.close()
  } else if (how === 'collect') {
    index = null
  } else {
    throw new Error(`unknown way to let go: ${how}`)
  }
  const released = await settledRss()
  process.stdout.write(
    JSON.stringify({
      rss: [before, built, released],
      memoryBytes,
      closed: index?.closed ?? null,
    }) + '\n',
  )
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exit(1)
})
