// Saving and loading through the package: files, buffers, sync and async twins, typed errors
// for damaged or mismatched input, atomic replacement, and the committed fixtures of every file
// format version, which this build must still read and answer from exactly as when saved.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Collection, type CollectionHit, type Filter, FlatIndex, HnswIndex, MultiVectorIndex } from '../dist/index.js'
import { codeOf, randomMatrix } from './helpers'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-persistence-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const DIM = 24
const base = randomMatrix(1500, DIM, 7)
const queries = randomMatrix(20, DIM, 8)
const keys = Array.from({ length: 1500 }, (_, i) => i * 3 + 1)

async function hnsw(): Promise<HnswIndex> {
  const index = new HnswIndex({ dimensions: DIM, metric: 'cosine', m: 8, efConstruction: 64 })
  await index.add(keys, base)
  await index.remove(keys.slice(0, 100))
  return index
}

describe('save and load', () => {
  it('an HNSW index loads from a file and a buffer, sync and async, and answers as before', async () => {
    using index = await hnsw()
    const file = join(dir, 'hnsw.vdx')
    await index.save(file)
    const want = await index.searchBatch(queries, { k: 10 })
    for (const loaded of [await HnswIndex.load(file), HnswIndex.loadSync(file), await HnswIndex.fromBuffer(await index.toBuffer()), HnswIndex.fromBufferSync(index.toBufferSync())]) {
      using _ = loaded
      expect(loaded.size).toBe(1400)
      expect(loaded.dimensions).toBe(DIM)
      expect(loaded.metric).toBe('cosine')
      expect(loaded.m).toBe(8)
      expect(loaded.efConstruction).toBe(64)
      const got = await loaded.searchBatch(queries, { k: 10 })
      expect(got.keys).toEqual(want.keys)
      expect(got.distances).toEqual(want.distances)
      expect(loaded.contains(keys[0])).toBe(false)
      expect(loaded.get(keys[500])).toEqual(index.get(keys[500]))
      // A loaded index takes more vectors.
      await loaded.add([1n << 60n], base.subarray(0, DIM))
      expect(loaded.searchSync(base.subarray(0, DIM), { k: 1 }).get(0).keys[0]).toBe(1n << 60n)
    }
    expect(Buffer.compare(HnswIndex.loadSync(file).toBufferSync(), readFileSync(file))).toBe(0)
  })

  it('a flat index with compression round-trips', async () => {
    using index = new FlatIndex({ dimensions: DIM, metric: 'l2sq', quantization: 'sq4', trainingSize: 500 })
    await index.add(keys, base)
    const file = join(dir, 'flat.vdx')
    index.saveSync(file)
    using loaded = await FlatIndex.load(file)
    expect(loaded.isTrained).toBe(true)
    expect((await loaded.searchBatch(queries, { k: 5 })).keys).toEqual((await index.searchBatch(queries, { k: 5 })).keys)
    expect(loaded.compressionStats().quantization).toBe('sq4')
  })

  it('a RaBitQ index round-trips, 1-bit and 4-bit: the same rotation, codes and estimates', async () => {
    const makers = [(o: object) => new FlatIndex(o as never), (o: object) => new HnswIndex({ ...o, seed: 2 } as never)]
    for (const [make, bits] of makers.flatMap((m) => [[m, 1], [m, 4]] as const)) {
      using index = make({ dimensions: DIM, metric: 'l2sq', quantization: { type: 'rabitq', bits }, trainingSize: 500 })
      await index.add(keys, base)
      const raw = { k: 5, rescore: false }
      const file = join(dir, 'rabitq.vdx')
      index.saveSync(file)
      const Kind = index instanceof FlatIndex ? FlatIndex : HnswIndex
      using loaded = await Kind.load(file)
      const codeSize = bits === 1 ? Math.ceil(DIM / 8) + 12 : Math.ceil(DIM / 2) + 16
      expect(loaded.compressionStats()).toMatchObject({ quantization: 'rabitq', trained: true, codeSize })
      const [want, got] = [await index.searchBatch(queries, raw), await loaded.searchBatch(queries, raw)]
      expect(got.keys).toEqual(want.keys)
      expect(got.distances).toEqual(want.distances)
    }
  })

  it('a multi-vector index round-trips with its encoding and tokens', async () => {
    using index = new MultiVectorIndex({ dimensions: 8, metric: 'dot', fde: { numRepetitions: 3, numSimhashProjections: 2, projectionDimension: 4 } })
    const docs = Array.from({ length: 60 }, (_, i) => randomMatrix(3 + (i % 5), 8, 100 + i))
    await index.add(Array.from({ length: 60 }, (_, i) => i), docs)
    await index.remove([5, 6])
    const file = join(dir, 'multi.vdx')
    await index.save(file)
    const query = randomMatrix(4, 8, 99)
    const want = await index.search(query, { k: 5 })
    for (const loaded of [await MultiVectorIndex.load(file), MultiVectorIndex.fromBufferSync(index.toBufferSync())]) {
      using _ = loaded
      expect(loaded.size).toBe(58)
      expect(loaded.fde).toEqual(index.fde)
      const got = await loaded.search(query, { k: 5 })
      expect(got.keys).toEqual(want.keys)
      expect(got.distances).toEqual(want.distances)
      expect(loaded.get(7)).toEqual(index.get(7))
    }
    expect(await codeOf(() => MultiVectorIndex.fromBufferSync(index.toBufferSync().subarray(0, 200)))).toBe('ERR_CORRUPT_FILE')
    expect(await codeOf(() => HnswIndex.loadSync(file))).toBe('ERR_INVALID_ARGUMENT')
  })

  it('a save replaces the file atomically and leaves no temporary file', async () => {
    const file = join(dir, 'replace.vdx')
    using small = new FlatIndex({ dimensions: DIM, metric: 'dot' })
    small.addSync([1], base.subarray(0, DIM))
    await small.save(file)
    using big = await hnsw()
    await big.save(file)
    expect(HnswIndex.loadSync(file).size).toBe(1400)
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it.skipIf(process.platform !== 'linux')('a view opens with none of its file resident; searches map in what they read', async () => {
    // 20,000 × 64-d rows plus links: a file of about 7 MB.
    const rows = randomMatrix(20_000, 64, 11)
    using built = new HnswIndex({ dimensions: 64, metric: 'l2sq', m: 8, efConstruction: 32, quantization: 'sq8' })
    await built.add(Array.from({ length: 20_000 }, (_, i) => i), rows)
    const file = join(dir, 'resident.vdx')
    await built.save(file)
    const size = statSync(file).size
    // This process's resident bytes of the mapping of `file` (its lines in /proc/self/smaps).
    const residentOfFile = () => {
      let inside = false
      let total = 0
      for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
        if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inside = line.endsWith(file)
        else if (inside && line.startsWith('Rss:')) total += Number(/(\d+) kB/.exec(line)![1]) * 1024
      }
      return total
    }
    using view = HnswIndex.viewSync(file)
    // Opening read and checked every byte; none of it stays mapped in.
    expect(residentOfFile(), `resident after opening a ${size}-byte file`).toBeLessThan(size / 20)
    const probes = randomMatrix(50, 64, 12)
    const want = built.searchBatchSync(probes, { k: 10 })
    expect(view.searchBatchSync(probes, { k: 10 }).keys).toEqual(want.keys)
    const after = residentOfFile()
    expect(after).toBeGreaterThan(0)
    expect(after).toBeLessThanOrEqual(size + 4096)
  })

  it('a view searches the file in place and refuses writes', async () => {
    using index = await hnsw()
    const file = join(dir, 'view.vdx')
    await index.save(file)
    const want = await index.searchBatch(queries, { k: 10 })
    for (const view of [await HnswIndex.view(file), HnswIndex.viewSync(file)]) {
      using _ = view
      expect(view.readOnly).toBe(true)
      expect(view.size).toBe(1400)
      expect((await view.searchBatch(queries, { k: 10 })).keys).toEqual(want.keys)
      expect(view.searchBatchSync(queries, { k: 10 }).keys).toEqual(want.keys)
      expect(await codeOf(() => view.add([5n], base.subarray(0, DIM)))).toBe('ERR_READ_ONLY')
      expect(await codeOf(() => view.addSync([5n], base.subarray(0, DIM)))).toBe('ERR_READ_ONLY')
      expect(await codeOf(() => view.removeSync([keys[200]]))).toBe('ERR_READ_ONLY')
      expect(await codeOf(() => view.compact())).toBe('ERR_READ_ONLY')
      expect(view.contains(keys[200])).toBe(true)
    }
    expect(index.readOnly).toBe(false)
    const damaged = join(dir, 'damaged-view.vdx')
    const image = index.toBufferSync()
    image[image.length - 100] ^= 4
    writeFileSync(damaged, image)
    expect(await codeOf(() => HnswIndex.viewSync(damaged))).toBe('ERR_CORRUPT_FILE')
  })

  it('damaged, mismatched and missing input gives typed errors', async () => {
    using index = await hnsw()
    const image = index.toBufferSync()
    expect(await codeOf(() => HnswIndex.fromBufferSync(image.subarray(0, 1000)))).toBe('ERR_CORRUPT_FILE')
    expect(await codeOf(() => HnswIndex.fromBuffer(Buffer.concat([image, Buffer.alloc(8)])))).toBe('ERR_CORRUPT_FILE')
    const flipped = Buffer.from(image)
    flipped[image.length - 9] ^= 1
    expect(await codeOf(() => HnswIndex.fromBufferSync(flipped))).toBe('ERR_CORRUPT_FILE')
    const newer = Buffer.from(image)
    newer.writeUInt32LE(99, 8)
    expect(await codeOf(() => HnswIndex.fromBufferSync(newer))).toBe('ERR_UNSUPPORTED_FORMAT')
    expect(await codeOf(() => HnswIndex.fromBufferSync(Buffer.from('not an index')))).toBe('ERR_CORRUPT_FILE')
    expect(await codeOf(() => FlatIndex.fromBufferSync(image))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(() => HnswIndex.fromBufferSync('nope' as unknown as Uint8Array))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(() => HnswIndex.load(join(dir, 'missing.vdx')))).toBe('ERR_IO')
    expect(await codeOf(() => HnswIndex.loadSync(dir))).toBe('ERR_IO')
    expect(await codeOf(() => HnswIndex.loadSync(''))).toBe('ERR_INVALID_ARGUMENT')
    expect(await codeOf(() => index.saveSync(join(dir, 'no-such-folder', 'x.vdx')))).toBe('ERR_IO')
    const garbage = join(dir, 'garbage.vdx')
    writeFileSync(garbage, image.subarray(0, 5000))
    expect(await codeOf(() => HnswIndex.load(garbage))).toBe('ERR_CORRUPT_FILE')
    index.close()
    expect(await codeOf(() => index.save(join(dir, 'closed.vdx')))).toBe('ERR_CLOSED')
    expect(await codeOf(() => index.toBufferSync())).toBe('ERR_CLOSED')
  })
})

describe('committed fixtures of file format version 1', () => {
  const fixtures = resolve(__dirname, 'fixtures', 'format-v1')
  const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as {
    dimensions: number
    queries: number[]
    fixtures: Record<string, { kind: 'hnsw' | 'flat' | 'multivector' | 'collection'; size: number; keys: string[]; distances: number[]; filter?: Filter; count?: number; first?: CollectionHit }>
  }
  const closeTo = (got: number[], want: number[]) => {
    expect(got).toHaveLength(want.length)
    got.forEach((d, i) => expect(Math.abs(d - want[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[i]))))
  }
  for (const [name, want] of Object.entries(expected.fixtures)) {
    if (want.kind === 'collection') {
      it(`${name} loads with its ids, texts and metadata and answers as when it was saved`, async () => {
        const file = join(fixtures, name)
        using collection = await Collection.load(file)
        expect(collection.size).toBe(want.size)
        expect(collection.countSync({ filter: want.filter })).toBe(want.count)
        const queries = Array.from({ length: 5 }, (_, q) => expected.queries.slice(q * expected.dimensions, (q + 1) * expected.dimensions))
        const hits = await collection.search(queries, { k: 10, filter: want.filter })
        expect(hits.flat().map((h) => (typeof h.id === 'number' ? `n:${h.id}` : `s:${h.id}`))).toEqual(want.keys)
        closeTo(hits.flat().map((h) => h.distance), want.distances)
        expect({ ...hits[0][0], distance: 0 }).toEqual({ ...want.first, distance: 0 })
        const bytes = readFileSync(file)
        if (bytes.readUInt32LE(8) === 1) expect(Buffer.compare(collection.toBufferSync(), bytes)).toBe(0)
      })
      continue
    }
    it(`${name} loads and answers as when it was saved`, async () => {
      const file = join(fixtures, name)
      const Index = { hnsw: HnswIndex, flat: FlatIndex, multivector: MultiVectorIndex }[want.kind as 'hnsw' | 'flat' | 'multivector']
      using index = await Index.load(file)
      expect(index.size).toBe(want.size)
      // For a multi-vector index the query rows are one point cloud, otherwise one query each.
      const queries = Float32Array.from(expected.queries)
      const hits = index instanceof MultiVectorIndex ? await index.search(queries, { k: 10 }) : await index.searchBatch(queries, { k: 10 })
      expect(Array.from(hits.keys, String)).toEqual(want.keys)
      // Within float tolerance, not bit for bit: the kernels differ by CPU (AVX-512 VNNI, AVX2,
      // NEON, scalar) and so does the rounding of their sums.
      const distances = Array.from(hits.distances)
      expect(distances).toHaveLength(want.distances.length)
      distances.forEach((d, i) => expect(Math.abs(d - want.distances[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want.distances[i]))))
      // While this build writes version 1, a re-save is byte-identical.
      const bytes = readFileSync(file)
      if (bytes.readUInt32LE(8) === 1) expect(Buffer.compare(index.toBufferSync(), bytes)).toBe(0)
    })
  }
})
