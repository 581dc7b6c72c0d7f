/**
 * Filter correctness of collections (issue 19). A seeded property test holds `count`, `search`
 * and `delete` with a metadata filter against a plain JS evaluation of the same filter, written
 * here from the documented semantics (the module docs of crates/vecdex/src/collection/filter.rs),
 * over random items and random filters: on a fresh collection, after random upserts (replacing
 * items with new metadata) and deletes, after saveSync + loadSync and after toBuffer + fromBuffer,
 * and after more writes on the loaded collections. Both index kinds hold the same items: the flat
 * one must return exactly the admitted ids, the HNSW one only admitted ids, at high recall.
 *
 * Then: malformed filters are ERR_INVALID_ARGUMENT naming the operator and the path, and a field
 * that no item has is an empty result, not an error.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Collection, type CollectionId, type Filter, type Metadata, type MetadataValue, VecdexError } from '../dist/index.js'
import { rng } from './helpers'

type Next = () => number
type Scalar = string | number | boolean
type Kind = 'string' | 'number' | 'boolean'

const DIM = 8
const INITIAL_ITEMS = 400
/** Filters kept for every phase (so filters compiled and cached before a write are asked again
 * after it), and fresh ones per phase. */
const KEPT_FILTERS = 120
const FRESH_FILTERS = 40
/** Every n-th filter of a phase is also run as a `delete` on a copy of the collection. */
const DELETE_EVERY = 6
const HNSW_EF = 1024
/** The seed of items, filters and writes; another one explores more cases (VECDEX_FILTER_SEED=n). */
const SEED = Number(process.env.VECDEX_FILTER_SEED ?? 19)

const FIELDS = { cat: 'string', price: 'number', active: 'boolean', tags: 'string[]', 'info.rank': 'number' } as const

/** Strings that share kinds with the other pools ('10', 'true'), hold dots, and order differently
 * by UTF-16 units than by UTF-8 bytes ('😀' against 'ﬀ'): ranges compare UTF-8 bytes. */
const STRINGS = ['red', 'green', 'blue', 'Blue', 'ünï', '日本', 'a.b', '', '10', 'true', '😀', 'ﬀ']
const RANGE_STRINGS = [...STRINGS, 'c', 'm', 'zz', 'é']
const NUMBERS = [-7, -1.5, 0, 0.25, 1, 2, 3, 10, 1e21, -1e-7]

/** Paths filters test: declared fields, undeclared ones (nested, mixed kinds), paths into objects
 * and through arrays, a top-level key holding a dot ('x.y' reads x then y), and absent fields. */
const PATHS = ['cat', 'price', 'active', 'tags', 'info.rank', 'info.name', 'info', 'color', 'score', 'list', 'deep.a.b', 'deep.a', 'deep', 'x.y', 'ghost', 'info.ghost', 'list.0', 'tags.0']
/** Paths most items have, picked more often so that fewer random filters admit nothing. */
const COMMON_PATHS = ['cat', 'price', 'active', 'tags', 'info.rank', 'info.name', 'color', 'score', 'list', 'deep.a.b']
const NATURAL_KIND: Record<string, Kind> = { cat: 'string', price: 'number', active: 'boolean', tags: 'string', 'info.rank': 'number', 'info.name': 'string', score: 'number' }
const FIELD_OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$contains', '$not'] as const

const pick = <T>(next: Next, list: readonly T[]): T => list[Math.floor(next() * list.length)]!
const chance = (next: Next, p: number) => next() < p
const between = (next: Next, lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))

function randomNumber(next: Next): number {
  return chance(next, 0.7) ? pick(next, NUMBERS) : Math.round(next() * 2000 - 1000) / 100
}

function scalarOf(next: Next, kind: Kind, forRange = false): Scalar {
  if (kind === 'string') return pick(next, forRange ? RANGE_STRINGS : STRINGS)
  if (kind === 'number') return randomNumber(next)
  return chance(next, 0.5)
}

/** Any JSON value (for undeclared fields). */
function anyValue(next: Next, depth = 0): MetadataValue {
  const r = next()
  if (r < 0.25) return pick(next, STRINGS)
  if (r < 0.5) return randomNumber(next)
  if (r < 0.6) return chance(next, 0.5)
  if (r < 0.7) return null
  if (r < 0.85 && depth < 2) return Array.from({ length: between(next, 0, 3) }, () => anyValue(next, depth + 1))
  if (depth < 2) return { x: anyValue(next, depth + 1), y: pick(next, STRINGS) }
  return pick(next, STRINGS)
}

/** Random metadata, or none: declared fields of their type (or null, or absent), undeclared
 * fields of any kind, nested objects, arrays on a dotted path. */
function randomMetadata(next: Next): Metadata | undefined {
  if (chance(next, 0.06)) return undefined
  const m: Metadata = {}
  const maybe = (field: string, make: () => MetadataValue) => {
    const r = next()
    if (r < 0.7) m[field] = make()
    else if (r < 0.8) m[field] = null
  }
  maybe('cat', () => pick(next, STRINGS))
  maybe('price', () => randomNumber(next))
  maybe('active', () => chance(next, 0.5))
  maybe('tags', () => Array.from({ length: between(next, 0, 3) }, () => pick(next, STRINGS)))
  const info = next()
  if (info < 0.6) {
    const object: Metadata = {}
    if (chance(next, 0.75)) object.rank = chance(next, 0.1) ? null : randomNumber(next)
    if (chance(next, 0.6)) object.name = chance(next, 0.8) ? pick(next, STRINGS) : anyValue(next, 1)
    m.info = object
  } else if (info < 0.7) {
    m.info = [{ rank: randomNumber(next) }] // a path through an array: info.rank is missing
  } else if (info < 0.75) {
    m.info = pick(next, STRINGS)
  }
  maybe('color', () => anyValue(next))
  maybe('score', () => (chance(next, 0.7) ? randomNumber(next) : pick(next, STRINGS)))
  maybe('list', () => Array.from({ length: between(next, 0, 4) }, () => (chance(next, 0.85) ? scalarOf(next, pick(next, ['string', 'number', 'boolean'] as const)) : anyValue(next, 1))))
  maybe('deep', () => {
    const r = next()
    if (r < 0.5) return { a: { b: scalarOf(next, pick(next, ['string', 'number'] as const)) } }
    if (r < 0.7) return { a: [{ b: randomNumber(next) }] }
    return { a: anyValue(next, 1) }
  })
  if (chance(next, 0.15)) m['x.y'] = pick(next, STRINGS)
  if (chance(next, 0.15)) m.x = { y: pick(next, STRINGS) }
  return m
}

function randomVector(next: Next): Float32Array {
  const v = new Float32Array(DIM)
  for (let i = 0; i < DIM; i++) v[i] = next() * 2 - 1
  return v
}

/** A fresh id: strings (uuid-like, paths, digits that equal an integer id) or safe integers. */
function randomId(next: Next): CollectionId {
  const r = next()
  if (r < 0.4) return between(next, 0, 5000)
  if (r < 0.45) return Number.MAX_SAFE_INTEGER - between(next, 0, 50)
  if (r < 0.6) return String(between(next, 0, 5000))
  if (r < 0.8) return `doc-${between(next, 0, 1e6).toString(36)}-${between(next, 0, 1e6).toString(16)}`
  return `docs/${pick(next, STRINGS) || 'x'}/${between(next, 0, 9999)}.txt`
}

// ---------------------------------------------------------------------------------------------
// Random filters

function operand(next: Next, path: string, forRange = false): Scalar {
  let kind: Kind = NATURAL_KIND[path] !== undefined && chance(next, 0.9) ? NATURAL_KIND[path]! : pick(next, ['string', 'number', 'boolean'] as const)
  if (forRange && kind === 'boolean') kind = chance(next, 0.5) ? 'number' : 'string'
  return scalarOf(next, kind, forRange)
}

/** An object of 1 to 3 operators on `path` (`$not` nests another such object). */
function operators(next: Next, path: string, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const wanted = chance(next, 0.7) ? 1 : between(next, 2, 3)
  while (Object.keys(out).length < wanted) {
    const op = pick(next, FIELD_OPERATORS)
    if (op in out || (op === '$not' && depth >= 2)) continue
    switch (op) {
      case '$eq':
      case '$ne':
      case '$contains':
        out[op] = operand(next, path)
        break
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        out[op] = operand(next, path, true)
        break
      case '$in':
      case '$nin':
        out[op] = Array.from({ length: chance(next, 0.1) ? 0 : between(next, 1, 5) }, () => operand(next, path))
        break
      case '$exists':
        out[op] = chance(next, 0.5)
        break
      case '$not':
        out[op] = operators(next, path, depth + 1)
        break
    }
  }
  return out
}

/** A random filter object: fields (implicit equality or operators), `$and`, `$or`, `$not`;
 * sometimes `{}`, also inside branches. */
function randomFilter(next: Next, depth = 0): Filter {
  const out: Filter = {}
  const r = next()
  const keys = depth === 0 ? (r < 0.03 ? 0 : r < 0.6 ? 1 : r < 0.9 ? 2 : 3) : r < 0.1 ? 0 : r < 0.75 ? 1 : 2
  for (let i = 0; i < keys; i++) {
    const kind = next()
    if (kind < 0.18 && depth < 3) {
      const op = chance(next, 0.35) ? '$and' : '$or'
      if (!(op in out)) out[op] = Array.from({ length: between(next, 1, 3) }, () => randomFilter(next, depth + 1))
    } else if (kind < 0.28 && depth < 3) {
      if (!('$not' in out)) out.$not = randomFilter(next, depth + 1)
    } else {
      const path = pick(next, chance(next, 0.7) ? COMMON_PATHS : PATHS)
      if (!(path in out)) out[path] = chance(next, 0.25) ? operand(next, path) : operators(next, path, 0)
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The reference: a plain JS evaluation of the documented semantics

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** The value at a dotted path; undefined when missing, when the path runs through a non-object
 * (an array included), or when it ends at null (null is missing). */
function lookup(metadata: Metadata | undefined, path: string): unknown {
  let value: unknown = metadata
  for (const segment of path.split('.')) {
    if (!isObject(value) || !Object.hasOwn(value, segment)) return undefined
    value = value[segment]
  }
  return value === null ? undefined : value
}

/** How `value` orders against `operand`, or undefined when they are of different kinds. Strings
 * order by their UTF-8 bytes. */
function order(value: unknown, operand: Scalar): number | undefined {
  if (typeof value !== typeof operand) return undefined
  if (typeof value === 'number') return value < (operand as number) ? -1 : value > (operand as number) ? 1 : 0
  if (typeof value === 'string') return Math.sign(Buffer.compare(Buffer.from(value), Buffer.from(operand as string)))
  if (typeof value === 'boolean') return value === operand ? 0 : value ? 1 : -1
  return undefined
}

const equals = (value: unknown, operand: Scalar) => order(value, operand) === 0

/** Whether the value, or any element when it is an array, passes. */
function anyElement(value: unknown, test: (element: unknown) => boolean): boolean {
  if (value === undefined) return false
  return Array.isArray(value) ? value.some(test) : test(value)
}

function fieldAdmits(value: unknown, condition: unknown): boolean {
  if (!isObject(condition)) return anyElement(value, (v) => equals(v, condition as Scalar))
  return Object.entries(condition).every(([op, arg]) => {
    switch (op) {
      case '$eq':
        return anyElement(value, (v) => equals(v, arg as Scalar))
      case '$ne':
        return !anyElement(value, (v) => equals(v, arg as Scalar))
      case '$gt':
        return anyElement(value, (v) => (order(v, arg as Scalar) ?? 0) > 0)
      case '$gte':
        return anyElement(value, (v) => (order(v, arg as Scalar) ?? -1) >= 0)
      case '$lt':
        return anyElement(value, (v) => (order(v, arg as Scalar) ?? 0) < 0)
      case '$lte':
        return anyElement(value, (v) => (order(v, arg as Scalar) ?? 1) <= 0)
      case '$in':
        return anyElement(value, (v) => (arg as Scalar[]).some((o) => equals(v, o)))
      case '$nin':
        return !anyElement(value, (v) => (arg as Scalar[]).some((o) => equals(v, o)))
      case '$exists':
        return (value !== undefined) === arg
      case '$contains':
        return Array.isArray(value) && value.some((v) => equals(v, arg as Scalar))
      case '$not':
        return !fieldAdmits(value, arg)
      default:
        throw new Error(`the reference does not know ${op}`)
    }
  })
}

function admits(filter: Filter, metadata: Metadata | undefined): boolean {
  return Object.entries(filter).every(([key, arg]) => {
    if (key === '$and') return (arg as Filter[]).every((f) => admits(f, metadata))
    if (key === '$or') return (arg as Filter[]).some((f) => admits(f, metadata))
    if (key === '$not') return !admits(arg as Filter, metadata)
    return fieldAdmits(lookup(metadata, key), arg)
  })
}

// ---------------------------------------------------------------------------------------------
// The model of the collection's contents, and the checks

interface ModelItem {
  id: CollectionId
  vector: Float32Array
  metadata?: Metadata
}

const keyOf = (id: CollectionId) => `${typeof id}:${id}`

class Model {
  readonly items = new Map<string, ModelItem>()

  upsert(item: ModelItem) {
    // What the collection stores: the metadata as JSON.
    const metadata = item.metadata === undefined ? undefined : (JSON.parse(JSON.stringify(item.metadata)) as Metadata)
    this.items.set(keyOf(item.id), { id: item.id, vector: item.vector, metadata })
  }

  admitted(filter: Filter): ModelItem[] {
    return [...this.items.values()].filter((item) => admits(filter, item.metadata))
  }
}

function l2(a: Float32Array, b: Float32Array): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2
  return sum
}

/** A readable account of where a collection's admitted ids differ from the reference: the
 * filter and the metadata of the first item on each side (the reproduction to report). */
function mismatch(where: string, filter: Filter, got: string[], want: string[], model: Model): string {
  const gotSet = new Set(got)
  const wantSet = new Set(want)
  const extra = got.filter((k) => !wantSet.has(k))
  const missing = want.filter((k) => !gotSet.has(k))
  const show = (k: string | undefined) => (k === undefined ? '' : `${k} with metadata ${JSON.stringify(model.items.get(k)?.metadata)}`)
  return `${where}: filter ${JSON.stringify(filter)}: ${extra.length} ids admitted that the reference refuses (first: ${show(extra[0])}), ${missing.length} refused that it admits (first: ${show(missing[0])})`
}

const sortedKeys = (ids: CollectionId[]) => ids.map(keyOf).sort()

interface Pair {
  flat: Collection
  hnsw: Collection
}

interface Tally {
  filters: number
  admittedTotal: number
  emptyResults: number
  fullResults: number
  recallHits: number
  recallWanted: number
  topRecallHits: number
  topRecallWanted: number
  deletes: number
}

const newTally = (): Tally => ({ filters: 0, admittedTotal: 0, emptyResults: 0, fullResults: 0, recallHits: 0, recallWanted: 0, topRecallHits: 0, topRecallWanted: 0, deletes: 0 })

/** Checks every filter on both collections against the model. */
async function verify(where: string, pair: Pair, model: Model, filters: Filter[], next: Next, tally: Tally) {
  const size = model.items.size
  expect(pair.flat.size, where).toBe(size)
  expect(pair.hnsw.size, where).toBe(size)
  for (const [i, filter] of filters.entries()) {
    const at = `${where}, filter ${i}`
    const admitted = model.admitted(filter)
    const want = sortedKeys(admitted.map((item) => item.id))
    tally.filters++
    tally.admittedTotal += admitted.length
    if (admitted.length === 0) tally.emptyResults++
    if (admitted.length === size) tally.fullResults++

    // Flat: exact, so k = size returns exactly the admitted items, nearest first (checked
    // first: a difference names the items, the counts below only the numbers).
    const query = randomVector(next)
    const flatHits = i % 2 === 0 ? pair.flat.searchSync(query, { k: size, filter, includeMetadata: false }) : await pair.flat.search(query, { k: size, filter, includeMetadata: false })
    const got = sortedKeys(flatHits.map((h) => h.id))
    if (got.join('\n') !== want.join('\n')) throw new Error(mismatch(`${at} (flat search)`, filter, got, want, model))
    for (let r = 1; r < flatHits.length; r++) expect(flatHits[r]!.distance).toBeGreaterThanOrEqual(flatHits[r - 1]!.distance)

    expect(pair.flat.countSync({ filter }), `${at}: flat countSync of ${JSON.stringify(filter)}`).toBe(admitted.length)
    expect(pair.hnsw.countSync({ filter }), `${at}: hnsw countSync of ${JSON.stringify(filter)}`).toBe(admitted.length)
    if (i % 4 === 0) expect(await pair.hnsw.count({ filter }), `${at}: hnsw count of ${JSON.stringify(filter)}`).toBe(admitted.length)

    // HNSW: only admitted ids, each once; recall against all the admitted ones (k = size), and
    // against the exact filtered top 10.
    const wantSet = new Set(want)
    const hnswHits = pair.hnsw.searchSync(query, { k: size, filter, efSearch: HNSW_EF, includeMetadata: false })
    const hnswKeys = hnswHits.map((h) => keyOf(h.id))
    const outside = hnswKeys.filter((k) => !wantSet.has(k))
    if (outside.length > 0) throw new Error(mismatch(`${at} (hnsw search)`, filter, hnswKeys, want, model))
    expect(new Set(hnswKeys).size, `${at}: hnsw hits repeat an id`).toBe(hnswKeys.length)
    tally.recallHits += hnswKeys.length
    tally.recallWanted += admitted.length
    if (admitted.length > 0) {
      const exactTop = admitted
        .map((item) => ({ key: keyOf(item.id), distance: l2(query, item.vector) }))
        .sort((a, b) => a.distance - b.distance)
        .slice(0, 10)
      const top = pair.hnsw.searchSync(query, { k: 10, filter, efSearch: 64, includeMetadata: false })
      expect(top.length, `${at}: hnsw top 10 count`).toBe(exactTop.length)
      const topKeys = new Set(top.map((h) => keyOf(h.id)))
      expect(top.every((h) => wantSet.has(keyOf(h.id))), `${at}: hnsw top 10 holds an id the filter refuses`).toBe(true)
      tally.topRecallHits += exactTop.filter((e) => topKeys.has(e.key)).length
      tally.topRecallWanted += exactTop.length
    }

    // delete({ filter }) removes exactly the admitted items (on a copy; the filter compiled and
    // cached first, so a stale cache would show).
    if (i % DELETE_EVERY === 0) {
      const source = i % (DELETE_EVERY * 2) === 0 ? pair.flat : pair.hnsw
      using copy = Collection.fromBufferSync(source.toBufferSync())
      expect(copy.countSync({ filter }), `${at}: count on a copy`).toBe(admitted.length)
      const removed = i % (DELETE_EVERY * 4) === 0 ? await copy.delete({ filter }) : copy.deleteSync({ filter })
      expect(removed, `${at}: delete({ filter }) of ${JSON.stringify(filter)} returned`).toBe(admitted.length)
      const left = sortedKeys(copy.ids())
      const expectedLeft = [...model.items.keys()].filter((k) => !wantSet.has(k)).sort()
      if (left.join('\n') !== expectedLeft.join('\n')) throw new Error(mismatch(`${at} (ids left after delete)`, filter, left, expectedLeft, model))
      expect(copy.countSync({ filter }), `${at}: count after the delete`).toBe(0)
      expect(copy.countSync(), `${at}: size after the delete`).toBe(size - admitted.length)
      if (expectedLeft.length > 0) {
        const rest = copy.searchSync(query, { k: size, includeMetadata: false, ...(copy.index === 'hnsw' ? { efSearch: HNSW_EF } : {}) })
        expect(rest.every((h) => !wantSet.has(keyOf(h.id))), `${at}: a deleted item is still found`).toBe(true)
      }
      tally.deletes++
    }
  }
}

/** Every item's stored metadata and vector equal the model's. */
function verifyContents(where: string, collection: Collection, model: Model) {
  const items = [...model.items.values()]
  const records = collection.getSync(items.map((item) => item.id))
  records.forEach((record, i) => {
    const item = items[i]!
    expect(record, `${where}: item ${keyOf(item.id)}`).toBeDefined()
    expect(record!.metadata, `${where}: metadata of ${keyOf(item.id)}`).toEqual(item.metadata)
    expect(Array.from(record!.vector!), `${where}: vector of ${keyOf(item.id)}`).toEqual(Array.from(item.vector))
  })
}

/** A random filter that admits from `least` (at least one item) to `most` of the items (for
 * deletes); one that admits at least one item after 500 tries. */
function filterAdmitting(next: Next, model: Model, least: number, most: number): Filter {
  let fallback: Filter = { cat: STRINGS[0]! }
  for (let attempt = 0; attempt < 500; attempt++) {
    const filter = randomFilter(next)
    const admitted = model.admitted(filter).length
    if (admitted > 0) fallback = filter
    if (admitted > 0 && admitted >= least * model.items.size && admitted <= most * model.items.size) return filter
  }
  return fallback
}

/**
 * Random writes on both collections and the model: upserts that replace existing items (new
 * vector, new or no metadata) and add new ones, deletes by id (with absent and repeated ids),
 * and a delete by filter. Before each write a few kept filters are compiled (cached); after it
 * their counts must follow the write.
 */
async function mutate(where: string, pair: Pair, model: Model, kept: Filter[], next: Next) {
  const probes = kept.slice(0, 6)
  const probe = async (after: string, write: () => Promise<void>) => {
    for (const filter of probes) {
      pair.flat.countSync({ filter })
      pair.hnsw.countSync({ filter })
    }
    await write()
    for (const filter of probes) {
      const expected = model.admitted(filter).length
      expect(pair.flat.countSync({ filter }), `${where}, after ${after}: flat count of ${JSON.stringify(filter)}`).toBe(expected)
      expect(pair.hnsw.countSync({ filter }), `${where}, after ${after}: hnsw count of ${JSON.stringify(filter)}`).toBe(expected)
    }
  }

  for (let round = 0; round < 3; round++) {
    await probe(`upsert ${round}`, async () => {
      const existing = [...model.items.values()]
      const batch: ModelItem[] = []
      const inBatch = new Set<string>()
      for (let j = 0; j < 60; j++) {
        const id = chance(next, 0.5) ? pick(next, existing).id : randomId(next)
        if (inBatch.has(keyOf(id))) continue
        inBatch.add(keyOf(id))
        batch.push({ id, vector: randomVector(next), metadata: chance(next, 0.9) ? randomMetadata(next) : undefined })
      }
      pair.flat.upsertSync(batch)
      await pair.hnsw.upsert(batch)
      for (const item of batch) model.upsert(item)
    })

    await probe(`delete by ids ${round}`, async () => {
      const existing = [...model.items.values()]
      const ids: CollectionId[] = []
      for (let j = 0; j < 25; j++) ids.push(pick(next, existing).id)
      ids.push(ids[0]!, ids[1]!) // repeated
      for (let j = 0; j < 5; j++) ids.push(randomId(next)) // mostly absent
      const present = new Set(ids.map(keyOf).filter((k) => model.items.has(k)))
      expect(pair.flat.deleteSync(ids), `${where}: flat deleteSync(ids)`).toBe(present.size)
      expect(await pair.hnsw.delete(ids), `${where}: hnsw delete(ids)`).toBe(present.size)
      for (const k of present) model.items.delete(k)
    })

    await probe(`delete by filter ${round}`, async () => {
      // The first removes enough (with the deletes by id, over a tenth of the items) for the
      // next upsert to compact the HNSW graph first.
      const filter = round === 0 ? filterAdmitting(next, model, 0.12, 0.3) : filterAdmitting(next, model, 0, 0.08)
      const admitted = model.admitted(filter)
      expect(await pair.flat.delete({ filter }), `${where}: flat delete({ filter: ${JSON.stringify(filter)} })`).toBe(admitted.length)
      expect(pair.hnsw.deleteSync({ filter }), `${where}: hnsw deleteSync({ filter: ${JSON.stringify(filter)} })`).toBe(admitted.length)
      for (const item of admitted) model.items.delete(keyOf(item.id))
    })
  }
}

function createPair(): Pair {
  return {
    flat: new Collection({ dimensions: DIM, metric: 'l2sq', index: 'flat', fields: { ...FIELDS } }),
    hnsw: new Collection({ dimensions: DIM, metric: 'l2sq', index: 'hnsw', m: 8, efConstruction: 64, seed: 3, fields: { ...FIELDS } }),
  }
}

const dir = mkdtempSync(join(tmpdir(), 'vecdex-collection-filter-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('Collection filters against a plain JS evaluation of the same filter', () => {
  it(`count, search and delete admit exactly what the reference admits, through writes and save/load (seed ${SEED})`, async () => {
    const next = rng(SEED)
    const model = new Model()
    let pair = createPair()
    const tally = newTally()
    const kept = Array.from({ length: KEPT_FILTERS }, () => randomFilter(next))
    const fresh = () => Array.from({ length: FRESH_FILTERS }, () => randomFilter(next))
    try {
      // Built in batches, with a few ids given twice (the later batch replaces them).
      for (let b = 0; b < 4; b++) {
        const batch: ModelItem[] = []
        const inBatch = new Set<string>()
        while (batch.length < INITIAL_ITEMS / 4) {
          const id = b > 0 && chance(next, 0.05) ? pick(next, [...model.items.values()]).id : randomId(next)
          if (inBatch.has(keyOf(id))) continue
          inBatch.add(keyOf(id))
          batch.push({ id, vector: randomVector(next), metadata: randomMetadata(next) })
        }
        pair.flat.upsertSync(batch)
        await pair.hnsw.upsert(batch)
        for (const item of batch) model.upsert(item)
      }
      await verify('fresh', pair, model, [...kept, ...fresh()], next, tally)

      await mutate('writes 1', pair, model, kept, next)
      await verify('after writes', pair, model, [...kept, ...fresh()], next, tally)

      const flatFile = join(dir, 'flat.vdx')
      const hnswFile = join(dir, 'hnsw.vdx')
      pair.flat.saveSync(flatFile)
      await pair.hnsw.save(hnswFile)
      pair.flat.close()
      pair.hnsw.close()
      pair = { flat: Collection.loadSync(flatFile), hnsw: await Collection.load(hnswFile) }
      expect(pair.flat.fields).toEqual(FIELDS)
      verifyContents('loaded flat', pair.flat, model)
      verifyContents('loaded hnsw', pair.hnsw, model)
      await verify('after saveSync + loadSync', pair, model, [...kept, ...fresh()], next, tally)

      const flatImage = await pair.flat.toBuffer()
      const hnswImage = pair.hnsw.toBufferSync()
      pair.flat.close()
      pair.hnsw.close()
      pair = { flat: await Collection.fromBuffer(flatImage), hnsw: Collection.fromBufferSync(hnswImage) }
      await verify('after toBuffer + fromBuffer', pair, model, [...kept, ...fresh()], next, tally)

      // Writes on loaded collections (columns rebuilt by the loader, rows freed before the save).
      await mutate('writes 2', pair, model, kept, next)
      verifyContents('written after load', pair.hnsw, model)
      await verify('after writes on the loaded collections', pair, model, [...kept, ...fresh()], next, tally)
    } finally {
      pair.flat.close()
      pair.hnsw.close()
    }

    // The random filters covered the interesting cases: empty results, full ones, and many
    // in between.
    expect(tally.filters).toBeGreaterThanOrEqual(5 * (KEPT_FILTERS + FRESH_FILTERS))
    expect(tally.emptyResults).toBeGreaterThan(tally.filters * 0.05)
    expect(tally.fullResults).toBeGreaterThan(tally.filters * 0.02)
    expect(tally.filters - tally.emptyResults - tally.fullResults).toBeGreaterThan(tally.filters * 0.4)
    expect(tally.deletes).toBeGreaterThan(100)
    expect(tally.recallHits / tally.recallWanted, 'HNSW recall of every admitted item (k = size)').toBeGreaterThanOrEqual(0.95)
    expect(tally.topRecallHits / tally.topRecallWanted, 'HNSW recall@10 against the exact filtered top 10').toBeGreaterThanOrEqual(0.95)
  })
})

describe('Collection filter edge cases', () => {
  function small(): Collection {
    const c = new Collection({ dimensions: 2, index: 'flat', metric: 'l2sq', fields: { cat: 'string', never: 'number' } })
    c.upsertSync([
      { id: 'a', vector: [0, 0], metadata: { cat: 'x', price: 1, tags: ['p'] } },
      { id: 1, vector: [1, 0], metadata: { cat: 'y', price: 2 } },
      { id: 'c', vector: [0, 1] },
    ])
    return c
  }

  it('a field no item has (declared or not) is an empty result, not an error; its negations admit all', async () => {
    using c = small()
    for (const field of ['ghost', 'never', 'cat.sub', 'price.x']) {
      for (const condition of [5, 'x', true, { $gt: 0 }, { $lte: 'z' }, { $in: [1, 'x'] }, { $exists: true }, { $contains: 'p' }]) {
        const filter = { [field]: condition }
        expect(c.countSync({ filter }), JSON.stringify(filter)).toBe(0)
        expect(await c.count({ filter }), JSON.stringify(filter)).toBe(0)
        expect(c.searchSync([0, 0], { k: 3, filter }), JSON.stringify(filter)).toEqual([])
        expect(c.deleteSync({ filter }), JSON.stringify(filter)).toBe(0)
      }
      for (const condition of [{ $ne: 5 }, { $nin: ['x', 1] }, { $exists: false }, { $not: { $eq: 'x' } }]) {
        const filter = { [field]: condition }
        expect(c.countSync({ filter }), JSON.stringify(filter)).toBe(3)
        expect(c.searchSync([0, 0], { k: 3, filter }).length, JSON.stringify(filter)).toBe(3)
      }
    }
    expect(c.size).toBe(3)
  })

  it('malformed filters are ERR_INVALID_ARGUMENT naming the operator and the path, and change nothing', async () => {
    using c = small()
    const cases: [Filter, string[]][] = [
      [{ price: { $foo: 1 } }, ['"$foo"', 'price']],
      [{ $and: [{ cat: 'x' }, { price: { $gt: true } }] }, ['$gt', '$and[1].price']],
      [{ $or: [] }, ['$or']],
      [{ $or: { cat: 'x' } }, ['$or']],
      [{ $and: [{ cat: 'x' }, 5] }, ['$and[1]']],
      [{ tags: { $in: 'p' } }, ['$in', 'tags']],
      [{ tags: { $nin: [['p']] } }, ['$nin', 'tags']],
      [{ cat: { $exists: 1 } }, ['$exists', 'cat']],
      [{ $not: { info: { $eq: [1] } } }, ['$eq', '$not.info']],
      [{ cat: { $not: 'x' } }, ['$not', 'cat']],
      [{ cat: { $contains: { a: 1 } } }, ['$contains', 'cat']],
      [{ $eq: 1 }, ['$eq']],
      [{ 'a..b': 1 }, ['a..b']],
      [{ cat: {} }, ['cat']],
      [{ cat: { sub: 1 } }, ['"sub"', 'cat']],
      [{ price: { $lt: null } }, ['$lt', 'price']],
      [{ $or: [{ $and: [{ x: { $gte: 1, $bad: 2 } }] }] }, ['"$bad"', '$or[0].$and[0].x']],
    ]
    for (const [filter, parts] of cases) {
      const label = JSON.stringify(filter)
      const calls: [string, () => unknown][] = [
        ['countSync', () => c.countSync({ filter })],
        ['searchSync', () => c.searchSync([0, 0], { k: 3, filter })],
        ['deleteSync', () => c.deleteSync({ filter })],
      ]
      for (const [name, call] of calls) {
        let error: unknown
        try {
          call()
        } catch (e) {
          error = e
        }
        expect(error, `${name} ${label}`).toBeInstanceOf(VecdexError)
        expect((error as VecdexError).code, `${name} ${label}`).toBe('ERR_INVALID_ARGUMENT')
        for (const part of parts) expect((error as Error).message, `${name} ${label}`).toContain(part)
      }
      await expect(c.count({ filter }), `count ${label}`).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
      await expect(c.search([0, 0], { k: 3, filter }), `search ${label}`).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
      await expect(c.delete({ filter }), `delete ${label}`).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    }
    // Too deep a nesting is refused, not a stack overflow.
    let deep: Filter = { cat: 'x' }
    for (let i = 0; i < 200; i++) deep = { $not: deep }
    expect(() => c.countSync({ filter: deep })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    // Not an object at all (checked in JS).
    for (const filter of [[], 'cat', null, 5] as unknown[]) {
      expect(() => c.countSync({ filter: filter as Filter }), JSON.stringify(filter)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    }
    expect(c.size).toBe(3)
    expect(c.countSync({ filter: { cat: 'x' } })).toBe(1)
  })
})
