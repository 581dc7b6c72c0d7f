// What the ann suite's 1-thread mode costs vecdex by taking turns with another engine every 100
// queries: vecdex's searchSync chunks alone, and between chunks of hnswlib-node searches on its
// own HNSW index of the same data, in wall time and process CPU time of vecdex's chunks only.
//
//   VECDEX_THREADS=1 node docs/measurements/turn-taking.mjs
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadDataset } from '../../benchmark/datasets.mjs'
import { loadPeer } from '../../benchmark/adapters/common.mjs'
import { gloveIndex, median } from './sync-vs-batch.mjs'

const peer = loadPeer('hnswlib-node')
if (peer.error) throw new Error(peer.error)
const ds = loadDataset('glove-100k', { queries: 1000 })
const { dim, q, n } = ds
const file = path.join(os.tmpdir(), 'vecdex-glove100k-hnswlib.bin')
const other = new peer.module.HierarchicalNSW('cosine', dim)
if (fs.existsSync(file)) await other.readIndex(file)
else {
  other.initIndex(n, 16, 128, 100)
  for (let i = 0; i < n; i++) other.addPoint(Array.from(ds.base.subarray(i * dim, (i + 1) * dim)), i)
  await other.writeIndex(file)
}
other.setEf(64)
const index = await gloveIndex(ds)
const rows = Array.from({ length: q }, (_, i) => ds.queries.subarray(i * dim, (i + 1) * dim))
const arrays = rows.map((r) => Array.from(r))
const options = { k: 10, efSearch: 64 }

function run(turns) {
  let wall = 0
  let cpu = 0
  for (let from = 0; from < q; from += 100) {
    if (turns) for (let j = from; j < from + 100; j++) other.searchKnn(arrays[j], 10)
    const c = process.cpuUsage()
    const start = performance.now()
    const out = new Array(100)
    for (let j = from; j < from + 100; j++) out[j - from] = index.searchSync(rows[j], options)
    wall += performance.now() - start
    const d = process.cpuUsage(c)
    cpu += (d.user + d.system) / 1000
  }
  return { wall: q / (wall / 1000), cpu: q / (cpu / 1000) }
}

run(false)
run(true)
const alone = []
const turns = []
for (let r = 0; r < 7; r++) {
  alone.push(run(false))
  turns.push(run(true))
}
const pick = (list, key) => Math.round(median(list.map((x) => x[key])))
console.log(JSON.stringify({ aloneQps: pick(alone, 'wall'), turnsQps: pick(turns, 'wall'), alonePerCpuSecond: pick(alone, 'cpu'), turnsPerCpuSecond: pick(turns, 'cpu') }))
index.close()
