// Why a batch on 2 threads can show more than twice the benchmarks' "1 thread" rate: the same
// HNSW index searched by searchSync calls on the JS thread and by one batch call on the pool,
// in wall time and in process CPU time (which a shared machine's load does not change much).
// Run once per pool size, e.g.:
//
//   VECDEX_THREADS=1 node docs/measurements/sync-vs-batch.mjs
//   VECDEX_THREADS=2 node docs/measurements/sync-vs-batch.mjs
//
// The first run builds the index of glove-100k (m 16, efConstruction 128) and saves it in the
// OS temp folder; later runs load it.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HnswIndex, capabilities } from 'vecdex'
import { loadDataset } from '../../benchmark/datasets.mjs'

export const INDEX_FILE = path.join(os.tmpdir(), 'vecdex-glove100k-hnsw.vdx')

export async function gloveIndex(ds) {
  if (!fs.existsSync(INDEX_FILE)) {
    const index = new HnswIndex({ dimensions: ds.dim, metric: 'cosine', m: 16, efConstruction: 128 })
    await index.add(Uint32Array.from({ length: ds.n }, (_, i) => i), ds.base)
    await index.save(INDEX_FILE)
    index.close()
  }
  return HnswIndex.load(INDEX_FILE)
}

export const median = (values) => values.slice().sort((a, b) => a - b)[values.length >> 1]

if (import.meta.url === `file://${process.argv[1]}`) {
  const ds = loadDataset('glove-100k', { queries: 1000 })
  const { dim, q } = ds
  const index = await gloveIndex(ds)
  const rows = Array.from({ length: q }, (_, i) => ds.queries.subarray(i * dim, (i + 1) * dim))
  const options = { k: 10, efSearch: Number(process.env.EF ?? 64) }
  const modes = {
    sync: async () => {
      for (const row of rows) index.searchSync(row, options)
    },
    batch: async () => {
      await index.searchBatch(ds.queries, options)
    },
  }
  const wall = { sync: [], batch: [] }
  const cpu = { sync: [], batch: [] }
  for (const mode of Object.keys(modes)) await modes[mode]() // warm-up
  for (let run = 0; run < 7; run++) {
    for (const mode of Object.keys(modes)) {
      const c = process.cpuUsage()
      const start = performance.now()
      await modes[mode]()
      wall[mode].push(performance.now() - start)
      const d = process.cpuUsage(c)
      cpu[mode].push((d.user + d.system) / 1000)
    }
  }
  const out = { threads: capabilities().threads, efSearch: options.efSearch }
  for (const mode of Object.keys(modes)) {
    out[`${mode}Qps`] = Math.round(q / (median(wall[mode]) / 1000))
    out[`${mode}PerCpuSecond`] = Math.round(q / (median(cpu[mode]) / 1000))
  }
  console.log(JSON.stringify(out))
  index.close()
}
