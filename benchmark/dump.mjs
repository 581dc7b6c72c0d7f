// Writes a benchmark dataset's base and query vectors as raw little-endian f32 files, for the
// Rust development harnesses (crates/vecdex/examples/hnsw_sweep.rs, hnsw_sq8.rs, muvera*.rs).
//
//   node benchmark/dump.mjs glove-100k /tmp    → /tmp/glove-100k.base.f32, /tmp/glove-100k.queries.f32
//   node benchmark/dump.mjs wordnet-multivector /tmp
//                                              → /tmp/wn.{base,queries}.f32 (tokens) and .u32 (CSR offsets)

import fs from 'node:fs'
import path from 'node:path'
import { loadDataset } from './datasets.mjs'
import { loadWordnetMultivector } from './multivector-data.mjs'

const [name, dir = '.'] = process.argv.slice(2)
if (!name) {
  console.error('usage: node benchmark/dump.mjs <dataset> [directory]')
  process.exit(2)
}
if (name === 'wordnet-multivector') {
  const d = loadWordnetMultivector({ log: (msg) => console.error(msg) })
  for (const [part, set] of [['base', d.base], ['queries', d.queries]]) {
    fs.writeFileSync(path.join(dir, `wn.${part}.f32`), new Uint8Array(set.vectors.buffer, set.vectors.byteOffset, set.vectors.byteLength))
    fs.writeFileSync(path.join(dir, `wn.${part}.u32`), new Uint8Array(set.offsets.buffer, set.offsets.byteOffset, set.offsets.byteLength))
  }
  console.log(`${name}: ${d.base.count} documents and ${d.queries.count} queries written to ${dir}`)
  process.exit(0)
}
const d = await loadDataset(name, { log: (msg) => console.error(msg) })
for (const [part, data] of [['base', d.base], ['queries', d.queries]]) {
  fs.writeFileSync(path.join(dir, `${name}.${part}.f32`), new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
}
console.log(`${name}: ${d.n} base and ${d.q} query vectors of ${d.dim} dimensions (${d.metric}) written to ${dir}`)
