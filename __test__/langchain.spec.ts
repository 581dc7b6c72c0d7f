// vecdex/langchain driven by LangChain.js itself: a retriever in a runnable chain, MMR, deletes,
// save/load, fromTexts, and the same top-k as @langchain/community's HNSWLib store (hnswlib-node)
// with exact search on both sides. The embedding is a deterministic hashed bag of words: no model,
// no network.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { HNSWLib } from '@langchain/community/vectorstores/hnswlib'
import { Document, type DocumentInterface } from '@langchain/core/documents'
import { Embeddings } from '@langchain/core/embeddings'
import { RunnableLambda, RunnableSequence } from '@langchain/core/runnables'
import { maximalMarginalRelevance } from '@langchain/core/utils/math'
import { VectorStore } from '@langchain/core/vectorstores'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cosine, DIMENSIONS, embedText, forbidNetwork, makeCorpus, QUERIES, type CorpusEntry } from './adapter-corpus'

const root = resolve(__dirname, '..')
const { VecdexStore } = await import(resolve(root, 'dist', 'langchain.mjs'))
const { Collection } = await import(resolve(root, 'dist', 'esm.mjs'))
type Store = InstanceType<typeof VecdexStore>

class HashedEmbeddings extends Embeddings {
  calls = 0
  constructor() {
    super({})
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    this.calls++
    return texts.map(embedText)
  }
  async embedQuery(text: string): Promise<number[]> {
    this.calls++
    return embedText(text)
  }
}

const corpus = makeCorpus(240)
const documents = () => corpus.map((entry) => new Document({ pageContent: entry.text, metadata: structuredClone(entry.metadata), id: entry.id }))
const embeddings = new HashedEmbeddings()
const tmp = mkdtempSync(join(tmpdir(), 'vecdex-langchain-'))
let restoreNetwork: () => void

beforeAll(() => {
  restoreNetwork = forbidNetwork()
})
afterAll(() => {
  restoreNetwork()
  rmSync(tmp, { recursive: true, force: true })
})

type Predicate = (metadata: CorpusEntry['metadata']) => boolean
// Each vecdex filter with the plain JS predicate that means the same, for HNSWLib's filter callback.
const FILTERS: Array<[string, object | undefined, Predicate | undefined]> = [
  ['no filter', undefined, undefined],
  ['topic = space', { topic: 'space' }, (m) => m.topic === 'space'],
  ['year in [2000, 2010)', { year: { $gte: 2000, $lt: 2010 } }, (m) => m.year >= 2000 && m.year < 2010],
  ['tags contains rare', { tags: { $contains: 'rare' } }, (m) => m.tags.includes('rare')],
  ['music or (history and year > 2015)', { $or: [{ topic: 'music' }, { $and: [{ tags: { $contains: 'history' } }, { year: { $gt: 2015 } }] }] }, (m) => m.topic === 'music' || (m.tags.includes('history') && m.year > 2015)],
  ['topic in [cooking, animals], not news', { topic: { $in: ['cooking', 'animals'] }, $not: { tags: { $contains: 'news' } } }, (m) => ['cooking', 'animals'].includes(m.topic) && !m.tags.includes('news')],
  ['note = draft (a field some documents lack)', { note: 'draft' }, (m) => m.note === 'draft'],
]

/**
 * vecdex's top k agrees with the reference's top k + 1: the same distances position by position,
 * and the same ids except for the order within a tie (equal distances come in any order), and for
 * a tie across the k-th place (either side may keep any of it).
 */
function expectSameTopK(actual: Array<[string, number]>, referenceTopKPlusOne: Array<[string, number]>, k: number, what: string) {
  const expected = referenceTopKPlusOne.slice(0, k)
  const tie = (a: [string, number], b: [string, number]) => Math.abs(a[1] - b[1]) <= 1e-5
  expect(actual.length, what).toBe(expected.length)
  for (let i = 0; i < expected.length; i++) expect(actual[i]![1], `${what}: distance #${i}`).toBeCloseTo(expected[i]![1], 5)
  let start = 0
  for (let i = 1; i <= expected.length; i++) {
    if (i < expected.length && tie(expected[i]!, expected[i - 1]!)) continue
    const acrossK = i === k && referenceTopKPlusOne.length > k && tie(referenceTopKPlusOne[k]!, expected[k - 1]!)
    if (!acrossK) {
      const ids = (list: Array<[string, number]>) => list.slice(start, i).map(([id]) => id).sort()
      expect(ids(actual), `${what}: ranks ${start}..${i - 1}`).toEqual(ids(expected))
    }
    start = i
  }
}

const ranked = (results: Array<[DocumentInterface, number]>): Array<[string, number]> => results.map(([doc, score]) => [doc.id!, score])

describe('VecdexStore (LangChain VectorStore)', () => {
  let flat: Store
  let hnsw: Store
  let reference: HNSWLib

  beforeAll(async () => {
    flat = await VecdexStore.fromDocuments(documents(), embeddings, { index: 'flat' })
    hnsw = await VecdexStore.fromDocuments(documents(), embeddings, { index: 'hnsw', efSearch: corpus.length, seed: 7 })
    reference = await HNSWLib.fromDocuments(documents(), embeddings)
    // hnswlib's ef at least the corpus size: the walk reaches every element (exact search).
    reference.index.setEf(corpus.length)
  })

  it('is a LangChain VectorStore whose documents keep their ids, texts and metadata', async () => {
    expect(flat).toBeInstanceOf(VectorStore)
    expect(flat._vectorstoreType()).toBe('vecdex')
    expect(flat.collection).toBeInstanceOf(Collection)
    expect(flat.collection!.size).toBe(corpus.length)
    expect(flat.collection!.dimensions).toBe(DIMENSIONS)
    const [top] = await flat.similaritySearch(corpus[17]!.text, 1)
    expect(top).toBeInstanceOf(Document)
    expect({ id: top!.id, pageContent: top!.pageContent, metadata: top!.metadata }).toEqual({ id: corpus[17]!.id, pageContent: corpus[17]!.text, metadata: corpus[17]!.metadata })
  })

  it('gives the same top-k, distances and filtered results as HNSWLib, with exact search on both sides', async () => {
    let compared = 0
    for (const [name, filter, predicate] of FILTERS) {
      for (const query of QUERIES) {
        const vector = embedText(query)
        const expected = ranked(await reference.similaritySearchVectorWithScore(vector, 9, predicate ? (doc: DocumentInterface) => predicate(doc.metadata as CorpusEntry['metadata']) : undefined))
        expect(expected.length, `${name}: HNSWLib found results`).toBeGreaterThan(0)
        for (const [label, store] of [['flat', flat], ['hnsw', hnsw]] as const) {
          const actual = ranked(await store.similaritySearchVectorWithScore(vector, 8, filter))
          expectSameTopK(actual, expected, 8, `${label}, ${name}, "${query}"`)
          compared++
        }
      }
    }
    expect(compared).toBe(FILTERS.length * QUERIES.length * 2)
  })

  it('scores are vecdex distances (lower is closer), 1 − cosine similarity as HNSWLib reports', async () => {
    const query = QUERIES[0]!
    const results = await flat.similaritySearchWithScore(query, 5)
    for (const [doc, score] of results) {
      const entry = corpus.find((e) => e.id === doc.id)!
      expect(score).toBeCloseTo(1 - cosine(embedText(query), embedText(entry.text)), 5)
    }
    expect(results.map(([, s]) => s)).toEqual([...results.map(([, s]) => s)].sort((a, b) => a - b))
  })

  it('serves as a retriever inside a runnable chain (RunnableSequence and pipe), with a filter', async () => {
    const retriever = flat.asRetriever({ k: 4, filter: { topic: 'cooking', year: { $gte: 2000 } } })
    const chain = RunnableSequence.from([
      (input: { question: string }) => input.question,
      retriever,
      (docs: DocumentInterface[]) => docs.map((doc) => `${doc.id}:${doc.metadata.topic}:${doc.metadata.year >= 2000}`),
    ])
    const out = await chain.invoke({ question: 'garlic bread in the oven' })
    const direct = await flat.similaritySearch('garlic bread in the oven', 4, { topic: 'cooking', year: { $gte: 2000 } })
    expect(out).toEqual(direct.map((doc) => `${doc.id}:cooking:true`))
    expect(out.length).toBe(4)

    const piped = retriever.pipe(RunnableLambda.from((docs: DocumentInterface[]) => docs.map((doc) => doc.pageContent)))
    expect(await piped.invoke('garlic bread in the oven')).toEqual(direct.map((doc) => doc.pageContent))
    const batch = await retriever.batch(['soup recipe with salt', 'pasta'])
    expect(batch.map((docs) => docs.length)).toEqual([4, 4])
  })

  it('maxMarginalRelevanceSearch picks with LangChain\'s own MMR from the fetchK closest, and the retriever can use it', async () => {
    const query = 'star galaxy nebula telescope'
    const queryVector = embedText(query)
    const fetched = [...corpus]
      .filter((entry) => entry.metadata.topic === 'space')
      .sort((a, b) => cosine(queryVector, embedText(b.text)) - cosine(queryVector, embedText(a.text)))
      .slice(0, 12)
    const picks = maximalMarginalRelevance(queryVector, fetched.map((e) => embedText(e.text)), 0.3, 4)
    const mmr = await flat.maxMarginalRelevanceSearch(query, { k: 4, fetchK: 12, lambda: 0.3, filter: { topic: 'space' } })
    expect(mmr.map((doc) => doc.id)).toEqual(picks.map((i) => fetched[i]!.id))
    // Diversity moved at least one document out of the plain top 4.
    const plain = await flat.similaritySearch(query, 4, { topic: 'space' })
    expect(mmr.map((d) => d.id)).not.toEqual(plain.map((d) => d.id))
    // lambda 1 is relevance alone: the plain top k.
    const relevance = await flat.maxMarginalRelevanceSearch(query, { k: 4, fetchK: 12, lambda: 1, filter: { topic: 'space' } })
    expect(relevance.map((d) => d.id)).toEqual(plain.map((d) => d.id))

    const retriever = flat.asRetriever({ k: 4, searchType: 'mmr', filter: { topic: 'space' }, searchKwargs: { fetchK: 12, lambda: 0.3 } })
    expect((await retriever.invoke(query)).map((d) => d.id)).toEqual(mmr.map((d) => d.id))
  })

  it('deletes by ids and by filter', async () => {
    const store: Store = await VecdexStore.fromDocuments(documents(), embeddings, { index: 'hnsw' })
    const target = corpus[42]!
    expect((await store.similaritySearch(target.text, 1))[0]!.id).toBe(target.id)
    await store.delete({ ids: [target.id, 'no-such-id'] })
    expect(store.collection!.size).toBe(corpus.length - 1)
    expect((await store.similaritySearch(target.text, 5)).map((d) => d.id)).not.toContain(target.id)

    await store.delete({ filter: { topic: 'music' } })
    const musical = corpus.filter((e) => e.metadata.topic === 'music' && e.id !== target.id).length
    expect(store.collection!.size).toBe(corpus.length - 1 - musical)
    expect(await store.collection!.count({ filter: { topic: 'music' } })).toBe(0)
    expect(await store.similaritySearch('piano melody and violin', 5, { topic: 'music' })).toEqual([])

    for (const bad of [{}, { ids: ['a'], filter: { topic: 'x' } }, { ids: 'doc-1' }, null]) {
      await expect(store.delete(bad as never), JSON.stringify(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    }
    await expect(store.delete({ filter: { topic: { $foo: 1 } } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    store.close()
  })

  it('saves to a directory and loads back with the same results', async () => {
    const dir = join(tmp, 'saved')
    await hnsw.save(dir)
    expect(existsSync(join(dir, 'collection.vecdex'))).toBe(true)
    expect(JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8'))).toMatchObject({ format: 'vecdex-langchain', version: 1, hasCollection: true })
    const loaded: Store = await VecdexStore.load(dir, embeddings)
    expect(loaded.collection!.size).toBe(corpus.length)
    for (const [, filter] of FILTERS) {
      for (const query of QUERIES.slice(0, 4)) {
        const before = await hnsw.similaritySearchWithScore(query, 6, filter)
        const after = await loaded.similaritySearchWithScore(query, 6, filter)
        expect(after.map(([d, s]) => [d.id, d.pageContent, d.metadata, s])).toEqual(before.map(([d, s]) => [d.id, d.pageContent, d.metadata, s]))
      }
    }
    // The loaded store still takes documents, into the same collection.
    await loaded.addDocuments([new Document({ pageContent: 'a brand new comet', metadata: { topic: 'space', year: 2024, tags: [], rank: -1 }, id: 'new' })])
    expect((await loaded.similaritySearch('a brand new comet', 1))[0]!.id).toBe('new')
    loaded.close()

    // A store saved before its first document keeps its options and infers dimensions later.
    const emptyDir = join(tmp, 'empty')
    await new VecdexStore(embeddings, { metric: 'cosine', index: 'flat' }).save(emptyDir)
    const empty: Store = await VecdexStore.load(emptyDir, embeddings)
    expect(empty.collection).toBeUndefined()
    expect(await empty.similaritySearch('anything', 3)).toEqual([])
    await empty.addDocuments(documents().slice(0, 3))
    expect(empty.collection!.dimensions).toBe(DIMENSIONS)
    empty.close()
  })

  it('refuses a missing or damaged save with a typed error', async () => {
    await expect(VecdexStore.load(join(tmp, 'nothing-here'), embeddings)).rejects.toMatchObject({ code: 'ERR_IO' })
    const dir = join(tmp, 'damaged')
    await flat.save(dir)
    writeFileSync(join(dir, 'args.json'), '{ not json')
    await expect(VecdexStore.load(dir, embeddings)).rejects.toMatchObject({ code: 'ERR_CORRUPT_FILE' })
    writeFileSync(join(dir, 'args.json'), JSON.stringify({ format: 'vecdex-langchain', version: 99, options: {} }))
    await expect(VecdexStore.load(dir, embeddings)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
    writeFileSync(join(dir, 'args.json'), JSON.stringify({ format: 'vecdex-langchain', version: 1, options: {}, hasCollection: true }))
    writeFileSync(join(dir, 'collection.vecdex'), 'garbage')
    await expect(VecdexStore.load(dir, embeddings)).rejects.toMatchObject({ code: 'ERR_CORRUPT_FILE' })
  })

  it('fromTexts takes one metadata object per text or one for all, and infers the dimensions', async () => {
    const texts = ['rocket orbit', 'bread oven', 'guitar chord']
    const store: Store = await VecdexStore.fromTexts(texts, [{ n: 0 }, { n: 1 }, { n: 2 }], embeddings)
    expect(store.collection!.dimensions).toBe(DIMENSIONS)
    const [top] = await store.similaritySearch('bread', 1)
    expect(top!.pageContent).toBe('bread oven')
    expect(top!.metadata).toEqual({ n: 1 })
    expect(top!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    const shared: Store = await VecdexStore.fromTexts(texts, { source: 'one' }, embeddings, { metric: 'dot', index: 'flat' })
    expect((await shared.similaritySearch('guitar', 3)).map((d) => d.metadata)).toEqual([{ source: 'one' }, { source: 'one' }, { source: 'one' }])
    store.close()
    shared.close()
  })

  it('addVectors and addDocuments take ids, upsert by id, and refuse bad input with ERR_INVALID_ARGUMENT', async () => {
    const store: Store = new VecdexStore(embeddings, { dimensions: DIMENSIONS, index: 'flat' })
    const ids = await store.addVectors([embedText('wolf'), embedText('otter')], [new Document({ pageContent: 'wolf', metadata: {} }), new Document({ pageContent: 'otter', metadata: {} })], { ids: ['w', 'o'] })
    expect(ids).toEqual(['w', 'o'])
    await store.addDocuments([new Document({ pageContent: 'heron', metadata: { v: 2 } })], { ids: ['w'] })
    expect(store.collection!.size).toBe(2)
    expect((await store.similaritySearch('heron', 1))[0]).toMatchObject({ id: 'w', pageContent: 'heron', metadata: { v: 2 } })
    expect(await store.addVectors([], [])).toEqual([])

    await expect(store.addVectors([embedText('a')], [])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(store.addVectors([embedText('a')], [new Document({ pageContent: 'a' })], { ids: ['x', 'y'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(store.addVectors([[1, 2, 3]], [new Document({ pageContent: 'a' })])).rejects.toMatchObject({ code: 'ERR_DIMENSION_MISMATCH' })
    await expect(store.similaritySearch('wolf', 2, { $bogus: [] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    expect(() => new VecdexStore(embeddings, { collection: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    store.close()
    await expect(store.similaritySearch('wolf', 1)).rejects.toMatchObject({ code: 'ERR_CLOSED' })
  })

  it('wraps an existing Collection', async () => {
    const collection = new Collection({ dimensions: DIMENSIONS, index: 'flat' })
    await collection.upsert([{ id: 7, vector: embedText('moth lynx'), text: 'moth lynx', metadata: { k: 'v' } }])
    const store: Store = new VecdexStore(embeddings, { collection })
    expect(store.collection).toBe(collection)
    expect((await store.similaritySearch('moth', 1))[0]).toMatchObject({ id: '7', pageContent: 'moth lynx', metadata: { k: 'v' } })
    collection.close()
  })
})

describe('module formats', () => {
  it('require("vecdex/langchain") extends the CommonJS copy of @langchain/core, and works', () => {
    const script = `
      const { VecdexStore } = require('vecdex/langchain')
      const { VectorStore } = require('@langchain/core/vectorstores')
      const { Document } = require('@langchain/core/documents')
      const embeddings = { embedDocuments: async (t) => t.map((s) => [s.length, 1]), embedQuery: async (s) => [s.length, 1] }
      VecdexStore.fromDocuments([new Document({ pageContent: 'ab', id: 'a' }), new Document({ pageContent: 'abcdefgh', id: 'b' })], embeddings, { index: 'flat', metric: 'l2sq' })
        .then((store) => store.similaritySearch('abcdefg', 1).then((docs) => {
          console.log(store instanceof VectorStore, docs[0] instanceof Document, docs[0].id)
        }))`
    expect(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }).trim()).toBe('true true b')
  })

  it('import "vecdex/langchain" extends the ES module copy of @langchain/core', () => {
    const script = `
      import { VecdexStore } from 'vecdex/langchain'
      import { VectorStore } from '@langchain/core/vectorstores'
      import { createRequire } from 'node:module'
      const cjs = createRequire(import.meta.url)('@langchain/core/vectorstores')
      const store = new VecdexStore({ embedDocuments: async () => [], embedQuery: async () => [] }, { dimensions: 2 })
      console.log(store instanceof VectorStore, cjs.VectorStore === VectorStore)`
    expect(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }).trim()).toBe('true false')
  })

  it('the root entry never loads LangChain (it is an optional peer dependency)', () => {
    const script = `
      require('vecdex')
      console.log(Object.keys(require.cache).filter((p) => /langchain|llamaindex/.test(p)).length)`
    expect(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }).trim()).toBe('0')
    expect(readFileSync(join(root, 'dist', 'esm.mjs'), 'utf8')).not.toMatch(/langchain|llamaindex/)
  })
})
