// hnswlib-node BruteforceSearch: exact search, one query per call on the calling thread. At its
// best here: one copy of the index per thread (`threads` worker threads, each searching its
// share of the batch), and the queries converted to the JS arrays hnswlib-node requires before
// the timer starts (`prepareQueries`). Space 'cosine' is hnswlib's inner product on rows it
// normalises on insert and per query, the same work as 'ip' on normalised rows.

import { Worker } from 'node:worker_threads'
import { loadPeer } from './common.mjs'

/** @returns {import('./index.mjs').Adapter} */
export function createHnswlibAdapter() {
  /** @type {any} */
  let hnswlib = null
  /** In-thread index, for searchOne (the single suite). */
  let index = null
  let dim = 0
  /** @type {{ worker: Worker, pending: Map<number, { resolve: Function, reject: Function }> }[]} */
  let pool = []
  let nextId = 0
  /** Query rows per worker, as the last prepareQueries split them. */
  let shares = []

  const call = (slot, message, transfer = []) =>
    new Promise((resolve, reject) => {
      const id = nextId++
      slot.pending.set(id, { resolve, reject })
      slot.worker.postMessage({ ...message, id }, transfer)
    })

  function startPool(threads) {
    pool = Array.from({ length: threads }, () => {
      const slot = { worker: new Worker(new URL('./hnswlib-worker.mjs', import.meta.url)), pending: new Map() }
      slot.worker.on('message', ({ id, ok, value, error }) => {
        const p = slot.pending.get(id)
        slot.pending.delete(id)
        if (ok) p?.resolve(value)
        else p?.reject(new Error(error))
      })
      slot.worker.on('error', (error) => {
        for (const p of slot.pending.values()) p.reject(error)
        slot.pending.clear()
      })
      return slot
    })
  }

  return {
    name: 'hnswlib',
    version: null,
    batchNote: '',
    singleNote: 'BruteforceSearch.searchKnn (one query on the JS thread; its number[] conversion, about a microsecond, inside the timer)',
    async init() {
      const loaded = loadPeer('hnswlib-node')
      if (loaded.error) return loaded.error
      hnswlib = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, opts) {
      const spaces = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }
      dim = dataset.dim
      if (opts.mode === 'single') {
        // One query at a time on the JS thread (the single suite): one index, in this thread.
        index = new hnswlib.BruteforceSearch(spaces[dataset.metric], dim)
        index.initIndex(dataset.n)
        for (let i = 0; i < dataset.n; i++) index.addPoint(Array.from(dataset.base.subarray(i * dim, (i + 1) * dim)), i)
        return
      }
      const threads = Math.max(1, opts.threads ?? 1)
      this.batchNote =
        `BruteforceSearch.searchKnn per query on ${threads} worker thread(s), each with its own copy of the index ` +
        `(hnswlib-node has no batch or multi-threaded search); queries converted to number[] rows before the timer`
      startPool(threads)
      await Promise.all(pool.map((slot) => call(slot, { type: 'build', space: spaces[dataset.metric], dim, n: dataset.n, base: dataset.base })))
    },
    async prepareQueries(queries, q) {
      const per = Math.ceil(q / pool.length)
      shares = pool.map((_, w) => [w * per, Math.min(q, (w + 1) * per)])
      await Promise.all(pool.map((slot, w) => call(slot, { type: 'prepare', queries: queries.slice(shares[w][0] * dim, shares[w][1] * dim), dim })))
      return { q }
    },
    async searchBatch(prepared, q, k) {
      if (prepared?.q !== q || shares.length === 0) throw new Error('hnswlib: call prepareQueries(queries, q) before searchBatch')
      const parts = await Promise.all(pool.map((slot) => call(slot, { type: 'search', k })))
      const out = []
      for (const part of parts) for (let i = 0; i < part.length / k; i++) out.push(Array.from(part.subarray(i * k, (i + 1) * k)).filter((x) => x >= 0))
      return out
    },
    searchOne(query, k) {
      return index.searchKnn(Array.from(query), k).neighbors
    },
    close() {
      for (const slot of pool) slot.worker.terminate()
      pool = []
      index = null
    },
  }
}
