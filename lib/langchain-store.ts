/**
 * The LangChain.js vector store over a vecdex {@link Collection}, written once for both module
 * formats. `vecdex/langchain` (CommonJS, dist/langchain.js) and its ES module twin
 * (dist/langchain.mjs) each pass in `@langchain/core` as loaded in their own format, so that the
 * store extends the same `VectorStore` class, and builds the same `Document`s, as the user's own
 * LangChain code: `@langchain/core` ships separate CommonJS and ES module copies, and mixing them
 * breaks its class checks and its types (its classes have protected members).
 *
 * Nothing here imports `@langchain/core` at run time; the root `vecdex` entry never loads this
 * file.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DocumentInterface } from '@langchain/core/documents'
import type { EmbeddingsInterface } from '@langchain/core/embeddings'
import type { maximalMarginalRelevance } from '@langchain/core/utils/math'
import type { MaxMarginalRelevanceSearchOptions, VectorStore } from '@langchain/core/vectorstores'
import { Collection, type CollectionHit, type CollectionId, type CollectionOptions, type Filter, type Metadata } from './collection'
import { VecdexError } from './errors'

/**
 * Options of a {@link VecdexStore}: those of a new {@link Collection}, with `dimensions` optional
 * (taken from the first vector added when omitted), or an existing `collection` to wrap.
 */
export type VecdexStoreOptions = (Omit<CollectionOptions, 'dimensions'> & { dimensions?: number; collection?: undefined }) | { collection: Collection }

/** Parameters of {@link VecdexStoreMembers.delete}: the ids to remove, or a filter. */
export type VecdexStoreDeleteParams = { ids: readonly string[] } | { filter: Filter }

/** Options of `addVectors` / `addDocuments`: the ids of the documents, in order. Without them a
 * document keeps its own `id`, or gets a random UUID. An id already in the store is replaced. */
export interface VecdexStoreAddOptions {
  ids?: readonly string[]
}

/** What the vecdex store adds to LangChain's `VectorStore` (whose other methods it inherits:
 * `similaritySearch`, `similaritySearchWithScore`, `asRetriever`, ...). `D` is LangChain's
 * `DocumentInterface` in the caller's module format. */
export interface VecdexStoreMembers<D> {
  /** Filters are vecdex filter objects (see `Collection`): `{ year: { $gte: 2000 } }`. */
  FilterType: Filter
  /** The collection behind the store; undefined until the first vectors are added to a store
   * created without `dimensions`. */
  readonly collection: Collection | undefined
  _vectorstoreType(): 'vecdex'
  /** Embeds the documents' `pageContent` and stores them; returns their ids. */
  addDocuments(documents: D[], options?: VecdexStoreAddOptions): Promise<string[]>
  /** Stores documents with their vectors (text: `pageContent`, metadata: `metadata`); returns
   * their ids. */
  addVectors(vectors: number[][], documents: D[], options?: VecdexStoreAddOptions): Promise<string[]>
  /**
   * The `k` documents closest to `query` that pass `filter`, closest first, each with its vecdex
   * distance (lower is closer: `1 − cosine` for the default metric), the score HNSWLib and FAISS
   * stores return too.
   */
  similaritySearchVectorWithScore(query: number[], k: number, filter?: Filter): Promise<[D, number][]>
  /**
   * Maximal marginal relevance: fetches the `fetchK` (default 20) closest documents that pass
   * `filter`, with their vectors, and picks `k` of them with `@langchain/core`'s
   * `maximalMarginalRelevance` (`lambda` 0.5 by default: 1 is pure relevance, 0 pure diversity).
   */
  maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<Filter>, callbacks?: unknown): Promise<D[]>
  /** Removes the documents with these ids, or those the filter matches. */
  delete(params: VecdexStoreDeleteParams): Promise<void>
  /** Writes the store into `directory` (created if needed): `collection.vecdex` (vectors, ids,
   * texts and metadata, one atomic file) and `args.json` (the store's options). */
  save(directory: string): Promise<void>
  /** Closes the collection (frees its native memory); later calls throw ERR_CLOSED. */
  close(): void
}

/** The class `vecdex/langchain` exports, as seen from one module format: `VS` is LangChain's
 * `VectorStore`, `E` its `EmbeddingsInterface` and `D` its `DocumentInterface`. */
export interface VecdexStoreClass<VS, E, D> {
  new (embeddings: E, options?: VecdexStoreOptions): VecdexStoreMembers<D> & VS
  /** A store of `texts`, each with `metadatas[i]` (or the one `metadatas` object for all). */
  fromTexts(texts: string[], metadatas: object[] | object, embeddings: E, options?: VecdexStoreOptions): Promise<VecdexStoreMembers<D> & VS>
  /** A store of `documents`, embedded with `embeddings`. */
  fromDocuments(documents: D[], embeddings: E, options?: VecdexStoreOptions): Promise<VecdexStoreMembers<D> & VS>
  /** The store `save(directory)` wrote. */
  load(directory: string, embeddings: E): Promise<VecdexStoreMembers<D> & VS>
  lc_name(): string
}

/** What the store needs of `@langchain/core`, in one module format. */
export interface LangChainCore {
  VectorStore: typeof VectorStore
  Document: new (fields: { pageContent: string; metadata?: Record<string, unknown>; id?: string }) => DocumentInterface
  maximalMarginalRelevance: typeof maximalMarginalRelevance
}

const COLLECTION_FILE = 'collection.vecdex'
const ARGS_FILE = 'args.json'
const ARGS_FORMAT = 'vecdex-langchain'
const ARGS_VERSION = 1
const DEFAULT_FETCH_K = 20
const DEFAULT_LAMBDA = 0.5

type NewCollectionOptions = Omit<CollectionOptions, 'dimensions'> & { dimensions?: number }

function invalid(message: string): VecdexError {
  return new VecdexError('ERR_INVALID_ARGUMENT', message)
}

function ioError(message: string, cause: unknown): VecdexError {
  return new VecdexError('ERR_IO', `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
}

/** Defines the store class over one module format's `@langchain/core`. */
export function defineVecdexStore(core: LangChainCore): VecdexStoreClass<VectorStore, EmbeddingsInterface, DocumentInterface> {
  const { VectorStore: Base, Document, maximalMarginalRelevance } = core

  class VecdexStore extends Base {
    declare FilterType: Filter
    #collection: Collection | undefined
    // Kept for a collection created at the first add, and written to args.json by save().
    #options: NewCollectionOptions

    static override lc_name(): string {
      return 'VecdexStore'
    }

    constructor(embeddings: EmbeddingsInterface, options: VecdexStoreOptions = {}) {
      if (options === null || typeof options !== 'object') throw invalid('VecdexStore: options must be an object')
      super(embeddings, options)
      if (options.collection !== undefined) {
        if (!(options.collection instanceof Collection)) throw invalid('VecdexStore: options.collection must be a vecdex Collection')
        this.#collection = options.collection
        this.#options = { dimensions: options.collection.dimensions, metric: options.collection.metric }
      } else {
        const { collection: _, ...collectionOptions } = options
        this.#options = collectionOptions
        if (collectionOptions.dimensions !== undefined) this.#collection = new Collection(collectionOptions as CollectionOptions)
      }
    }

    get collection(): Collection | undefined {
      return this.#collection
    }

    _vectorstoreType(): 'vecdex' {
      return 'vecdex'
    }

    async addDocuments(documents: DocumentInterface[], options?: VecdexStoreAddOptions): Promise<string[]> {
      if (!Array.isArray(documents)) throw invalid('addDocuments: documents must be an array')
      const vectors = await this.embeddings.embedDocuments(documents.map((document) => document.pageContent))
      return this.addVectors(vectors, documents, options)
    }

    async addVectors(vectors: number[][], documents: DocumentInterface[], options?: VecdexStoreAddOptions): Promise<string[]> {
      if (!Array.isArray(vectors) || !Array.isArray(documents)) throw invalid('addVectors: vectors and documents must be arrays')
      if (vectors.length !== documents.length) {
        throw invalid(`addVectors: ${vectors.length} vectors for ${documents.length} documents`)
      }
      const ids = options?.ids
      if (ids !== undefined && (!Array.isArray(ids) || ids.length !== documents.length)) {
        throw invalid(`addVectors: options.ids must be an array of ${documents.length} ids, one per document`)
      }
      if (documents.length === 0) return []
      const assigned = documents.map((document, i) => ids?.[i] ?? document.id ?? randomUUID())
      const collection = this.#collectionFor(vectors[0]!)
      await collection.upsert(
        documents.map((document, i) => ({
          id: assigned[i]!,
          vector: vectors[i]!,
          text: document.pageContent,
          metadata: document.metadata as Metadata,
        })),
      )
      return assigned
    }

    async similaritySearchVectorWithScore(query: number[], k: number, filter?: Filter): Promise<[DocumentInterface, number][]> {
      const collection = this.#collection
      if (collection === undefined) return []
      const hits = await collection.search(query, { k, filter, includeMetadata: true })
      return hits.map((hit) => [this.#document(hit), hit.distance])
    }

    override async maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<Filter>): Promise<DocumentInterface[]> {
      const { k, fetchK = DEFAULT_FETCH_K, lambda = DEFAULT_LAMBDA, filter } = options
      const collection = this.#collection
      if (collection === undefined) return []
      const queryVector = await this.embeddings.embedQuery(query)
      const hits = await collection.search(queryVector, { k: Math.max(fetchK, k), filter, includeMetadata: true, includeVectors: true })
      const chosen = maximalMarginalRelevance(
        queryVector,
        hits.map((hit) => Array.from(hit.vector!)),
        lambda,
        k,
      )
      return chosen.map((i) => this.#document(hits[i]!))
    }

    override async delete(params: VecdexStoreDeleteParams): Promise<void> {
      if (params === null || typeof params !== 'object') throw invalid('delete: pass { ids } or { filter }')
      const hasIds = 'ids' in params && params.ids !== undefined
      const hasFilter = 'filter' in params && params.filter !== undefined
      if (hasIds === hasFilter) throw invalid('delete: pass exactly one of { ids } and { filter }')
      const collection = this.#collection
      if (hasIds) {
        const { ids } = params as { ids: readonly string[] }
        if (!Array.isArray(ids)) throw invalid('delete: ids must be an array')
        if (collection !== undefined) await collection.delete(ids)
      } else if (collection !== undefined) {
        await collection.delete({ filter: (params as { filter: Filter }).filter })
      }
    }

    async save(directory: string): Promise<void> {
      if (typeof directory !== 'string' || directory === '') throw invalid('save: directory must be a non-empty string')
      try {
        await mkdir(directory, { recursive: true })
      } catch (error) {
        throw ioError(`save: cannot create ${directory}`, error)
      }
      const collectionFile = join(directory, COLLECTION_FILE)
      if (this.#collection !== undefined) await this.#collection.save(collectionFile)
      else await rm(collectionFile, { force: true })
      const args = { format: ARGS_FORMAT, version: ARGS_VERSION, options: this.#options, hasCollection: this.#collection !== undefined }
      const argsFile = join(directory, ARGS_FILE)
      const temporary = `${argsFile}.${process.pid}.tmp`
      try {
        await writeFile(temporary, `${JSON.stringify(args, null, 2)}\n`)
        await rename(temporary, argsFile)
      } catch (error) {
        await rm(temporary, { force: true })
        throw ioError(`save: cannot write ${argsFile}`, error)
      }
    }

    static async load(directory: string, embeddings: EmbeddingsInterface): Promise<VecdexStore> {
      if (typeof directory !== 'string' || directory === '') throw invalid('load: directory must be a non-empty string')
      const argsFile = join(directory, ARGS_FILE)
      let text: string
      try {
        text = await readFile(argsFile, 'utf8')
      } catch (error) {
        throw ioError(`load: cannot read ${argsFile}`, error)
      }
      let args: { format?: unknown; version?: unknown; options?: unknown; hasCollection?: unknown }
      try {
        args = JSON.parse(text)
      } catch (error) {
        throw new VecdexError('ERR_CORRUPT_FILE', `load: ${argsFile} is not JSON`, { cause: error })
      }
      if (args === null || typeof args !== 'object' || args.format !== ARGS_FORMAT || typeof args.options !== 'object' || args.options === null) {
        throw new VecdexError('ERR_CORRUPT_FILE', `load: ${argsFile} is not a vecdex LangChain store's args file`)
      }
      if (args.version !== ARGS_VERSION) {
        throw new VecdexError('ERR_UNSUPPORTED_FORMAT', `load: ${argsFile} has version ${String(args.version)}; this vecdex reads version ${ARGS_VERSION}`)
      }
      if (args.hasCollection === true) {
        const collection = await Collection.load(join(directory, COLLECTION_FILE))
        const store = new this(embeddings, { collection })
        store.#options = args.options as NewCollectionOptions
        return store
      }
      return new this(embeddings, args.options as NewCollectionOptions)
    }

    static override async fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, options?: VecdexStoreOptions): Promise<VecdexStore> {
      if (!Array.isArray(texts)) throw invalid('fromTexts: texts must be an array of strings')
      const documents = texts.map(
        (pageContent, i) => new Document({ pageContent, metadata: (Array.isArray(metadatas) ? metadatas[i] : metadatas) as Record<string, unknown> | undefined }),
      )
      return this.fromDocuments(documents, embeddings, options)
    }

    static override async fromDocuments(documents: DocumentInterface[], embeddings: EmbeddingsInterface, options?: VecdexStoreOptions): Promise<VecdexStore> {
      const store = new this(embeddings, options)
      await store.addDocuments(documents)
      return store
    }

    close(): void {
      this.#collection?.close()
    }

    // The collection, created from the first vector's length when the options had no dimensions.
    #collectionFor(firstVector: ArrayLike<number>): Collection {
      if (this.#collection === undefined) {
        if (firstVector === null || typeof firstVector !== 'object' || typeof firstVector.length !== 'number') {
          throw invalid('addVectors: each vector must be an array of numbers')
        }
        this.#collection = new Collection({ ...this.#options, dimensions: firstVector.length } as CollectionOptions)
      }
      return this.#collection
    }

    #document(hit: CollectionHit): DocumentInterface {
      return new Document({ pageContent: hit.text ?? '', metadata: hit.metadata ?? {}, id: idString(hit.id) })
    }
  }

  return VecdexStore as unknown as VecdexStoreClass<VectorStore, EmbeddingsInterface, DocumentInterface>
}

// LangChain ids are strings; a collection made elsewhere may hold integer ids.
function idString(id: CollectionId): string {
  return typeof id === 'string' ? id : String(id)
}
