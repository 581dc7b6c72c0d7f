import native = require('./native')
import { abortHandle } from './abort'
import { type CompressionOptions, type MemoryParts, nativeCompression } from './compression'
import { abortError, awaitNative, callNative, invalidArgument, VecdexError } from './errors'
import { checkBuffer, checkPath, loaders } from './index-base'
import type { FullVectorsOptions, HnswIndexOptions } from './hnsw-index'
import { checkOptions, defaultOf } from './options'
import { describe, type Metric, toMatrix, toVector, type VectorInput } from './validate'

/** An item's id: a non-empty string (a UUID, a path) or a whole number from 0 to 2^53 − 1.
 * `5` and `'5'` are different ids. */
export type CollectionId = string | number

/** A JSON value in metadata. */
export type MetadataValue = string | number | boolean | null | MetadataValue[] | { [key: string]: MetadataValue }

/** An item's metadata: a JSON object. Filters read its top-level fields, and nested ones by a
 * dotted path (`'author.name'`). */
export type Metadata = { [field: string]: MetadataValue }

/** The type of a declared metadata field (see {@link CollectionOptions.fields}). */
export type FieldType = 'string' | 'number' | 'boolean' | 'string[]'

/**
 * A metadata filter, in the language of Chroma, Pinecone and MongoDB:
 * - `{ field: value }` means `{ field: { $eq: value } }`; keys of one object are ANDed, and so
 *   are several operators on one field (`{ year: { $gte: 2000, $lt: 2010 } }`);
 * - `$eq $ne $gt $gte $lt $lte` take a string, number or boolean (ranges compare numbers with
 *   numbers and strings with strings); `$in $nin` an array of them; `$exists` a boolean;
 *   `$contains` a value the field (an array) must hold;
 * - `$and` and `$or` take an array of filters, `$not` one filter;
 * - on an array field, `$eq` and `$in` match when any element does; `$ne` and `$nin` also match
 *   items without the field; a field no item has matches nothing (it is not an error).
 *
 * A malformed filter is ERR_INVALID_ARGUMENT naming the operator and its path.
 */
export type Filter = { [key: string]: unknown }

/** Options of a {@link Collection}. */
export interface CollectionOptions extends CompressionOptions {
  /** Dimensions of every vector (1 to 65,536). */
  dimensions: number
  /** Distance metric: 'cosine' (default; vectors are normalised when added), 'dot' or 'l2sq'. */
  metric?: Exclude<Metric, 'hamming'>
  /** The index under the collection: 'hnsw' (default; approximate, fast) or 'flat' (exact scan). */
  index?: 'hnsw' | 'flat'
  /**
   * Declared metadata fields, by name: kept column-wise with a bitmap per value (and values in
   * order, for ranges), so filters on them compile to bitmaps without reading each item. An
   * item whose declared field holds another type is refused (ERR_INVALID_ARGUMENT). Other
   * fields filter too, by reading each item's metadata (slower).
   */
  fields?: Record<string, FieldType>
  /** HNSW: links per node on the upper layers (2 to 256, default 16). */
  m?: number
  /** HNSW: candidates considered when linking a new vector (default 128). */
  efConstruction?: number
  /** HNSW: candidates a search keeps unless the call gives its own (default 64). */
  efSearch?: number
  /** HNSW: seed of node levels and of the 'random' insertion order. */
  seed?: number
  /** HNSW: order in which each upserted batch is linked ('given', 'random' or 'lid'). */
  insertionOrder?: 'given' | 'random' | 'lid'
  /** Where the index's full vectors are kept, 'memory' (default) or `{ path }`, a file of their
   * own that the collection's file refers to (see {@link HnswIndexOptions.fullVectors}; the
   * same rules). Needs a `quantization` or a reduction. */
  fullVectors?: 'memory' | FullVectorsOptions
}

/** One item to upsert. */
export interface CollectionItem {
  id: CollectionId
  /** Exactly `dimensions` numbers. */
  vector: VectorInput
  text?: string
  metadata?: Metadata
}

/** A stored item, as {@link Collection.get} returns it. */
export interface CollectionRecord {
  id: CollectionId
  text?: string
  metadata?: Metadata
  /** The stored vector (normalised under cosine); absent with `includeVectors: false`. */
  vector?: Float32Array
}

/** One search hit. */
export interface CollectionHit {
  id: CollectionId
  /** Lower is closer (cosine: 1 − cosine similarity; dot: 1 − ⟨q, x⟩; l2sq: squared L2). */
  distance: number
  /** With `includeMetadata` (default). */
  text?: string
  /** With `includeMetadata` (default). */
  metadata?: Metadata
  /** With `includeVectors`. */
  vector?: Float32Array
}

/** Options of {@link Collection.search}. */
export interface CollectionSearchOptions {
  /** Hits per query. */
  k: number
  /** Only items this metadata filter admits (see {@link Filter}). */
  filter?: Filter
  /** HNSW: candidates kept by this search (default: the collection's `efSearch`). */
  efSearch?: number
  /** Each hit's text and metadata (default true). */
  includeMetadata?: boolean
  /** Each hit's stored vector (default false). */
  includeVectors?: boolean
  /** Stops the search; the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /** Compressed collection: candidates rescored per result (default: the collection's). */
  oversample?: number
  /** Compressed collection: rescore with the full vectors (default true). */
  rescore?: boolean
}

/** Options of {@link Collection.get}. */
export interface CollectionGetOptions {
  /** Each item's stored vector (default true). */
  includeVectors?: boolean
}

/** Options of {@link Collection.count}. */
export interface CollectionCountOptions {
  /** Count only the items this filter admits. */
  filter?: Filter
  signal?: AbortSignal
}

/** Options of {@link Collection.upsertStream}. */
export interface UpsertStreamOptions {
  /** Items per native upsert (default 1,024). */
  batchSize?: number
  /** Stops between batches; the promise rejects with ERR_ABORTED (earlier batches stay). */
  signal?: AbortSignal
  /** Called after each batch with the items read so far (all of them stored). */
  onProgress?: (upserted: number) => void
}

/** What removes items: their ids, or a filter. */
export type DeleteTarget = readonly CollectionId[] | { filter: Filter }

/** Sizes of a collection's parts, in bytes of memory. */
export interface CollectionStats {
  /** Live items. */
  size: number
  /** The whole collection: the index, ids, texts, metadata and columns. */
  memoryBytes: number
  /** The index: vectors, graph, codes. */
  indexBytes: number
  /** `indexBytes` by part. */
  index: MemoryParts
  /** The id-to-row map and the row-to-id table. */
  idBytes: number
  textBytes: number
  /** Metadata as stored (compact JSON per item). */
  metadataBytes: number
  /** Declared fields' value bitmaps and the live-item bitmap. */
  columnBytes: number
  /** Where the index's full vectors are: 'memory', or 'disk' (`fullVectors: { path }`). */
  fullVectors: 'memory' | 'disk'
}

type NativeCollection = native.NativeCollection

/** A native collection made by a static loader, handed to the constructor. */
class LoadedCollection {
  constructor(readonly native: NativeCollection) {}
}

function checkId(id: unknown, what: string): CollectionId {
  if (typeof id === 'string') {
    if (id.length === 0) throw invalidArgument(`${what} must not be an empty string`)
    return id
  }
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id) || id < 0) throw invalidArgument(`${what} must be a string or a whole number from 0 to 2^53 - 1, got ${id}`)
    return id
  }
  throw invalidArgument(`${what} must be a string or a whole number, got ${describe(id)}`)
}

function checkIds(ids: unknown, what = 'ids'): CollectionId[] {
  if (!Array.isArray(ids)) throw invalidArgument(`${what} must be an array of ids, got ${describe(ids)}`)
  const out = new Array<CollectionId>(ids.length)
  for (let i = 0; i < ids.length; i++) out[i] = checkId(ids[i], `${what}[${i}]`)
  return out
}

/** A filter as the JSON text the native layer parses; '' for none. */
function filterText(filter: unknown, what = 'filter'): string {
  if (filter === undefined) return ''
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw invalidArgument(`${what} must be an object, got ${describe(filter)}`)
  }
  try {
    return JSON.stringify(filter)
  } catch (error) {
    throw invalidArgument(`${what} cannot be written as JSON: ${(error as Error).message}`)
  }
}

function metadataText(metadata: unknown, what: string): string | null {
  if (metadata === undefined || metadata === null) return null
  if (typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw invalidArgument(`${what} must be an object, got ${describe(metadata)}`)
  }
  try {
    // JSON has no Infinity or NaN: JSON.stringify would store them as null, silently.
    return JSON.stringify(metadata, finiteNumbers)
  } catch (error) {
    throw invalidArgument(`${what} cannot be written as JSON: ${(error as Error).message}`)
  }
}

function finiteNumbers(key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${key === '' ? 'it' : `"${key}"`} is ${value}, which JSON cannot hold`)
  return value
}

interface NativeBatch {
  ids: CollectionId[]
  vectors: Float32Array
  texts: (string | null)[] | undefined
  metadata: (string | null)[] | undefined
}

function toItem(raw: native.NativeItem): CollectionRecord & { distance?: number } {
  const out: CollectionRecord & { distance?: number } = { id: raw.id }
  if (raw.distance != null) out.distance = raw.distance
  if (raw.text != null) out.text = raw.text
  if (raw.metadata != null) out.metadata = JSON.parse(raw.metadata) as Metadata
  if (raw.vector != null) out.vector = raw.vector
  return out
}

function isBatch(queries: unknown): boolean {
  return Array.isArray(queries) && queries.length > 0 && 0 in queries && (Array.isArray(queries[0]) || ArrayBuffer.isView(queries[0]))
}

/**
 * A vector store: items with the caller's own ids, each with a vector, an optional text and a
 * JSON metadata object, over an HNSW or flat index (with any compression). Metadata filters
 * (see {@link Filter}) are evaluated natively and applied inside the graph walk; when a filter
 * admits few items the search scans those exactly, so recall stays high at any selectivity.
 *
 * One `save` writes the index, the ids, the texts and the metadata to one checksummed file,
 * atomically: after a crash the file holds one whole state, never a mix.
 *
 * ```ts
 * using docs = new Collection({ dimensions: 384, fields: { lang: 'string', year: 'number' } })
 * await docs.upsert([{ id: 'a1', vector, text: 'hello', metadata: { lang: 'en', year: 2024 } }])
 * const hits = await docs.search(query, { k: 5, filter: { lang: 'en', year: { $gte: 2020 } } })
 * ```
 */
export class Collection implements Disposable {
  #native: NativeCollection | null
  /** Dimensions of every vector. */
  readonly dimensions: number
  readonly metric: Exclude<Metric, 'hamming'>
  /** The index under the collection. */
  readonly index: 'hnsw' | 'flat'
  /** Declared metadata fields. */
  readonly fields: Readonly<Record<string, FieldType>>

  constructor(options: CollectionOptions) {
    let created: NativeCollection
    if ((options as unknown) instanceof LoadedCollection) {
      created = (options as unknown as LoadedCollection).native
    } else {
      const { dimensions, metric = defaultOf<Exclude<Metric, 'hamming'>>('CollectionOptions', 'metric'), index, fields, m, efConstruction, efSearch, seed, insertionOrder, fullVectors } = checkOptions<CollectionOptions>(options, 'CollectionOptions')
      const nativeFields = fields === undefined ? undefined : Object.entries(fields).map(([name, fieldType]) => ({ name, fieldType }))
      const fullVectorsPath = typeof fullVectors === 'object' ? fullVectors.path : undefined
      const settings = { index, m, efConstruction, efSearch, seed, insertionOrder, fields: nativeFields, compression: nativeCompression(options), fullVectorsPath }
      created = callNative(() => new native.NativeCollection(dimensions, metric, settings))
    }
    this.#native = created
    this.dimensions = created.dim
    this.metric = created.metric as Exclude<Metric, 'hamming'>
    this.index = created.indexKind as 'hnsw' | 'flat'
    this.fields = Object.freeze(Object.fromEntries(created.fields.map(([name, type]) => [name, type as FieldType])))
  }

  static #wrap(loaded: NativeCollection): Collection {
    return new Collection(new LoadedCollection(loaded) as unknown as CollectionOptions)
  }

  /** Loads a collection saved by {@link save}, off the event loop, checking the whole file
   * first (ERR_CORRUPT_FILE, ERR_UNSUPPORTED_FORMAT, ERR_IO). */
  static async load(path: string): Promise<Collection> {
    return loaders.load(native.NativeCollection, path, Collection.#wrap)
  }

  /** Blocking twin of {@link load}. */
  static loadSync(path: string): Collection {
    return loaders.loadSync(native.NativeCollection, path, Collection.#wrap)
  }

  /**
   * A read-only view of a saved collection: the file is memory-mapped and its HNSW index
   * searched in place (the vectors and links stay in the operating system's page cache, shared
   * between processes viewing the same file); ids, texts and metadata are read into memory.
   * Writes throw ERR_READ_ONLY. Saving a new file over the path is safe for the view (it keeps
   * reading the old one); another program rewriting the file in place is not.
   */
  static async view(path: string): Promise<Collection> {
    const file = checkPath(path)
    const loaded = await awaitNative(callNative(() => native.NativeCollection.viewLoaded(file)))
    return Collection.#wrap(callNative(() => native.NativeCollection.adoptLoaded(loaded)))
  }

  /** Blocking twin of {@link view}. */
  static viewSync(path: string): Collection {
    const file = checkPath(path)
    return Collection.#wrap(callNative(() => native.NativeCollection.viewSync(file)))
  }

  /** Whether this collection is a read-only view of a file (see {@link view}). */
  get readOnly(): boolean {
    return callNative(() => this.#handle().readOnly)
  }

  /** Rebuilds a collection from a {@link toBuffer} image, checked like a file. */
  static async fromBuffer(buffer: Uint8Array): Promise<Collection> {
    return loaders.fromBuffer(native.NativeCollection, buffer, Collection.#wrap)
  }

  /** Blocking twin of {@link fromBuffer}. */
  static fromBufferSync(buffer: Uint8Array): Collection {
    return loaders.fromBufferSync(native.NativeCollection, checkBuffer(buffer), Collection.#wrap)
  }

  #handle(): NativeCollection {
    if (this.#native === null) throw new VecdexError('ERR_CLOSED', 'the collection is closed')
    return this.#native
  }

  /** Items stored. */
  get size(): number {
    return callNative(() => this.#handle().size)
  }

  /** Native bytes held by the whole collection, as reported to V8. */
  get memoryBytes(): number {
    return callNative(() => this.#handle().memoryBytes)
  }

  get closed(): boolean {
    return this.#native === null
  }

  /** Sizes of the collection's parts (counted anew: a pass over the ids and texts). */
  stats(): CollectionStats {
    return callNative(() => this.#handle().stats()) as CollectionStats
  }

  #batch(items: unknown): NativeBatch {
    if (!Array.isArray(items)) throw invalidArgument(`items must be an array of { id, vector, text?, metadata? }, got ${describe(items)}`)
    const count = items.length
    const dim = this.dimensions
    const ids = new Array<CollectionId>(count)
    const vectors = new Float32Array(count * dim)
    let texts: (string | null)[] | undefined
    let metadata: (string | null)[] | undefined
    for (let i = 0; i < count; i++) {
      const item: unknown = items[i]
      if (item === null || typeof item !== 'object') throw invalidArgument(`items[${i}] must be an object { id, vector, text?, metadata? }, got ${describe(item)}`)
      const { id, vector, text, metadata: meta, ...rest } = item as CollectionItem
      const unknown = Object.keys(rest)
      if (unknown.length > 0) throw invalidArgument(`items[${i}] has an unknown field '${unknown[0]}' (an item is { id, vector, text?, metadata? })`)
      ids[i] = checkId(id, `items[${i}].id`)
      vectors.set(toVector(vector, dim, `items[${i}].vector`, 'give one vector per item'), i * dim)
      if (text !== undefined && text !== null) {
        if (typeof text !== 'string') throw invalidArgument(`items[${i}].text must be a string, got ${describe(text)}`)
        texts ??= new Array<string | null>(count).fill(null)
        texts[i] = text
      }
      const json = metadataText(meta, `items[${i}].metadata`)
      if (json !== null) {
        metadata ??= new Array<string | null>(count).fill(null)
        metadata[i] = json
      }
    }
    return { ids, vectors, texts, metadata }
  }

  /**
   * Inserts items, and replaces those whose id is already stored (vector, text and metadata
   * together: an item given without a text or metadata loses its old one). The whole batch is
   * checked first, and an error or an abort leaves the collection as it was. A batch may not
   * repeat an id.
   */
  async upsert(items: readonly CollectionItem[], options?: { signal?: AbortSignal }): Promise<void> {
    const signal = options === undefined ? undefined : checkOptions<{ signal?: AbortSignal }>(options, 'SignalOptions').signal
    const batch = this.#batch(items)
    if (batch.ids.length === 0) return
    using abort = abortHandle(signal)
    await awaitNative(callNative(() => this.#handle().upsert(batch.ids, batch.vectors, batch.texts, batch.metadata, abort.native)), signal)
  }

  /** Blocking twin of {@link upsert}. */
  upsertSync(items: readonly CollectionItem[]): void {
    const batch = this.#batch(items)
    if (batch.ids.length === 0) return
    callNative(() => this.#handle().upsertSync(batch.ids, batch.vectors, batch.texts, batch.metadata))
  }

  /**
   * Upserts items from any iterable or async iterable, `batchSize` at a time, reading the next
   * batch only once the previous one is stored (backpressure). An id that comes again keeps its
   * last item, as separate upserts would. Resolves to the items read from `items`.
   */
  async upsertStream(items: AsyncIterable<CollectionItem> | Iterable<CollectionItem>, options: UpsertStreamOptions = {}): Promise<number> {
    const { batchSize = defaultOf<number>('UpsertStreamOptions', 'batchSize'), signal, onProgress } = checkOptions<UpsertStreamOptions>(options, 'UpsertStreamOptions')
    if (items == null || (typeof (items as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function' && typeof (items as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
      throw invalidArgument(`items must be an iterable or async iterable of items, got ${describe(items)}`)
    }
    if (signal?.aborted) throw abortError(signal)
    let done = 0
    let read = 0
    let batch: CollectionItem[] = []
    // An id seen twice in one batch keeps its last item, as two separate upserts would (a
    // batch may not repeat an id, and where batches split is the stream's business).
    const slotOf = new Map<unknown, number>()
    const flush = async () => {
      await this.upsert(batch, { signal })
      done += read
      read = 0
      batch = []
      slotOf.clear()
      onProgress?.(done)
    }
    for await (const item of items) {
      const id: unknown = item !== null && typeof item === 'object' ? item.id : undefined
      const slot = id === undefined ? undefined : slotOf.get(id)
      if (slot === undefined) {
        if (id !== undefined) slotOf.set(id, batch.length)
        batch.push(item)
      } else batch[slot] = item
      if (++read >= batchSize) await flush()
    }
    if (read > 0) await flush()
    return done
  }

  /** Removes items by id (absent ids are skipped), or every item a filter admits (`{ filter }`);
   * resolves to how many were removed. */
  async delete(target: DeleteTarget): Promise<number> {
    if (Array.isArray(target)) {
      const ids = checkIds(target)
      return awaitNative(callNative(() => this.#handle().delete(ids)))
    }
    const filter = this.#deleteFilter(target)
    return awaitNative(callNative(() => this.#handle().deleteWhere(filter)))
  }

  /** Blocking twin of {@link delete}. */
  deleteSync(target: DeleteTarget): number {
    if (Array.isArray(target)) {
      const ids = checkIds(target)
      return callNative(() => this.#handle().deleteSync(ids))
    }
    const filter = this.#deleteFilter(target)
    return callNative(() => this.#handle().deleteWhereSync(filter))
  }

  #deleteFilter(target: unknown): string {
    if (target === null || typeof target !== 'object' || !('filter' in target) || Object.keys(target).length !== 1) {
      throw invalidArgument(`delete takes an array of ids or { filter }, got ${describe(target)}`)
    }
    return filterText((target as { filter: unknown }).filter)
  }

  /** The stored items of these ids, in order (`undefined` for an id not stored). */
  async get(ids: readonly CollectionId[], options: CollectionGetOptions = {}): Promise<(CollectionRecord | undefined)[]> {
    const { includeVectors = defaultOf<boolean>('CollectionGetOptions', 'includeVectors') } = checkOptions<CollectionGetOptions>(options, 'CollectionGetOptions')
    const checked = checkIds(ids)
    const records = await awaitNative(callNative(() => this.#handle().get(checked, includeVectors)))
    return records.map((r) => (r == null ? undefined : toItem(r)))
  }

  /** Blocking twin of {@link get}. */
  getSync(ids: readonly CollectionId[], options: CollectionGetOptions = {}): (CollectionRecord | undefined)[] {
    const { includeVectors = defaultOf<boolean>('CollectionGetOptions', 'includeVectors') } = checkOptions<CollectionGetOptions>(options, 'CollectionGetOptions')
    const checked = checkIds(ids)
    return callNative(() => this.#handle().getSync(checked, includeVectors)).map((r) => (r == null ? undefined : toItem(r)))
  }

  /** Whether an item with this id is stored. */
  has(id: CollectionId): boolean {
    const checked = checkId(id, 'id')
    return callNative(() => this.#handle().contains(checked))
  }

  /** Every id, in storage order. */
  ids(): CollectionId[] {
    return callNative(() => this.#handle().ids())
  }

  /** Items stored, or those a filter admits. */
  async count(options: CollectionCountOptions = {}): Promise<number> {
    const { filter, signal } = checkOptions<CollectionCountOptions>(options, 'CollectionCountOptions')
    const text = filterText(filter)
    if (signal?.aborted) throw abortError(signal)
    return awaitNative(callNative(() => this.#handle().count(text)), signal)
  }

  /** Blocking twin of {@link count}. */
  countSync(options: CollectionCountOptions = {}): number {
    const { filter } = checkOptions<CollectionCountOptions>(options, 'CollectionCountOptions')
    const text = filterText(filter)
    return callNative(() => this.#handle().countSync(text))
  }

  #searchArgs(queries: unknown, options: CollectionSearchOptions) {
    const { k, filter, efSearch, includeMetadata = defaultOf<boolean>('CollectionSearchOptions', 'includeMetadata'), includeVectors = defaultOf<boolean>('CollectionSearchOptions', 'includeVectors'), signal, oversample, rescore = defaultOf<boolean>('CollectionSearchOptions', 'rescore') } = checkOptions<CollectionSearchOptions>(options, 'CollectionSearchOptions')
    if (efSearch !== undefined && this.index === 'flat') throw invalidArgument(`efSearch is an HNSW setting: this collection's index is 'flat'`)
    const batch = isBatch(queries)
    const matrix = batch ? toMatrix(queries, this.dimensions, 'queries') : toVector(queries, this.dimensions, 'query', 'pass an array of vectors for a batch')
    return { batch, matrix, k, ef: efSearch ?? 0, oversample: oversample ?? 0, rescore, filter: filterText(filter), includeMetadata, includeVectors, signal }
  }

  /**
   * The `k` nearest items a filter admits: for one query (exactly `dimensions` numbers) a list
   * of hits, best first; for an array of queries, one list per query.
   */
  search(query: VectorInput, options: CollectionSearchOptions): Promise<CollectionHit[]>
  search(queries: readonly VectorInput[], options: CollectionSearchOptions): Promise<CollectionHit[][]>
  async search(queries: VectorInput | readonly VectorInput[], options: CollectionSearchOptions): Promise<CollectionHit[] | CollectionHit[][]> {
    const a = this.#searchArgs(queries, options)
    using abort = abortHandle(a.signal)
    const rows = await awaitNative(callNative(() => this.#handle().search(a.matrix, a.k, a.ef, a.oversample, a.rescore, a.filter, a.includeMetadata, a.includeVectors, abort.native)), a.signal)
    const hits = rows.map((row) => row.map(toItem) as CollectionHit[])
    return a.batch ? hits : hits[0]!
  }

  /** Blocking twin of {@link search}. */
  searchSync(query: VectorInput, options: CollectionSearchOptions): CollectionHit[]
  searchSync(queries: readonly VectorInput[], options: CollectionSearchOptions): CollectionHit[][]
  searchSync(queries: VectorInput | readonly VectorInput[], options: CollectionSearchOptions): CollectionHit[] | CollectionHit[][] {
    const a = this.#searchArgs(queries, options)
    if (a.signal !== undefined) throw invalidArgument('signal is for the async search; searchSync cannot be aborted')
    const rows = callNative(() => this.#handle().searchSync(a.matrix, a.k, a.ef, a.oversample, a.rescore, a.filter, a.includeMetadata, a.includeVectors))
    const hits = rows.map((row) => row.map(toItem) as CollectionHit[])
    return a.batch ? hits : hits[0]!
  }

  /**
   * Saves the collection (index, ids, texts and metadata) to `path` in one file, atomically:
   * a temporary file is written, fsynced and renamed over `path`, so a save that fails or is
   * killed leaves the previous file whole. Saves what every write called before it left.
   */
  async save(path: string): Promise<void> {
    const file = checkPath(path)
    return awaitNative(callNative(() => this.#handle().save(file)))
  }

  /** Blocking twin of {@link save}. */
  saveSync(path: string): void {
    const file = checkPath(path)
    callNative(() => this.#handle().saveSync(file))
  }

  /** The collection as one file image (what {@link save} writes). */
  async toBuffer(): Promise<Buffer> {
    return awaitNative(callNative(() => this.#handle().toBuffer()))
  }

  /** Blocking twin of {@link toBuffer}. */
  toBufferSync(): Buffer {
    return callNative(() => this.#handle().toBufferSync())
  }

  /** Frees the native collection now. Idempotent; later calls throw ERR_CLOSED. */
  close(): void {
    const handle = this.#native
    this.#native = null
    handle?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
