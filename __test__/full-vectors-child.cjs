// Helper process of full-vectors.spec.ts (not a spec itself): adds batches to an HNSW index
// whose full vectors are on disk and saves it after each batch, until the spec kills it.
// argv[2]: JSON { dir, batch }. Loads dir/index.vdx when it exists (continuing an earlier
// run's file), else creates it. Prints "saved <size>" after each save returns.
const fs = require('node:fs')
const path = require('node:path')
const { HnswIndex } = require('../dist/index.js')

const DIM = 32

/** The vector of `key`: a function of the key alone, so the spec can check what it loads. */
function vectorOf(key) {
  const out = new Float32Array(DIM)
  let x = (key * 2654435761) >>> 0
  for (let i = 0; i < DIM; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    out[i] = x / 2 ** 32 - 0.5
  }
  return out
}

async function main() {
  const { dir, batch } = JSON.parse(process.argv[2])
  const file = path.join(dir, 'index.vdx')
  const index = fs.existsSync(file)
    ? HnswIndex.loadSync(file)
    : new HnswIndex({ dimensions: DIM, metric: 'l2sq', quantization: 'sq8', trainingSize: 100, fullVectors: { path: path.join(dir, 'rows.vdr') } })
  for (let round = 0; ; round++) {
    const first = index.size
    const keys = Array.from({ length: batch }, (_, i) => first + i)
    const rows = new Float32Array(batch * DIM)
    keys.forEach((key, i) => rows.set(vectorOf(key), i * DIM))
    if (round % 2 === 0) index.addSync(keys, rows)
    else await index.add(keys, rows)
    if (round % 2 === 0) index.saveSync(file)
    else await index.save(file)
    process.stdout.write(`saved ${index.size}\n`)
  }
}

if (require.main === module) main()
module.exports = { vectorOf, DIM }
