// vecdex/llamaindex driven by LlamaIndex.TS itself: documents indexed by VectorStoreIndex into the
// vecdex store, retrieved by VectorStoreIndex.fromVectorStore(store).asRetriever() with
// MetadataFilters (every operator, compared with LlamaIndex's own SimpleVectorStore on the same
// documents), deleted by ref doc id, persisted and loaded. The embedding is a deterministic hashed
// bag of words set as Settings.embedModel: no model, no network.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  BaseEmbedding,
  BaseVectorStore,
  Document,
  MetadataMode,
  Settings,
  TextNode,
  VectorStoreIndex,
  storageContextFromDefaults,
  type MetadataFilter,
  type MetadataFilters,
  type NodeWithScore,
} from 'llamaindex'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cosine, DIMENSIONS, embedText, forbidNetwork, makeCorpus, QUERIES } from './adapter-corpus'

const root = resolve(__dirname, '..')
const { VecdexVectorStore, metadataFiltersToFilter, distanceToSimilarity } = await import(resolve(root, 'dist', 'llamaindex.mjs'))
const { Collection } = await import(resolve(root, 'dist', 'esm.mjs'))
type Store = InstanceType<typeof VecdexVectorStore>

class HashedEmbedding extends BaseEmbedding {
  async getTextEmbedding(text: string): Promise<number[]> {
    return embedText(text)
  }
}

const corpus = makeCorpus(160)
// Some documents hold a null note: LlamaIndex's is_empty counts it as empty. Metadata stays out of
// the embedded text, so that a node's vector is embedText(its text).
const documents = () =>
  corpus.map(
    (entry, i) =>
      new Document({
        id_: entry.id,
        text: entry.text,
        metadata: i % 10 === 5 ? { ...structuredClone(entry.metadata), note: null } : structuredClone(entry.metadata),
        excludedEmbedMetadataKeys: ['topic', 'year', 'tags', 'rank', 'note'],
      }),
  )
const tmp = mkdtempSync(join(tmpdir(), 'vecdex-llamaindex-'))
let restoreNetwork: () => void

async function indexInto(vectorStore: BaseVectorStore): Promise<VectorStoreIndex> {
  return VectorStoreIndex.fromDocuments(documents(), { storageContext: await storageContextFromDefaults({ vectorStore }) })
}

const refDocIds = (results: NodeWithScore[]) => results.map((r) => r.node.sourceNode!.nodeId)

let store: Store
let reference: VectorStoreIndex

beforeAll(async () => {
  restoreNetwork = forbidNetwork()
  Settings.embedModel = new HashedEmbedding()
  store = new VecdexVectorStore({ index: 'flat' })
  await indexInto(store)
  // LlamaIndex's in-memory store on the same documents: the meaning of each filter operator.
  reference = await VectorStoreIndex.fromDocuments(documents())
})
afterAll(() => {
  restoreNetwork()
  rmSync(tmp, { recursive: true, force: true })
})

const op = (key: string, operator: MetadataFilter['operator'], value?: MetadataFilter['value']): MetadataFilter => (value === undefined ? { key, operator } : { key, operator, value })
const FILTERS: Array<[string, MetadataFilters]> = [
  ['==', { filters: [op('topic', '==', 'space')] }],
  ['!= (skips nodes without the key)', { filters: [op('note', '!=', 'draft')] }],
  ['>', { filters: [op('year', '>', 2015)] }],
  ['<', { filters: [op('year', '<', 1995)] }],
  ['>= and <=', { filters: [op('year', '>=', 2000), op('year', '<=', 2004)] }],
  ['in', { filters: [op('topic', 'in', ['music', 'animals'])] }],
  ['nin (skips nodes without the key)', { filters: [op('note', 'nin', ['final'])] }],
  ['any', { filters: [op('tags', 'any', ['rare', 'photo'])] }],
  ['all', { filters: [op('tags', 'all', ['guide', 'news'])] }],
  ['contains', { filters: [op('tags', 'contains', 'history')] }],
  ['is_empty (missing, null or empty string)', { filters: [op('note', 'is_empty')] }],
  ['or', { filters: [op('topic', '==', 'cooking'), op('year', '>=', 2020)], condition: 'or' }],
  ['and of three', { filters: [op('topic', '==', 'music'), op('tags', 'contains', 'review'), op('year', '<', 2010)], condition: 'and' }],
  ['== on a key no node has', { filters: [op('missing', '==', 'x')] }],
  ['no filters (and)', { filters: [] }],
  ['no filters (or)', { filters: [], condition: 'or' }],
]

describe('VecdexVectorStore (LlamaIndex BaseVectorStore)', () => {
  it('is a BaseVectorStore that stores text, filled through VectorStoreIndex', async () => {
    expect(store).toBeInstanceOf(BaseVectorStore)
    expect(store.storesText).toBe(true)
    expect(store.client()).toBeInstanceOf(Collection)
    expect(store.collection!.size).toBe(corpus.length)
    expect(store.collection!.dimensions).toBe(DIMENSIONS)
  })

  it('VectorStoreIndex.fromVectorStore(store).asRetriever() returns the closest nodes, with their text, metadata, source and cosine scores', async () => {
    const index = await VectorStoreIndex.fromVectorStore(store)
    const query = QUERIES[2]!
    const results = await index.asRetriever({ similarityTopK: 5 }).retrieve(query)
    const expected = [...corpus].sort((a, b) => cosine(embedText(query), embedText(b.text)) - cosine(embedText(query), embedText(a.text))).slice(0, 5)
    expect(refDocIds(results)).toEqual(expected.map((e) => e.id))
    for (const [i, { node, score }] of results.entries()) {
      const entry = expected[i]!
      expect(node).toBeInstanceOf(TextNode)
      expect(node.getContent(MetadataMode.NONE)).toBe(entry.text)
      expect(node.metadata).toMatchObject({ topic: entry.metadata.topic, year: entry.metadata.year, tags: entry.metadata.tags })
      expect(score).toBeCloseTo(cosine(embedText(query), embedText(entry.text)), 5)
    }
  })

  it('MetadataFilters select the same nodes as LlamaIndex\'s SimpleVectorStore, operator by operator', async () => {
    const index = await VectorStoreIndex.fromVectorStore(store)
    for (const [name, filters] of FILTERS) {
      for (const query of QUERIES.slice(0, 3)) {
        const options = { similarityTopK: corpus.length, filters }
        // vecdex counts a null value as a missing key (documented): != and nin skip it.
        const skipsNull = filters.filters.some((f) => f.operator === '!=' || f.operator === 'nin')
        const expected = (await reference.asRetriever(options).retrieve(query)).filter((r) => !skipsNull || r.node.metadata.note !== null)
        const actual = await index.asRetriever(options).retrieve(query)
        expect(new Set(refDocIds(actual)), `${name}, "${query}"`).toEqual(new Set(refDocIds(expected)))
        expect(actual.map((r) => r.score).map((s) => Math.round(s! * 1e5)), name).toEqual(expected.map((r) => r.score).map((s) => Math.round(s! * 1e5)))
      }
    }
    // The comparisons are not vacuous: each filter selects a non-empty proper subset, except the
    // three that select nothing or everything by design.
    const sizes = await Promise.all(FILTERS.map(([name, filters]) => index.asRetriever({ similarityTopK: corpus.length, filters }).retrieve('x').then((r) => [name, r.length] as const)))
    const trivial = sizes.filter(([, n]) => n === 0 || n === corpus.length).map(([name]) => name)
    expect(trivial).toEqual(['== on a key no node has', 'no filters (and)', 'no filters (or)'])
  })

  it('nested MetadataFilters (as LlamaIndex Python writes them) combine like the conditions say', async () => {
    const index = await VectorStoreIndex.fromVectorStore(store)
    const nested = { filters: [op('topic', '==', 'space'), { filters: [op('year', '<', 2000), op('tags', 'contains', 'rare')], condition: 'or' }], condition: 'and' } as unknown as MetadataFilters
    const results = await index.asRetriever({ similarityTopK: corpus.length, filters: nested }).retrieve('rocket')
    const expected = corpus.filter((e) => e.metadata.topic === 'space' && (e.metadata.year < 2000 || e.metadata.tags.includes('rare'))).map((e) => e.id)
    expect(expected.length).toBeGreaterThan(3)
    expect(new Set(refDocIds(results))).toEqual(new Set(expected))
  })

  it('similarityTopK bounds the results, closest first', async () => {
    const index = await VectorStoreIndex.fromVectorStore(store)
    const results = await index.asRetriever({ similarityTopK: 3, filters: { filters: [op('topic', '==', 'animals')] } }).retrieve('otter and beaver by the river')
    expect(results.length).toBe(3)
    expect(results.every((r) => r.node.metadata.topic === 'animals')).toBe(true)
    const scores = results.map((r) => r.score!)
    expect(scores).toEqual([...scores].sort((a, b) => b - a))
  })

  it('an operator vecdex cannot express, or a malformed filter, is ERR_INVALID_ARGUMENT naming it', async () => {
    const index = await VectorStoreIndex.fromVectorStore(store)
    const retrieve = (filters: MetadataFilters) => index.asRetriever({ similarityTopK: 3, filters }).retrieve('rocket')
    await expect(retrieve({ filters: [op('topic', 'text_match', 'roc')] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/text_match.*"topic"|"topic".*text_match/) })
    await expect(retrieve({ filters: [op('topic', 'like' as never, 'x')] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('"like"') })
    await expect(retrieve({ filters: [op('topic', '==', ['a', 'b'])] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('filters.filters[0]') })
    await expect(retrieve({ filters: [op('topic', 'in', 'space')] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(retrieve({ filters: [op('tags', 'any', [])] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(retrieve({ filters: [op('topic', '==', 'space')], condition: 'not' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('"not"') })
    await expect(store.query({ similarityTopK: 1, mode: 'mmr' as never, queryEmbedding: embedText('a') })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(store.query({ similarityTopK: 1, mode: 'default' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('translates MetadataFilters to the vecdex filter language', () => {
    expect(metadataFiltersToFilter(undefined)).toBeUndefined()
    expect(metadataFiltersToFilter({ filters: [op('a', '==', 1), op('b', 'nin', ['x'])], condition: 'or' })).toEqual({ $or: [{ a: { $eq: 1 } }, { b: { $exists: true, $nin: ['x'] } }] })
    expect(metadataFiltersToFilter({ filters: [op('t', 'all', ['p', 'q'])] })).toEqual({ $and: [{ $and: [{ t: { $contains: 'p' } }, { t: { $contains: 'q' } }] }] })
    expect(distanceToSimilarity(0.25, 'cosine')).toBe(0.75)
    expect(distanceToSimilarity(3, 'l2sq')).toBe(0.25)
  })

  it('index.deleteRefDoc removes every node of that document from the store', async () => {
    const own: Store = new VecdexVectorStore({ index: 'hnsw', efSearch: 400 })
    const index = await indexInto(own)
    const target = corpus[11]!
    expect(refDocIds(await index.asRetriever({ similarityTopK: 1 }).retrieve(target.text))).toEqual([target.id])
    await index.deleteRefDoc(target.id)
    expect(own.collection!.size).toBe(corpus.length - 1)
    const after = await (await VectorStoreIndex.fromVectorStore(own)).asRetriever({ similarityTopK: 5 }).retrieve(target.text)
    expect(refDocIds(after)).not.toContain(target.id)
    await own.delete('no-such-document')
    expect(own.collection!.size).toBe(corpus.length - 1)
    await expect(own.delete(7 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    own.close()
  })

  it('persists to one file and loads back with the same retrieval results', async () => {
    const file = join(tmp, 'store.vecdex')
    await store.persist(file)
    const loaded: Store = await VecdexVectorStore.fromPersistPath(file)
    expect(loaded.collection!.size).toBe(corpus.length)
    const before = await VectorStoreIndex.fromVectorStore(store)
    const after = await VectorStoreIndex.fromVectorStore(loaded)
    for (const [, filters] of FILTERS.slice(0, 6)) {
      for (const query of QUERIES.slice(0, 4)) {
        const a = await before.asRetriever({ similarityTopK: 4, filters }).retrieve(query)
        const b = await after.asRetriever({ similarityTopK: 4, filters }).retrieve(query)
        const view = (results: NodeWithScore[]) => results.map((r) => [r.node.id_, r.node.getContent(MetadataMode.NONE), r.node.metadata, r.score])
        expect(view(b)).toEqual(view(a))
      }
    }
    // persist() without a path writes back to where the store was loaded from.
    await loaded.add([new TextNode({ id_: 'extra', text: 'comet choir', embedding: embedText('comet choir'), metadata: { topic: 'space' } })])
    await loaded.persist()
    const again: Store = await VecdexVectorStore.fromPersistPath(file)
    expect(again.collection!.size).toBe(corpus.length + 1)
    loaded.close()
    again.close()

    await expect(new VecdexVectorStore({ dimensions: 4 }).persist()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(VecdexVectorStore.fromPersistPath(join(tmp, 'missing.vecdex'))).rejects.toMatchObject({ code: 'ERR_IO' })
  })

  it('scores are the dot product under metric dot, and 1 / (1 + squared distance) under l2sq', async () => {
    const nodes = () => [new TextNode({ id_: 'p', text: 'p', embedding: [0.6, 0.8] }), new TextNode({ id_: 'q', text: 'q', embedding: [2, 0] })]
    const dot: Store = new VecdexVectorStore({ metric: 'dot', index: 'flat' })
    await dot.add(nodes())
    const byDot = await dot.query({ queryEmbedding: [1, 1], similarityTopK: 2, mode: 'default' as never })
    expect(byDot.ids).toEqual(['q', 'p'])
    byDot.similarities.forEach((s, i) => expect(s).toBeCloseTo([2, 1.4][i]!, 5))
    const l2: Store = new VecdexVectorStore({ metric: 'l2sq', index: 'flat' })
    await l2.add(nodes())
    const byL2 = await l2.query({ queryEmbedding: [1, 1], similarityTopK: 2, mode: 'default' as never })
    expect(byL2.ids).toEqual(['p', 'q'])
    byL2.similarities.forEach((s, i) => expect(s).toBeCloseTo(1 / (1 + [0.2, 2][i]!), 5))
    dot.close()
    l2.close()
  })

  it('an empty store answers queries with nothing, and infers its dimensions from the first node', async () => {
    const empty: Store = new VecdexVectorStore()
    expect(empty.collection).toBeUndefined()
    expect(await empty.query({ similarityTopK: 3, mode: 'default' as never, queryEmbedding: embedText('a') })).toEqual({ nodes: [], similarities: [], ids: [] })
    expect(await empty.add([])).toEqual([])
    await empty.add([new TextNode({ id_: 'n1', text: 'x', embedding: [1, 0, 0], metadata: {} })])
    expect(empty.collection!.dimensions).toBe(3)
    empty.close()
  })
})

describe('module formats', () => {
  it('require("vecdex/llamaindex") extends the CommonJS copy of llamaindex, and works with it', () => {
    const script = `
      const { VecdexVectorStore } = require('vecdex/llamaindex')
      const { BaseVectorStore, TextNode, Settings } = require('llamaindex')
      Settings.embedModel = { getQueryEmbedding: async () => [1, 0] }
      const store = new VecdexVectorStore({ index: 'flat' })
      store.add([new TextNode({ id_: 'a', text: 'hello', embedding: [1, 0] }), new TextNode({ id_: 'b', text: 'bye', embedding: [0, 1] })])
        .then(() => store.query({ queryEmbedding: [0.1, 1], similarityTopK: 1, mode: 'default' }))
        .then((r) => console.log(store instanceof BaseVectorStore, r.nodes[0] instanceof TextNode, r.ids[0], r.nodes[0].getContent('NONE')))`
    const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' })
    expect(out.trim()).toBe('true true b bye')
  })

  it('the root entry never loads llamaindex (it is an optional peer dependency)', () => {
    const script = `
      require('vecdex')
      console.log(Object.keys(require.cache).filter((p) => /llamaindex|langchain/.test(p)).length)`
    expect(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }).trim()).toBe('0')
    expect(readFileSync(join(root, 'dist', 'esm.mjs'), 'utf8')).not.toMatch(/langchain|llamaindex/)
  })
})
