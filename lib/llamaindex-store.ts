/**
 * The LlamaIndex.TS vector store over a vecdex {@link Collection}, written once for both module
 * formats. `vecdex/llamaindex` (CommonJS, dist/llamaindex.js) and its ES module twin
 * (dist/llamaindex.mjs) each pass in `llamaindex/vector-store` as loaded in their own format:
 * llamaindex ships separate CommonJS and ES module copies whose globals (`Settings.embedModel`)
 * and class checks (`node instanceof TextNode`) do not cross, so the store must extend the
 * `BaseVectorStore`, and build the nodes, of the copy the user's own code loads.
 *
 * Nothing here imports llamaindex at run time; the root `vecdex` entry never loads this file.
 */
import type * as LlamaVectorStore from 'llamaindex/vector-store'
import type { BaseVectorStore, MetadataFilter, MetadataFilters, VectorStoreQuery, VectorStoreQueryResult } from 'llamaindex/vector-store'
import { Collection, type CollectionOptions, type Filter, type Metadata } from './collection'
import { VecdexError } from './errors'

/**
 * Options of a {@link VecdexVectorStore}: those of a new {@link Collection}, with `dimensions`
 * optional (taken from the first node's embedding when omitted), or an existing `collection` to
 * wrap; and `embedModel`, the store's embedding model (LlamaIndex's `Settings.embedModel` when
 * omitted). `Embedding` is LlamaIndex's `BaseEmbedding` in the caller's module format.
 */
export type VecdexVectorStoreOptions<Embedding> = (
  | (Omit<CollectionOptions, 'dimensions'> & { dimensions?: number; collection?: undefined })
  | { collection: Collection }
) & { embedModel?: Embedding }

/** What the vecdex store adds to LlamaIndex's `BaseVectorStore` (whose `add`, `delete(refDocId)`
 * and `query` it implements). */
export interface VecdexVectorStoreMembers {
  /** Node texts are stored in the collection (`text`), so `VectorStoreIndex.fromVectorStore`
   * accepts the store. */
  storesText: true
  /** The collection behind the store; undefined until the first nodes are added to a store
   * created without `dimensions`. */
  readonly collection: Collection | undefined
  /** Writes the collection (vectors, node ids, texts and metadata, one atomic file) to
   * `persistPath`, by default the path the store was loaded from. */
  persist(persistPath?: string): Promise<void>
  /** Closes the collection (frees its native memory); later calls throw ERR_CLOSED. */
  close(): void
}

/** The class `vecdex/llamaindex` exports, as seen from one module format: `Store` is
 * LlamaIndex's `BaseVectorStore` and `Embedding` its `BaseEmbedding`. */
export interface VecdexVectorStoreClass<Store, Embedding> {
  new (options?: VecdexVectorStoreOptions<Embedding>): VecdexVectorStoreMembers & Store
  /** The store `persist(persistPath)` wrote. */
  fromPersistPath(persistPath: string, options?: { embedModel?: Embedding }): Promise<VecdexVectorStoreMembers & Store>
}

/** What the store needs of `llamaindex/vector-store`, in one module format. */
export type LlamaIndexVectorStoreModule = Pick<typeof LlamaVectorStore, 'BaseVectorStore' | 'nodeToMetadata' | 'metadataDictToNode'>

type Node = Parameters<BaseVectorStore['add']>[0][number]
type Embedding = BaseVectorStore['embedModel']
type NewCollectionOptions = Omit<CollectionOptions, 'dimensions'> & { dimensions?: number }

function invalid(message: string): VecdexError {
  return new VecdexError('ERR_INVALID_ARGUMENT', message)
}

type Scalar = string | number | boolean
const isScalar = (value: unknown): value is Scalar =>
  typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean'

const COMPARISONS: Record<string, string> = { '==': '$eq', '!=': '$ne', '>': '$gt', '<': '$lt', '>=': '$gte', '<=': '$lte' }

/**
 * LlamaIndex `MetadataFilters` as a vecdex filter. Follows the semantics of LlamaIndex's own
 * `SimpleVectorStore`: a filter on a key a node lacks matches no node, except `is_empty`.
 *
 * | LlamaIndex            | vecdex                                                  |
 * |-----------------------|---------------------------------------------------------|
 * | `==` `>` `<` `>=` `<=` | `$eq` `$gt` `$lt` `$gte` `$lte`                         |
 * | `!=`, `nin`           | `$ne`, `$nin`, and `$exists: true`                      |
 * | `in`                  | `$in`                                                   |
 * | `contains`            | `$contains` (the key holds an array with the value)     |
 * | `any`, `all`          | `$or`, `$and` of one `$contains` per value              |
 * | `is_empty`            | missing, `null` or `''`: `$not` of `$exists` and `$ne: ''` |
 * | condition `and`/`or`  | `$and` / `$or` (nested `MetadataFilters` too)           |
 *
 * Where vecdex's filter language differs from `SimpleVectorStore`'s JavaScript comparisons: a
 * `null` value counts as a missing key (so `!=` and `nin` skip it); on a key holding an array,
 * `==`, `!=`, `in` and `nin` look at its elements (Mongo semantics); an empty array is not
 * `is_empty`; ranges compare numbers with numbers and strings with strings only. `text_match`
 * has no vecdex equivalent. An operator, condition or value vecdex cannot express throws a
 * VecdexError with code ERR_INVALID_ARGUMENT naming it and its key.
 */
export function metadataFiltersToFilter(filters: MetadataFilters | undefined): Filter | undefined {
  if (filters === undefined || filters === null) return undefined
  return translateFilters(filters, 'filters')
}

function translateFilters(filters: MetadataFilters, path: string): Filter {
  if (typeof filters !== 'object' || !Array.isArray(filters.filters)) {
    throw invalid(`${path}: MetadataFilters must be an object with a "filters" array`)
  }
  const condition = filters.condition ?? 'and'
  if (condition !== 'and' && condition !== 'or') {
    throw invalid(`${path}.condition: unsupported condition "${String(condition)}" (vecdex supports "and" and "or")`)
  }
  const parts = filters.filters.map((filter, i) => {
    const here = `${path}.filters[${i}]`
    // LlamaIndex (Python) nests MetadataFilters; the TS type lists single filters only.
    if (filter !== null && typeof filter === 'object' && 'filters' in filter) return translateFilters(filter as MetadataFilters, here)
    return translateFilter(filter, here)
  })
  // vecdex refuses an empty $and / $or; LlamaIndex's empty "and" admits every node, its empty
  // "or" none.
  if (parts.length === 0) return condition === 'and' ? MATCH_ALL : MATCH_NOTHING
  return condition === 'and' ? { $and: parts } : { $or: parts }
}

const MATCH_ALL: Filter = {}
const MATCH_NOTHING: Filter = { $not: {} }

function translateFilter(filter: MetadataFilter, path: string): Filter {
  if (filter === null || typeof filter !== 'object') throw invalid(`${path}: a MetadataFilter must be an object`)
  const { key, value, operator } = filter
  if (typeof key !== 'string' || key === '') throw invalid(`${path}.key: must be a non-empty string`)
  const where = `${path} (operator "${String(operator)}", key "${key}")`
  const scalar = (): Scalar => {
    if (!isScalar(value)) throw invalid(`${where}: the value must be a string, a finite number or a boolean`)
    return value
  }
  const list = (nonEmpty: boolean): Scalar[] => {
    if (!Array.isArray(value) || !(value as unknown[]).every(isScalar)) {
      throw invalid(`${where}: the value must be an array of strings, finite numbers or booleans`)
    }
    if (nonEmpty && value.length === 0) throw invalid(`${where}: the value must hold at least one element`)
    return value as Scalar[]
  }
  switch (operator) {
    case '==':
    case '>':
    case '<':
    case '>=':
    case '<=':
      return { [key]: { [COMPARISONS[operator]!]: scalar() } }
    case '!=':
      return { [key]: { $exists: true, $ne: scalar() } }
    case 'in':
      return { [key]: { $in: list(false) } }
    case 'nin':
      return { [key]: { $exists: true, $nin: list(false) } }
    case 'contains':
      return { [key]: { $contains: scalar() } }
    case 'any':
      return { $or: list(true).map((element) => ({ [key]: { $contains: element } })) }
    case 'all':
      return { $and: list(true).map((element) => ({ [key]: { $contains: element } })) }
    case 'is_empty':
      return { $not: { [key]: { $exists: true, $ne: '' } } }
    case 'text_match':
      throw invalid(`${where}: text_match (substring search) is not supported by vecdex filters`)
    default:
      throw invalid(`${where}: unknown operator`)
  }
}

/**
 * A similarity where higher is better, as LlamaIndex scores nodes, from a vecdex distance (lower
 * is closer): the cosine similarity or dot product itself for `cosine` and `dot` (`1 − distance`),
 * and `1 / (1 + distance)` for `l2sq`.
 */
export function distanceToSimilarity(distance: number, metric: string): number {
  return metric === 'l2sq' ? 1 / (1 + distance) : 1 - distance
}

/** Defines the store class over one module format's `llamaindex/vector-store`. */
export function defineVecdexVectorStore(llama: LlamaIndexVectorStoreModule): VecdexVectorStoreClass<BaseVectorStore<Collection | undefined>, Embedding> {
  const { BaseVectorStore: Base, nodeToMetadata, metadataDictToNode } = llama

  class VecdexVectorStore extends Base<Collection | undefined> {
    storesText = true as const
    #collection: Collection | undefined
    // Kept for a collection created at the first add.
    readonly #options: NewCollectionOptions
    #persistPath: string | undefined

    constructor(options: VecdexVectorStoreOptions<Embedding> = {}) {
      if (options === null || typeof options !== 'object') throw invalid('VecdexVectorStore: options must be an object')
      const { embedModel, ...rest } = options
      super(embedModel === undefined ? {} : { embedModel })
      if (rest.collection !== undefined) {
        if (!(rest.collection instanceof Collection)) throw invalid('VecdexVectorStore: options.collection must be a vecdex Collection')
        this.#collection = rest.collection
        this.#options = { dimensions: rest.collection.dimensions, metric: rest.collection.metric }
      } else {
        const { collection: _, ...collectionOptions } = rest
        this.#options = collectionOptions
        if (collectionOptions.dimensions !== undefined) this.#collection = new Collection(collectionOptions as CollectionOptions)
      }
    }

    get collection(): Collection | undefined {
      return this.#collection
    }

    client(): Collection | undefined {
      return this.#collection
    }

    /** Stores each node under its `id_`: its embedding, its text (`text`), and its metadata with
     * the node's own fields and `ref_doc_id` (LlamaIndex's `nodeToMetadata`). */
    async add(nodes: Node[]): Promise<string[]> {
      if (!Array.isArray(nodes)) throw invalid('add: nodes must be an array')
      if (nodes.length === 0) return []
      const items = nodes.map((node) => ({
        id: node.id_,
        vector: node.getEmbedding(),
        // 'NONE' is MetadataMode.NONE: the text alone, without metadata.
        text: node.getContent('NONE' as Parameters<Node['getContent']>[0]),
        metadata: nodeToMetadata(node, true, 'text', false) as Metadata,
      }))
      const collection = this.#collectionFor(items[0]!.vector)
      await collection.upsert(items)
      return items.map((item) => item.id)
    }

    /** Removes every node of the source document `refDocId`. */
    async delete(refDocId: string): Promise<void> {
      if (typeof refDocId !== 'string') throw invalid('delete: refDocId must be a string')
      await this.#collection?.delete({ filter: { ref_doc_id: refDocId } })
    }

    /** The `similarityTopK` nodes closest to `queryEmbedding` that pass `filters`, closest first;
     * `similarities` are those of {@link distanceToSimilarity}. Default mode only. */
    async query(query: VectorStoreQuery): Promise<VectorStoreQueryResult> {
      if (query === null || typeof query !== 'object') throw invalid('query: must be a VectorStoreQuery object')
      if (query.mode !== undefined && query.mode !== 'default') {
        throw invalid(`query: mode "${String(query.mode)}" is not supported by the vecdex store (only "default")`)
      }
      if (query.docIds !== undefined) throw invalid('query: docIds is not supported by the vecdex store')
      if (query.queryEmbedding === undefined) throw invalid('query: queryEmbedding is required')
      const filter = metadataFiltersToFilter(query.filters)
      const collection = this.#collection
      if (collection === undefined) return { nodes: [], similarities: [], ids: [] }
      const hits = await collection.search(query.queryEmbedding, { k: query.similarityTopK, filter, includeMetadata: true })
      const nodes = hits.map((hit) => {
        const node = metadataDictToNode(hit.metadata ?? {})
        node.setContent(hit.text ?? '')
        return node
      })
      return {
        nodes,
        similarities: hits.map((hit) => distanceToSimilarity(hit.distance, collection.metric)),
        ids: hits.map((hit) => String(hit.id)),
      }
    }

    async persist(persistPath: string | undefined = this.#persistPath): Promise<void> {
      if (typeof persistPath !== 'string' || persistPath === '') {
        throw invalid('persist: give a file path (the store was not loaded from one)')
      }
      const collection = this.#collection
      if (collection === undefined) throw invalid('persist: the store is empty and has no dimensions yet: add nodes first')
      await collection.save(persistPath)
      this.#persistPath = persistPath
    }

    static async fromPersistPath(persistPath: string, options: { embedModel?: Embedding } = {}): Promise<VecdexVectorStore> {
      if (typeof persistPath !== 'string' || persistPath === '') throw invalid('fromPersistPath: persistPath must be a non-empty string')
      const collection = await Collection.load(persistPath)
      const store = new VecdexVectorStore({ collection, ...(options.embedModel === undefined ? {} : { embedModel: options.embedModel }) })
      store.#persistPath = persistPath
      return store
    }

    close(): void {
      this.#collection?.close()
    }

    // The collection, created from the first embedding's length when the options had no dimensions.
    #collectionFor(firstVector: readonly number[]): Collection {
      if (this.#collection === undefined) {
        if (!Array.isArray(firstVector)) throw invalid('add: each node needs an embedding (an array of numbers)')
        this.#collection = new Collection({ ...this.#options, dimensions: firstVector.length } as CollectionOptions)
      }
      return this.#collection
    }
  }

  return VecdexVectorStore as unknown as VecdexVectorStoreClass<BaseVectorStore<Collection | undefined>, Embedding>
}
