import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { FlatIndex } from '../dist/index.js'
import native from '../index.js'
import { expectCode, randomMatrix } from './helpers'

describe('lifecycle', () => {
  it('close() is idempotent and later calls throw ERR_CLOSED', async () => {
    const index = new FlatIndex({ dimensions: 2 })
    index.addSync([1], [[1, 1]])
    index.close()
    index.close()
    expect(index.closed).toBe(true)
    await expectCode(() => index.size, 'ERR_CLOSED')
  })

  it('a search in flight during close() still finishes with correct results', async () => {
    const dim = 64
    const n = 50_000
    const index = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    const base = randomMatrix(n, dim, 1)
    await index.add(Uint32Array.from({ length: n }, (_, i) => i), base)
    const queries = base.slice(0, 200 * dim)
    const pending = index.searchBatch(queries, { k: 5 })
    index.close()
    const results = await pending
    for (let q = 0; q < 200; q++) expect(results.get(q).keys[0]).toBe(BigInt(q))
    await expectCode(index.searchBatch(queries, { k: 5 }), 'ERR_CLOSED')
  })

  it('supports `using` (Symbol.dispose) and frees the index at scope end', () => {
    let escaped: FlatIndex
    {
      using index = new FlatIndex({ dimensions: 2 })
      index.addSync([1], [[1, 0]])
      escaped = index
      expect(escaped.closed).toBe(false)
    }
    expect(escaped.closed).toBe(true)
    expect(typeof escaped[Symbol.dispose]).toBe('function')
  })

  it('reports native memory to V8 and gives it back on close', () => {
    // V8 does not expose its external-memory counter to JS in a stable way, so check what the
    // binding reported through napi_adjust_external_memory.
    const index = new native.NativeFlatIndex(256, 'l2sq')
    index.addSync(BigUint64Array.from({ length: 20_000 }, (_, i) => BigInt(i)), randomMatrix(20_000, 256, 2))
    const bytes = index.memoryBytes
    expect(bytes).toBeGreaterThan(20_000 * 256 * 4)
    expect(bytes).toBeLessThan(20_000 * 256 * 4 * 1.5)
    expect(index.reportedExternalBytes).toBe(bytes)
    index.removeSync(BigUint64Array.from({ length: 10_000 }, (_, i) => BigInt(i)))
    expect(index.reportedExternalBytes).toBe(index.memoryBytes)
    index.close()
    expect(index.reportedExternalBytes).toBe(0)
  })

  it('the fast search handle does not keep a closed index alive', () => {
    const index = new native.NativeFlatIndex(2, 'l2sq')
    index.addSync(new BigUint64Array([1n]), new Float32Array([1, 1]))
    const handle = index.searchHandle()
    const out = new Uint8Array(64)
    expect(native.searchIntoSyncFast(handle, new Float32Array([1, 1]), 1, 0, true, null, null, out, 0, 1)).toBe(1)
    index.close()
    expect(() => native.searchIntoSyncFast(handle, new Float32Array([1, 1]), 1, 0, true, null, null, out, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED', message: 'the index is closed' }))
  })

  it('memory accounting follows removes', async () => {
    const index = new FlatIndex({ dimensions: 32, metric: 'dot' })
    index.addSync(Uint32Array.from({ length: 1000 }, (_, i) => i), randomMatrix(1000, 32, 3))
    const full = index.memoryBytes
    expect(await index.remove(Uint32Array.from({ length: 1000 }, (_, i) => i))).toBe(1000)
    expect(index.size).toBe(0)
    expect(index.memoryBytes).toBeLessThanOrEqual(full)
  })
})

// A close() or a finalizer that only zeroed the counters would pass the checks above: these
// measure the resident set of a child process (node --expose-gc) holding 50 to 150 MB of index,
// and require nearly all of it back once the index is closed, or collected without a close.
// Linux only: glibc is told to map every allocation of 64 KiB or more on its own
// (mmap_threshold), so a freed buffer leaves the resident set at once instead of waiting in the
// allocator's free lists, which would make the figure measure glibc rather than vecdex.
describe.runIf(process.platform === 'linux')('closing or collecting an index gives its memory back', () => {
  const child = resolve(__dirname, 'lifecycle-child.cjs')
  for (const kind of ['flat', 'hnsw', 'multi']) {
    for (const how of ['close', 'collect']) {
      it(`${kind}: ${how === 'close' ? 'close()' : 'garbage collection without close()'} frees it`, () => {
        const tunables = [process.env.GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=65536'].filter(Boolean).join(':')
        const run = spawnSync(process.execPath, ['--expose-gc', child, kind, how], {
          encoding: 'utf8',
          timeout: 100_000,
          env: { ...process.env, GLIBC_TUNABLES: tunables },
        })
        expect(run.status, run.stderr).toBe(0)
        const { rss, memoryBytes, closed } = JSON.parse(run.stdout)
        const [before, built, released] = rss as number[]
        const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`
        const story = `RSS ${mb(before)} → ${mb(built)} built (memoryBytes ${mb(memoryBytes)}) → ${mb(released)} after ${how}`
        // The index really is resident (memoryBytes counts spare capacity never touched too)…
        expect(built - before, story).toBeGreaterThan(0.6 * memoryBytes)
        // …and at least 90 % of it is gone afterwards.
        expect(built - released, story).toBeGreaterThan(0.9 * (built - before))
        if (how === 'close') expect(closed).toBe(true)
      })
    }
  }
})
