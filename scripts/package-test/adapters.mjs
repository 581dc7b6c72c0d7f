// The adapter subpaths of the package test: `vecdex/langchain` and `vecdex/llamaindex`, as
// installed from the tarball, with their peers (`@langchain/core`, `llamaindex`: optional peer
// dependencies, which the offline install leaves out) linked in from the repository's
// devDependencies, so nothing is downloaded.
//
//   run    through require() and import: each entry extends its own module format's copy of the
//          library (the CommonJS entry the CommonJS copy, the ES module entry the ES module copy),
//          stores and finds a document, and resolves to node_modules/vecdex/dist/;
//   types  strict consumer projects (ESM: nodenext, exactOptionalPropertyTypes,
//          noUncheckedIndexedAccess, verbatimModuleSyntax; CJS: node16) compile uses of both
//          adapters with the libraries' own types (the store is a VectorStore / BaseVectorStore,
//          its retriever goes into a RunnableSequence, VectorStoreIndex.fromVectorStore takes
//          it), and reject a misuse each. skipLibCheck is false, so vecdex's declarations are
//          checked too; errors inside the libraries' own declarations are counted and left out
//          (any project that uses them with these settings needs skipLibCheck true:
//          @langchain/core's .d.cts import the ES-module-only js-tiktoken, and it and langsmith
//          fail exactOptionalPropertyTypes; llamaindex's import the ES-module-only
//          @llamaindex/env, types of `ajv` it does not depend on, and the DOM's MediaStream).

import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const PEERS = ['@langchain/core', 'llamaindex']

const RUN_CJS = String.raw`'use strict'
const assert = require('node:assert')
const path = require('node:path')
const { VecdexStore } = require('vecdex/langchain')
const { VectorStore } = require('@langchain/core/vectorstores')
const { Document } = require('@langchain/core/documents')
const { VecdexVectorStore } = require('vecdex/llamaindex')
const { BaseVectorStore, TextNode } = require('llamaindex')
const within = (p) => path.relative(process.cwd(), p).split(path.sep).join('/')
;(async () => {
  assert.equal(within(require.resolve('vecdex/langchain')), 'node_modules/vecdex/dist/langchain.js')
  assert.equal(within(require.resolve('vecdex/llamaindex')), 'node_modules/vecdex/dist/llamaindex.js')
  const embeddings = { embedDocuments: async (texts) => texts.map((t) => [t.length, 1]), embedQuery: async (t) => [t.length, 1] }
  const store = await VecdexStore.fromDocuments([new Document({ pageContent: 'ab', id: 'a' }), new Document({ pageContent: 'abcdefgh', id: 'b' })], embeddings, { index: 'flat', metric: 'l2sq' })
  const [doc] = await store.similaritySearch('abcdefg', 1)
  assert.ok(store instanceof VectorStore && doc instanceof Document && doc.id === 'b', 'langchain (require)')
  const vectors = new VecdexVectorStore({ index: 'flat', embedModel: {} })
  await vectors.add([new TextNode({ id_: 'n1', text: 'hello', embedding: [1, 0] }), new TextNode({ id_: 'n2', text: 'bye', embedding: [0, 1] })])
  const found = await vectors.query({ queryEmbedding: [0.1, 1], similarityTopK: 1, mode: 'default' })
  assert.ok(vectors instanceof BaseVectorStore && found.nodes[0] instanceof TextNode && found.ids[0] === 'n2', 'llamaindex (require)')
  console.log('require: vecdex/langchain and vecdex/llamaindex extend the CommonJS copies of their libraries, store and find')
})().catch((error) => {
  console.error(error.stack)
  process.exitCode = 1
})
`

const RUN_ESM = String.raw`import assert from 'node:assert'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { VecdexStore } from 'vecdex/langchain'
import { VectorStore } from '@langchain/core/vectorstores'
import { Document } from '@langchain/core/documents'
import { VecdexVectorStore } from 'vecdex/llamaindex'
import { BaseVectorStore, TextNode } from 'llamaindex'
const require = createRequire(import.meta.url)
assert.ok(fileURLToPath(import.meta.resolve('vecdex/langchain')).endsWith('/node_modules/vecdex/dist/langchain.mjs'))
assert.ok(fileURLToPath(import.meta.resolve('vecdex/llamaindex')).endsWith('/node_modules/vecdex/dist/llamaindex.mjs'))
const embeddings = { embedDocuments: async (texts) => texts.map((t) => [t.length, 1]), embedQuery: async (t) => [t.length, 1] }
const store = await VecdexStore.fromDocuments([new Document({ pageContent: 'ab', id: 'a' }), new Document({ pageContent: 'abcdefgh', id: 'b' })], embeddings, { index: 'flat', metric: 'l2sq' })
const [doc] = await store.similaritySearch('abcdefg', 1)
assert.ok(store instanceof VectorStore && doc instanceof Document && doc.id === 'b', 'langchain (import)')
assert.ok(!(store instanceof require('@langchain/core/vectorstores').VectorStore), 'the ES module entry must not extend the CommonJS copy')
const vectors = new VecdexVectorStore({ index: 'flat', embedModel: {} })
await vectors.add([new TextNode({ id_: 'n1', text: 'hello', embedding: [1, 0] }), new TextNode({ id_: 'n2', text: 'bye', embedding: [0, 1] })])
const found = await vectors.query({ queryEmbedding: [0.1, 1], similarityTopK: 1, mode: 'default' })
assert.ok(vectors instanceof BaseVectorStore && found.nodes[0] instanceof TextNode && found.ids[0] === 'n2', 'llamaindex (import)')
console.log('import: vecdex/langchain and vecdex/llamaindex extend the ES module copies of their libraries, store and find')
`

// What users write with the LangChain adapter. Wrapped in a function: the CJS project has no
// top-level await.
const LANGCHAIN_USES = String.raw`import { VecdexStore, type VecdexStoreOptions, type Filter } from 'vecdex/langchain'
import { Collection } from 'vecdex'
import { Document, type DocumentInterface } from '@langchain/core/documents'
import { Embeddings } from '@langchain/core/embeddings'
import { RunnableSequence } from '@langchain/core/runnables'
import type { VectorStore } from '@langchain/core/vectorstores'

class Fixed extends Embeddings {
  constructor() {
    super({})
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map(() => [1, 0])
  }
  async embedQuery(): Promise<number[]> {
    return [1, 0]
  }
}

export async function useLangChain(): Promise<number> {
  const options: VecdexStoreOptions = { index: 'flat', fields: { topic: 'string' } }
  const store = await VecdexStore.fromDocuments([new Document({ pageContent: 'a', metadata: { topic: 'x' } })], new Fixed(), options)
  const asBase: VectorStore = store
  const ids: string[] = await store.addDocuments([new Document({ pageContent: 'b', metadata: {} })], { ids: ['b'] })
  const filter: Filter = { topic: { $in: ['x'] } }
  const scored: [DocumentInterface, number][] = await store.similaritySearchWithScore('a', 1, filter)
  const chain = RunnableSequence.from([store.asRetriever({ k: 1, filter }), (docs: DocumentInterface[]) => docs.length])
  const count: number = await chain.invoke('a')
  await store.maxMarginalRelevanceSearch('a', { k: 1, fetchK: 4, lambda: 0.5, filter })
  await store.delete({ ids })
  await store.delete({ filter: { topic: 'x' } })
  await store.save('dir')
  const loaded = await VecdexStore.load('dir', new Fixed())
  const collection: Collection | undefined = loaded.collection
  const wrapped = new VecdexStore(new Fixed(), { collection: new Collection({ dimensions: 2 }) })
  // @ts-expect-error TS2353 a store wraps a collection or makes one, not both
  new VecdexStore(new Fixed(), { collection: new Collection({ dimensions: 2 }), dimensions: 2 })
  wrapped.close()
  return asBase === store ? scored.length + count + (collection?.size ?? 0) : 0
}
`

const LLAMAINDEX_USES = String.raw`import { VecdexVectorStore, metadataFiltersToFilter, type VecdexVectorStoreOptions, type Filter } from 'vecdex/llamaindex'
import { Collection } from 'vecdex'
import { VectorStoreIndex, storageContextFromDefaults, type BaseVectorStore, type MetadataFilters, type NodeWithScore } from 'llamaindex'

export async function useLlamaIndex(): Promise<number> {
  const options: VecdexVectorStoreOptions<never> = { index: 'hnsw', fields: { year: 'number' } }
  const store = new VecdexVectorStore(options)
  const asBase: BaseVectorStore = store
  await storageContextFromDefaults({ vectorStore: store })
  const index = await VectorStoreIndex.fromVectorStore(store)
  const filters: MetadataFilters = { filters: [{ key: 'year', operator: '>=', value: 2000 }], condition: 'and' }
  const results: NodeWithScore[] = await index.asRetriever({ similarityTopK: 3, filters }).retrieve('query')
  const filter: Filter | undefined = metadataFiltersToFilter(filters)
  await store.persist('store.vecdex')
  const loaded = await VecdexVectorStore.fromPersistPath('store.vecdex')
  const collection: Collection | undefined = loaded.collection
  // @ts-expect-error TS2345 delete takes the ref doc id, a string
  await store.delete(7)
  return asBase === store && filter !== undefined ? results.length + (collection?.size ?? 0) : 0
}
`

const STRICT = { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', types: ['node'] }
const MODES = [
  {
    name: 'esm',
    packageJson: { name: 'vecdex-adapter-types-esm', private: true, type: 'module' },
    compilerOptions: { ...STRICT, module: 'nodenext', moduleResolution: 'nodenext', lib: ['ES2022'], exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, verbatimModuleSyntax: true },
  },
  {
    name: 'cjs',
    packageJson: { name: 'vecdex-adapter-types-cjs', private: true },
    compilerOptions: { ...STRICT, module: 'node16', moduleResolution: 'node16', lib: ['ES2022'] },
  },
]
const CHECKS = [
  { adapter: 'langchain', file: 'langchain-uses.ts', source: LANGCHAIN_USES },
  { adapter: 'llamaindex', file: 'llamaindex-uses.ts', source: LLAMAINDEX_USES },
]

/** `file(line,col): error TSxxxx: ...` lines of tsc's output. */
const diagnostics = (output) => output.split('\n').filter((line) => /^[^\s(][^(]*\(\d+,\d+\): error TS\d+:/.test(line))
/** An error inside a library's declarations: under node_modules, but not vecdex's. */
const inLibrary = (line) => {
  const file = line.slice(0, line.indexOf('(')).replace(/\\/g, '/')
  return file.includes('node_modules/') && !file.includes('node_modules/vecdex/')
}

/**
 * @param {{ root: string, project: string, node: string, env: object, ok: Function, fail: Function }} t
 *   project: a folder whose node_modules holds the vecdex installed from the tarball
 */
export function checkAdapters({ root, project, node, env, ok, fail }) {
  const modules = join(project, 'node_modules')
  for (const name of PEERS) {
    const source = join(root, 'node_modules', name)
    if (!existsSync(source)) fail(`adapters: ${name} (a devDependency) is not installed: run npm ci`)
    const link = join(modules, name)
    mkdirSync(dirname(link), { recursive: true })
    // Node resolves a package through its real path, so the peers' own dependencies come from
    // the repository's node_modules too.
    if (!existsSync(link)) symlinkSync(realpathSync(source), link, 'junction')
  }

  writeFileSync(join(project, 'adapters.cjs'), RUN_CJS)
  writeFileSync(join(project, 'adapters.mjs'), RUN_ESM)
  for (const entry of ['adapters.cjs', 'adapters.mjs']) {
    const result = spawnSync(node, [entry], { cwd: project, env, encoding: 'utf8', timeout: 90_000 })
    if (result.status !== 0) fail(`adapters: node ${entry} exited with ${result.status ?? result.signal}:\n${`${result.stdout}${result.stderr}`.trim()}`)
    ok(`adapters: ${result.stdout.trim()}`)
  }

  const compiler = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  for (const mode of MODES) {
    for (const check of CHECKS) {
      const dir = join(project, `adapter-types-${check.adapter}-${mode.name}`)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, check.file), check.source)
      writeFileSync(join(dir, 'package.json'), `${JSON.stringify(mode.packageJson, null, 2)}\n`)
      const compilerOptions = mode.compilerOptions
      writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions, files: [check.file] }, null, 2)}\n`)
      const result = spawnSync(node, [compiler, '-p', join(dir, 'tsconfig.json'), '--listFiles'], { cwd: dir, env, encoding: 'utf8', timeout: 180_000, maxBuffer: 64 * 1024 * 1024 })
      const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
      const errors = diagnostics(output)
      const ours = errors.filter((line) => !inLibrary(line))
      if (result.error || (result.status !== 0 && errors.length === 0)) fail(`adapters: tsc (${check.adapter}, ${mode.name}) failed: ${result.error?.message ?? output}`)
      if (ours.length > 0) fail(`adapters: tsc (${check.adapter}, ${mode.name}):\n${ours.join('\n')}`)
      const declaration = `node_modules/vecdex/dist/${check.adapter}.${mode.name === 'esm' ? 'd.mts' : 'd.ts'}`
      if (!output.split('\n').some((line) => line.trim().replace(/\\/g, '/').endsWith(declaration))) fail(`adapters: tsc (${check.adapter}, ${mode.name}) did not check ${declaration}`)
      const ignored = errors.length > 0 ? `; ${errors.length} errors inside the libraries' own declarations left out` : ''
      ok(`adapters: types (${mode.name}, ${compilerOptions.module}): ${check.file} and ${declaration} compile with 0 errors, its misuse is rejected${ignored}`)
    }
  }
}
