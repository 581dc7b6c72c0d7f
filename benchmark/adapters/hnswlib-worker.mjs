// One worker of the hnswlib-node exact adapter (hnswlib.mjs): hnswlib-node's BruteforceSearch
// searches one query per call on the calling thread, so the adapter runs one copy of the index
// per thread here. Messages (each answered with { id, ok, value | error }):
//   build   { space, dim, n, base }   builds this worker's BruteforceSearch from the rows
//   prepare { queries, dim }          converts this worker's share of the queries to number[]
//                                     rows (hnswlib-node takes JS arrays only), kept for search
//   search  { k }                     searches the prepared rows; value: Int32Array (rows × k)

import { parentPort } from 'node:worker_threads'
import { loadPeer } from './common.mjs'

const loaded = loadPeer('hnswlib-node')
let index = null
let rows = []

function handle(message) {
  switch (message.type) {
    case 'build': {
      if (loaded.error) throw new Error(loaded.error)
      const { space, dim, n, base } = message
      index = new loaded.module.BruteforceSearch(space, dim)
      index.initIndex(n)
      for (let i = 0; i < n; i++) index.addPoint(Array.from(base.subarray(i * dim, (i + 1) * dim)), i)
      return true
    }
    case 'prepare': {
      const { queries, dim } = message
      rows = Array.from({ length: queries.length / dim }, (_, i) => Array.from(queries.subarray(i * dim, (i + 1) * dim)))
      return rows.length
    }
    case 'search': {
      const { k } = message
      const out = new Int32Array(rows.length * k).fill(-1)
      for (let i = 0; i < rows.length; i++) out.set(index.searchKnn(rows[i], k).neighbors, i * k)
      return out
    }
    default:
      throw new Error(`unknown message ${message.type}`)
  }
}

parentPort.on('message', (message) => {
  try {
    const value = handle(message)
    parentPort.postMessage({ id: message.id, ok: true, value })
  } catch (error) {
    parentPort.postMessage({ id: message.id, ok: false, error: String(error?.stack ?? error) })
  }
})
