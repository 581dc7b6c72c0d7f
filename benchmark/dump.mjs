// Writes a benchmark dataset's base and query vectors as raw little-endian f32 files, for the
// Rust development harnesses (crates/vecdex/examples/hnsw_sweep.rs, hnsw_sq8.rs).
//
//   node benchmark/dump.mjs glove-100k /tmp    → /tmp/glove-100k.base.f32, /tmp/glove-100k.queries.f32

import fs from 'node:fs'
import path from 'node:path'
import { loadDataset } from './datasets.mjs'

const [name, dir = '.'] = process.argv.slice(2)
if (!name) {
  console.error('usage: node benchmark/dump.mjs <dataset> [directory]')
  process.exit(2)
}
const d = await loadDataset(name, { log: (msg) => console.error(msg) })
for (const [part, data] of [['base', d.base], ['queries', d.queries]]) {
  fs.writeFileSync(path.join(dir, `${name}.${part}.f32`), new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
}
console.log(`${name}: ${d.n} base and ${d.q} query vectors of ${d.dim} dimensions (${d.metric}) written to ${dir}`)
