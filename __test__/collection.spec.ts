// A Collection as users see it: ids of either kind, items with texts and metadata, async calls
// with blocking twins, streams, aborts, persistence, and a typed error for each kind of bad input.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Collection, type CollectionItem, HnswIndex, inspectIndexFileSync } from '../dist/index.js'
import { randomMatrix } from './helpers'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-collection-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const DIM = 8
const COLOURS = ['red', 'green', 'blue']

function items(n: number, seed = 1): CollectionItem[] {
  const vectors = randomMatrix(n, DIM, seed)
  return Array.from({ length: n }, (_, i) => ({
    id: i % 2 === 0 ? i : `doc-${i}`,
    vector: vectors.subarray(i * DIM, (i + 1) * DIM),
    text: i % 3 === 0 ? `text ${i}` : undefined,
    metadata: { colour: COLOURS[i % 3], size: i % 10, tags: i % 4 === 0 ? ['even', 'four'] : ['other'] },
  }))
}

async function codeOfAsync(run: () => Promise<unknown>): Promise<string | undefined> {
  return run().then(
    () => undefined,
    (e: unknown) => (e as { code?: string }).code,
  )
}

function messageOf(run: () => unknown): string {
  try {
    run()
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`
  }
  return 'no error'
}

describe('Collection', () => {
  it('stores items under string and integer ids, with texts and metadata, and finds them', async () => {
    using docs = new Collection({ dimensions: DIM, metric: 'l2sq', fields: { colour: 'string', size: 'number' } })
    const all = items(100)
    await docs.upsert(all)
    expect(docs.size).toBe(100)
    expect(docs.has(2)).toBe(true)
    expect(docs.has('2')).toBe(false)
    expect(docs.has('doc-3')).toBe(true)
    const [three, missing] = await docs.get(['doc-3', 'nope'])
    expect(missing).toBeUndefined()
    expect(three).toMatchObject({ id: 'doc-3', text: 'text 3', metadata: { colour: 'red', size: 3, tags: ['other'] } })
    expect(Array.from(three!.vector!)).toEqual(Array.from(all[3].vector as Float32Array))
    // A single query gives a list of hits; an array of queries a list per query.
    const hits = await docs.search(all[5].vector, { k: 3 })
    expect(hits[0]).toMatchObject({ id: 'doc-5', distance: 0, metadata: { colour: 'blue' } })
    expect(hits[0].vector).toBeUndefined()
    const batch = docs.searchSync([all[0].vector as Float32Array, all[1].vector as Float32Array], { k: 2, includeVectors: true, includeMetadata: false })
    expect(batch.map((row) => row[0].id)).toEqual([0, 'doc-1'])
    expect(batch[0][0].metadata).toBeUndefined()
    expect(batch[0][0].vector).toBeInstanceOf(Float32Array)
    // Filters: declared and undeclared fields, nested logic.
    const red = await docs.search(all[1].vector, { k: 100, filter: { colour: 'red' } })
    expect(red).toHaveLength(34)
    expect(red.every((h) => h.metadata!.colour === 'red')).toBe(true)
    expect(await docs.count({ filter: { tags: { $contains: 'four' } } })).toBe(25)
    expect(docs.countSync({ filter: { $or: [{ size: { $gte: 8 } }, { colour: 'green' }] } })).toBe(
      all.filter((it) => (it.metadata!.size as number) >= 8 || it.metadata!.colour === 'green').length,
    )
    expect(docs.countSync({ filter: { nobodyHasThis: 'x' } })).toBe(0)
    expect(docs.countSync()).toBe(100)
  })

  it('upsert replaces whole items; delete takes ids or a filter', async () => {
    using docs = new Collection({ dimensions: DIM, index: 'flat' })
    docs.upsertSync(items(30))
    docs.upsertSync([{ id: 0, vector: new Float32Array(DIM).fill(1), metadata: { colour: 'pink' } }])
    expect(docs.size).toBe(30)
    const [zero] = docs.getSync([0], { includeVectors: false })
    expect(zero).toEqual({ id: 0, metadata: { colour: 'pink' } })
    expect(await docs.delete([0, 'doc-1', 'absent'])).toBe(2)
    expect(docs.deleteSync({ filter: { colour: 'red' } })).toBe(9)
    expect(docs.size).toBe(19)
    expect(docs.countSync({ filter: { colour: 'red' } })).toBe(0)
    expect(docs.ids()).toHaveLength(19)
  })

  it('upsertStream ingests any iterable in batches; an abort stops it with ERR_ABORTED', async () => {
    using docs = new Collection({ dimensions: DIM })
    async function* source() {
      for (const item of items(250)) yield item
    }
    const progress: number[] = []
    expect(await docs.upsertStream(source(), { batchSize: 100, onProgress: (n) => progress.push(n) })).toBe(250)
    expect(progress).toEqual([100, 200, 250])
    // An id repeated within one native batch keeps its last item, as separate upserts would.
    expect(await docs.upsertStream([{ id: 'again', vector: new Float32Array(DIM).fill(1), text: 'first' }, { id: 'again', vector: new Float32Array(DIM).fill(2), text: 'last' }])).toBe(2)
    expect(docs.getSync(['again'], { includeVectors: false })).toEqual([{ id: 'again', text: 'last' }])
    await docs.delete(['again'])
    const aborted = new AbortController()
    aborted.abort()
    expect(await codeOfAsync(() => docs.upsert(items(5, 9).map((it) => ({ ...it, id: `new-${it.id}` })), { signal: aborted.signal }))).toBe('ERR_ABORTED')
    expect(await codeOfAsync(() => docs.search(items(1)[0].vector, { k: 1, signal: aborted.signal }))).toBe('ERR_ABORTED')
    expect(docs.size).toBe(250)
  })

  it('saves ids, texts, metadata and the index in one file, and loads them back', async () => {
    using docs = new Collection({ dimensions: DIM, m: 8, fields: { colour: 'string', tags: 'string[]' } })
    await docs.upsert(items(60))
    await docs.delete(['doc-5', 10])
    const path = join(dir, 'docs.vdx')
    await docs.save(path)
    expect(inspectIndexFileSync(path)).toMatchObject({ kind: 'collection', count: 58, settings: { index: 'hnsw', m: 8 } })
    const query = items(1, 77)[0].vector
    const filter = { colour: { $ne: 'green' }, tags: 'even' }
    const want = await docs.search(query, { k: 5, filter })
    for (const back of [await Collection.load(path), Collection.loadSync(path), await Collection.fromBuffer(await docs.toBuffer()), Collection.fromBufferSync(docs.toBufferSync())]) {
      expect(back.size).toBe(58)
      expect(back.fields).toEqual({ colour: 'string', tags: 'string[]' })
      expect(await back.search(query, { k: 5, filter })).toEqual(want)
      expect(back.getSync(['doc-5', 10, 'doc-7'])).toEqual(docs.getSync(['doc-5', 10, 'doc-7']))
      back.close()
    }
    // A view searches the mapped file in place and refuses writes.
    for (const view of [await Collection.view(path), Collection.viewSync(path)]) {
      expect(view.readOnly).toBe(true)
      expect(await view.search(query, { k: 5, filter })).toEqual(want)
      expect(view.getSync(['doc-7'])).toEqual(docs.getSync(['doc-7']))
      expect(await codeOfAsync(() => view.upsert(items(1, 5)))).toBe('ERR_READ_ONLY')
      expect(messageOf(() => view.deleteSync(['doc-7']))).toMatch(/^ERR_READ_ONLY:/)
      expect(view.size).toBe(58)
      view.close()
    }
    expect(docs.readOnly).toBe(false)
    // Another kind's file, and a damaged one, are typed errors.
    const index = new HnswIndex({ dimensions: DIM })
    index.saveSync(join(dir, 'index.vdx'))
    expect(await codeOfAsync(() => Collection.load(join(dir, 'index.vdx')))).toBe('ERR_INVALID_ARGUMENT')
    const damaged = docs.toBufferSync()
    damaged[damaged.length - 3] ^= 1
    writeFileSync(join(dir, 'damaged.vdx'), damaged)
    expect(await codeOfAsync(() => Collection.load(join(dir, 'damaged.vdx')))).toBe('ERR_CORRUPT_FILE')
  })

  it('a compressed collection searches on codes and rescores', () => {
    using docs = new Collection({ dimensions: DIM, quantization: 'sq8', trainingSize: 50 })
    const all = items(200)
    docs.upsertSync(all)
    expect(docs.searchSync(all[7].vector, { k: 1 })[0].id).toBe('doc-7')
    expect(docs.searchSync(all[7].vector, { k: 3, filter: { colour: 'blue' } }).every((h) => h.metadata!.colour === 'blue')).toBe(true)
  })

  it('stats() counts every part of the collection', () => {
    using docs = new Collection({ dimensions: DIM, fields: { colour: 'string' } })
    docs.upsertSync(items(100))
    const stats = docs.stats()
    expect(stats.size).toBe(100)
    expect(stats.indexBytes + stats.idBytes + stats.textBytes + stats.metadataBytes + stats.columnBytes).toBe(stats.memoryBytes)
    for (const part of ['idBytes', 'textBytes', 'metadataBytes', 'columnBytes'] as const) expect(stats[part]).toBeGreaterThan(0)
    expect(docs.memoryBytes).toBe(stats.memoryBytes)
  })

  it('bad input is a typed error naming what is wrong, and changes nothing', () => {
    using docs = new Collection({ dimensions: DIM, fields: { size: 'number' } })
    docs.upsertSync(items(10))
    const vector = new Float32Array(DIM)
    const cases: [() => unknown, string, string][] = [
      [() => docs.upsertSync([{ id: '', vector }]), 'ERR_INVALID_ARGUMENT', 'items[0].id must not be an empty string'],
      [() => docs.upsertSync([{ id: -1, vector }]), 'ERR_INVALID_ARGUMENT', 'items[0].id must be a string or a whole number'],
      [() => docs.upsertSync([{ id: 1.5, vector }]), 'ERR_INVALID_ARGUMENT', 'items[0].id'],
      [() => docs.upsertSync([{ id: {} as never, vector }]), 'ERR_INVALID_ARGUMENT', 'items[0].id must be a string or a whole number'],
      [() => docs.upsertSync([{ id: 'a', vector: new Float32Array(DIM + 1) }]), 'ERR_DIMENSION_MISMATCH', 'items[0].vector has 9 values'],
      [() => docs.upsertSync([{ id: 'a', vector, meta: {} } as never]), 'ERR_INVALID_ARGUMENT', "unknown field 'meta'"],
      [() => docs.upsertSync([{ id: 'a', vector, metadata: [1] as never }]), 'ERR_INVALID_ARGUMENT', 'items[0].metadata must be an object'],
      [() => docs.upsertSync([{ id: 'a', vector, metadata: { size: 'big' } }]), 'ERR_INVALID_ARGUMENT', 'metadata.size is declared number'],
      [() => docs.upsertSync([{ id: 'a', vector, metadata: { size: 1, at: [1, Infinity] } }]), 'ERR_INVALID_ARGUMENT', 'items[0].metadata cannot be written as JSON: "1" is Infinity'],
      [() => docs.upsertSync([{ id: 'a', vector, metadata: { score: NaN } }]), 'ERR_INVALID_ARGUMENT', '"score" is NaN'],
      [() => docs.upsertSync([{ id: 'a', vector }, { id: 'a', vector }]), 'ERR_INVALID_ARGUMENT', 'items[1] repeats the id "a" of items[0]'],
      [() => docs.searchSync(vector, { k: 1, filter: { size: { $foo: 1 } } }), 'ERR_INVALID_ARGUMENT', '$foo'],
      [() => docs.searchSync(vector, { k: 1, filter: { $and: [{ size: 1 }, { size: { $in: 3 } }] } }), 'ERR_INVALID_ARGUMENT', '$in'],
      [() => docs.searchSync(vector, { k: 1, filter: [] as never }), 'ERR_INVALID_ARGUMENT', 'filter must be'],
      [() => docs.searchSync(vector, { k: 1, efsearch: 5 } as never), 'ERR_INVALID_ARGUMENT', 'efSearch'],
      [() => docs.searchSync([1, 2, 3], { k: 1 }), 'ERR_DIMENSION_MISMATCH', 'query has 3 values'],
      [() => docs.deleteSync({ where: {} } as never), 'ERR_INVALID_ARGUMENT', 'delete takes an array of ids or { filter }'],
      [() => new Collection({ dimensions: DIM, fields: { x: 'date' as never } }), 'ERR_INVALID_ARGUMENT', "fields.x must be one of 'string', 'number', 'boolean', 'string[]'"],
      [() => new Collection({ dimensions: DIM, index: 'flat', m: 8 }), 'ERR_INVALID_ARGUMENT', 'HNSW settings'],
    ]
    for (const [run, code, fragment] of cases) {
      const message = messageOf(run)
      expect(message.startsWith(`${code}:`), message).toBe(true)
      expect(message).toContain(fragment)
    }
    expect(docs.size).toBe(10)
    using flat = new Collection({ dimensions: DIM, index: 'flat' })
    expect(messageOf(() => flat.searchSync(vector, { k: 1, efSearch: 10 }))).toContain("efSearch is an HNSW setting")
  })

  it('is closed by close() and by `using`; later calls throw ERR_CLOSED', async () => {
    const docs = new Collection({ dimensions: DIM })
    docs.close()
    docs.close()
    expect(docs.closed).toBe(true)
    expect(messageOf(() => docs.size)).toMatch(/^ERR_CLOSED:/)
    expect(await codeOfAsync(() => docs.search(new Float32Array(DIM), { k: 1 }))).toBe('ERR_CLOSED')
  })
})
