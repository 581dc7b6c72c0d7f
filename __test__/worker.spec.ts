import { Worker } from 'node:worker_threads'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const entry = resolve(__dirname, '..', 'dist', 'index.js')

function runInWorker(code: string): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { entry } })
    worker.once('message', resolvePromise)
    worker.once('error', reject)
    worker.once('exit', (exitCode) => exitCode !== 0 && reject(new Error(`worker exited with ${exitCode}`)))
  })
}

const script = `
  const { parentPort, workerData } = require('node:worker_threads')
  const { FlatIndex } = require(workerData.entry)
  ;(async () => {
    const index = new FlatIndex({ dimensions: 3, metric: 'l2sq' })
    await index.add([1, 2, 3], [[0, 0, 0], [1, 1, 1], [5, 5, 5]])
    const batch = await index.searchBatch([[1, 1, 0.9], [4, 4, 4]], { k: 2 })
    const sync = index.searchSync([0, 0, 0.1], { k: 1 })
    index.close()
    parentPort.postMessage({ batch: [batch.get(0).numberKeys(), batch.get(1).numberKeys()], sync: sync.get(0).numberKeys() })
  })().catch((e) => parentPort.postMessage({ error: String(e) }))
`

describe('worker_threads', () => {
  it('loads and works inside a Worker', async () => {
    expect(await runInWorker(script)).toEqual({ batch: [[2, 1], [3, 2]], sync: [1] })
  })

  it('works in several Workers at once and after one has exited', async () => {
    const results = await Promise.all([runInWorker(script), runInWorker(script), runInWorker(script)])
    for (const r of results) expect(r).toEqual({ batch: [[2, 1], [3, 2]], sync: [1] })
    expect(await runInWorker(script)).toEqual({ batch: [[2, 1], [3, 2]], sync: [1] })
  })
})
