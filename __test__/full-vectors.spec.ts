// Full vectors on disk (`fullVectors: { path }`) through the package: the default, the option's
// checks, answers equal to the same index with its vectors in memory (built, saved, loaded,
// viewed), memory that no longer counts the vectors, typed errors for a damaged or missing
// vector file, and adds that survive SIGKILL at any moment (the last save always loads whole).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Collection, FlatIndex, HnswIndex } from '../dist/index.js'
import { codeOf, randomMatrix, referenceScan, refDistance } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const child = require('./full-vectors-child.cjs') as { vectorOf: (key: number) => Float32Array; DIM: number }

const dir = mkdtempSync(join(tmpdir(), 'vecdex-full-vectors-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const DIM = 48
const base = randomMatrix(3000, DIM, 5)
const queries = randomMatrix(40, DIM, 6)
const keys = Array.from({ length: 3000 }, (_, i) => i)

function recall(got: BigUint64Array | bigint[], truth: number[][]): number {
  let found = 0
  truth.forEach((want, q) => {
    for (let i = 0; i < 10; i++) if (want.includes(Number(got[q * 10 + i]))) found++
  })
  return found / (truth.length * 10)
}

function sq8(path?: string): HnswIndex {
  return new HnswIndex({ dimensions: DIM, metric: 'cosine', quantization: 'sq8', trainingSize: 500, seed: 3, ...(path ? { fullVectors: { path } } : {}) })
}

describe('fullVectors', () => {
  it("defaults to 'memory'", () => {
    using index = sq8()
    expect(index.compressionStats().fullVectors).toBe('memory')
  })

  it('refuses wrong settings with ERR_INVALID_ARGUMENT', async () => {
    const path = join(dir, 'refused.vdr')
    const bad: unknown[] = ['disk', 'none', {}, { path: '' }, { path: 3 }, { path, extra: 1 }, 7]
    for (const fullVectors of bad) {
      expect(await codeOf(() => new HnswIndex({ dimensions: DIM, quantization: 'sq8', fullVectors } as never)), JSON.stringify(fullVectors)).toBe('ERR_INVALID_ARGUMENT')
    }
    // An uncompressed index searches its full vectors: they stay in memory.
    expect(await codeOf(() => new HnswIndex({ dimensions: DIM, fullVectors: { path } }))).toBe('ERR_INVALID_ARGUMENT')
    // A file that is not a vector file is refused and left as it was.
    const other = join(dir, 'notes.txt')
    writeFileSync(other, 'x'.repeat(5000))
    expect(await codeOf(() => sq8(other))).toBe('ERR_INVALID_ARGUMENT')
    expect(readFileSync(other, 'utf8')).toBe('x'.repeat(5000))
  })

  it('answers as the in-memory index, through save, load and view, and holds no vectors in memory', async () => {
    const rows = join(dir, 'same.vdr')
    using memory = sq8()
    using disk = sq8(rows)
    for (const index of [memory, disk]) {
      index.addSync(keys.slice(0, 1000), base.subarray(0, 1000 * DIM))
      index.addSync(keys.slice(1000), base.subarray(1000 * DIM))
      index.removeSync(keys.slice(0, 200))
    }
    // Batches link in parallel, so the two graphs differ a little: compare each with exact
    // search, and the disk index's own answers through every way of opening it (below).
    // Keys are row numbers: the first 200 were removed.
    const exact = referenceScan(base.subarray(200 * DIM), queries, DIM, 10, 'cosine').map((hits) => hits.map((h) => h.index + 200))
    const recallOf = (index: HnswIndex) => recall(index.searchBatchSync(queries, { k: 10 }).keys, exact)
    expect(recallOf(disk)).toBeGreaterThan(0.9)
    expect(Math.abs(recallOf(disk) - recallOf(memory))).toBeLessThan(0.05)
    const want = disk.searchBatchSync(queries, { k: 10 })
    // Rescored distances are the full vectors' (read from the file): those of exact search.
    for (let q = 0; q < queries.length / DIM; q++) {
      const key = Number(want.keys[q * 10])
      expect(want.distances[q * 10]).toBeCloseTo(refDistance(queries.subarray(q * DIM, (q + 1) * DIM), base.subarray(key * DIM, (key + 1) * DIM), 'cosine'), 5)
    }
    expect(disk.get(2500)).toEqual(memory.get(2500))
    const stats = disk.compressionStats()
    expect(stats.fullVectors).toBe('disk')
    expect(stats.vectorBytes).toBe(memory.compressionStats().vectorBytes)
    // The slot-to-row map only: 4 bytes a slot against the rows' 192.
    expect(stats.memory.vectors).toBeLessThan(memory.stats().memory.vectors / 20)
    // Every other part is the same size: the index is smaller by its rows.
    expect(memory.stats().memoryBytes - disk.stats().memoryBytes).toBeGreaterThan(0.9 * memory.stats().memory.vectors)

    const file = join(dir, 'same.vdx')
    await disk.save(file)
    for (const opened of [await HnswIndex.load(file), HnswIndex.loadSync(file), await HnswIndex.view(file), HnswIndex.fromBufferSync(disk.toBufferSync())]) {
      using _ = opened
      const again = opened.searchBatchSync(queries, { k: 10 })
      expect(again.keys).toEqual(want.keys)
      expect(again.distances).toEqual(want.distances)
      expect(opened.compressionStats().fullVectors).toBe('disk')
    }
    // A loaded index keeps appending to the same file.
    using loaded = HnswIndex.loadSync(file)
    loaded.addSync([9000], queries.subarray(0, DIM))
    const norm = Math.hypot(...queries.subarray(0, DIM))
    const stored = loaded.get(9000)!
    stored.forEach((x, i) => expect(x).toBeCloseTo(queries[i] / norm, 6))
    expect(Number(loaded.searchSync(queries.subarray(0, DIM), { k: 1 }).keys[0])).toBe(9000)
  })

  it('a damaged vector file is ERR_CORRUPT_FILE, a missing one ERR_IO', async () => {
    const rows = join(dir, 'damaged.vdr')
    const file = join(dir, 'damaged.vdx')
    {
      using index = sq8(rows)
      index.addSync(keys.slice(0, 800), base.subarray(0, 800 * DIM))
      index.saveSync(file)
    }
    const good = readFileSync(rows)
    const damaged = Buffer.from(good)
    damaged[4096 + 64 * 100 + 3] ^= 0x01
    writeFileSync(rows, damaged)
    for (const open of [() => HnswIndex.loadSync(file), () => HnswIndex.viewSync(file), () => HnswIndex.load(file)]) {
      expect(await codeOf(open)).toBe('ERR_CORRUPT_FILE')
    }
    writeFileSync(rows, good.subarray(0, good.length - 64))
    expect(await codeOf(() => HnswIndex.loadSync(file))).toBe('ERR_CORRUPT_FILE')
    rmSync(rows)
    expect(await codeOf(() => HnswIndex.loadSync(file))).toBe('ERR_IO')
    writeFileSync(rows, good)
    using restored = HnswIndex.loadSync(file)
    expect(restored.size).toBe(800)
  })

  it('adds survive SIGKILL at any moment: the file always loads as its last save, whole', async () => {
    const work = mkdtempSync(join(dir, 'kills-'))
    const batch = 150
    const runs = 20
    let landedMidWrite = 0
    for (let run = 0; run < runs; run++) {
      const proc = spawn(process.execPath, [join(__dirname, 'full-vectors-child.cjs'), JSON.stringify({ dir: work, batch })], { stdio: ['ignore', 'pipe', 'pipe'] })
      const saved: number[] = []
      let stderr = ''
      proc.stderr.on('data', (d) => (stderr += d))
      // Kill after 1–3 saves plus a random delay: inside an add, a save, or between them.
      const wanted = 1 + (run % 3)
      const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)))
      let buffered = ''
      proc.stdout.on('data', (d) => {
        buffered += d
        const lines = buffered.split('\n')
        buffered = lines.pop()!
        for (const line of lines) saved.push(Number(line.split(' ')[1]))
        if (saved.length === wanted) setTimeout(() => proc.kill('SIGKILL'), (run * 7) % 40)
      })
      const signal = await exited
      expect(signal, `the child died by itself: ${stderr}`).toBe('SIGKILL')
      using loaded = HnswIndex.loadSync(join(work, 'index.vdx'))
      const last = saved[saved.length - 1]
      // The save in progress may have renamed its file before the kill.
      expect([last, last + batch]).toContain(loaded.size)
      if (loaded.size === last) landedMidWrite++
      for (const key of [0, Math.floor(loaded.size / 2), loaded.size - 1]) {
        expect(loaded.get(key), `key ${key}`).toEqual(child.vectorOf(key))
      }
      const hits = loaded.searchSync(child.vectorOf(loaded.size - 1), { k: 1 })
      expect(Number(hits.keys[0])).toBe(loaded.size - 1)
    }
    // Most kills land before the next save's rename (rows appended but not referred to).
    expect(landedMidWrite).toBeGreaterThan(0)
  }, 120_000)

  it('a collection keeps its HNSW index\'s full vectors on disk, through save, load and view', async () => {
    const rows = join(dir, 'collection.vdr')
    const make = (fullVectors?: { path: string }) =>
      new Collection({ dimensions: DIM, quantization: 'sq8', trainingSize: 300, fields: { colour: 'string' }, ...(fullVectors ? { fullVectors } : {}) })
    const items = Array.from({ length: 1200 }, (_, i) => ({ id: `doc-${i}`, vector: base.subarray(i * DIM, (i + 1) * DIM), metadata: { colour: i % 3 === 0 ? 'red' : 'blue' } }))
    using docs = make({ path: rows })
    docs.upsertSync(items)
    docs.deleteSync(['doc-5', 'doc-6'])
    // The index's vectors part is its slot-to-row map: 4 bytes a slot, not a 192-byte row.
    expect(docs.stats().index.vectors).toBeLessThan(1200 * 16)
    expect(docs.stats().fullVectors).toBe('disk')
    const query = base.subarray(7 * DIM, 8 * DIM)
    const want = docs.searchSync(query, { k: 5, filter: { colour: 'blue' } })
    expect(want[0].id).toBe('doc-7')
    const file = join(dir, 'collection.vdx')
    docs.saveSync(file)
    for (const opened of [Collection.loadSync(file), await Collection.view(file)]) {
      using _ = opened
      expect(opened.searchSync(query, { k: 5, filter: { colour: 'blue' } })).toEqual(want)
    }
  })

  it('a flat index answers exactly as with its vectors in memory, and so does a flat collection', async () => {
    using memory = new FlatIndex({ dimensions: DIM, metric: 'l2sq', quantization: 'sq8', trainingSize: 500 })
    using disk = new FlatIndex({ dimensions: DIM, metric: 'l2sq', quantization: 'sq8', trainingSize: 500, fullVectors: { path: join(dir, 'flat.vdr') } })
    for (const index of [memory, disk]) {
      index.addSync(keys.slice(0, 2000), base.subarray(0, 2000 * DIM))
      index.addSync(keys.slice(1500), base.subarray(1500 * DIM))
      index.removeSync(keys.slice(0, 300).filter((k) => k % 2 === 0))
    }
    const want = memory.searchBatchSync(queries, { k: 10 })
    const got = disk.searchBatchSync(queries, { k: 10 })
    expect(got.keys).toEqual(want.keys)
    expect(got.distances).toEqual(want.distances)
    expect(disk.compressionStats().fullVectors).toBe('disk')
    expect(disk.stats().memory.vectors).toBeLessThan(memory.stats().memory.vectors / 20)
    const file = join(dir, 'flat.vdx')
    await disk.save(file)
    using loaded = await FlatIndex.load(file)
    expect(loaded.searchBatchSync(queries, { k: 10 }).keys).toEqual(want.keys)

    using docs = new Collection({ dimensions: DIM, index: 'flat', quantization: 'sq8', trainingSize: 300, fullVectors: { path: join(dir, 'flat-collection.vdr') } })
    docs.upsertSync(Array.from({ length: 600 }, (_, i) => ({ id: i, vector: base.subarray(i * DIM, (i + 1) * DIM) })))
    expect(docs.stats().fullVectors).toBe('disk')
    const query = base.subarray(42 * DIM, 43 * DIM)
    const hits = docs.searchSync(query, { k: 3 })
    expect(hits[0].id).toBe(42)
    docs.saveSync(join(dir, 'flat-collection.vdx'))
    using reopened = Collection.loadSync(join(dir, 'flat-collection.vdx'))
    expect(reopened.searchSync(query, { k: 3 })).toEqual(hits)
  })
})
