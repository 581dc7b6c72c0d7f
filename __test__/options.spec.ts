// The option contract: every options object rejects unknown keys (naming the closest valid
// one), and every documented default is the default a user gets — read back from the built
// object and compared with the core's option table, which the README's reference is rendered
// from.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Collection, FdeEncoder, FlatIndex, HnswIndex, inspectIndexFile, MultiVectorIndex } from '../dist/index.js'
import { OPTION_TABLES, optionsOf, type OptionSetName } from '../dist/options.js'
// @ts-expect-error: plain ES module without type declarations
import { BEGIN, END, renderOptions } from '../scripts/options-table.mjs'
import { randomMatrix } from './helpers'

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code
}

const dir = mkdtempSync(join(tmpdir(), 'vecdex-options-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function rejects(make: () => unknown, ...fragments: string[]): void {
  let error: unknown
  try {
    make()
  } catch (e) {
    error = e
  }
  expect(codeOf(error)).toBe('ERR_INVALID_ARGUMENT')
  for (const fragment of fragments) expect((error as Error).message).toContain(fragment)
}

async function rejectsAsync(make: () => Promise<unknown>, ...fragments: string[]): Promise<void> {
  const error = await make().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(codeOf(error)).toBe('ERR_INVALID_ARGUMENT')
  for (const fragment of fragments) expect((error as Error).message).toContain(fragment)
}

describe('unknown option keys are errors that name the closest valid key', () => {
  const dims = 4
  const query = new Float32Array([1, 0, 0, 0])
  const filled = <T extends { addSync(k: number[], v: Float32Array): void }>(index: T): T => {
    index.addSync([1, 2, 3], randomMatrix(3, dims, 7))
    return index
  }

  it('constructors of every index kind (and their nested objects)', () => {
    const cases: [() => unknown, string, string][] = [
      [() => new HnswIndex({ dimensions: dims, efsearch: 8 } as never), 'efsearch', 'did you mean efSearch?'],
      [() => new HnswIndex({ dimensions: dims, M: 8 } as never), "'M'", 'did you mean m?'],
      [() => new HnswIndex({ dimension: dims } as never), 'dimension', 'did you mean dimensions?'],
      [() => new FlatIndex({ dimensions: dims, metrc: 'dot' } as never), 'metrc', 'did you mean metric?'],
      [() => new FlatIndex({ dimensions: dims, quantisation: 'sq8' } as never), 'quantisation', 'did you mean quantization?'],
      [() => new FlatIndex({ dimensions: dims, quantization: { type: 'pq', subspace: 2 } } as never), 'subspace', 'did you mean subspaces?'],
      [() => new MultiVectorIndex({ dimensions: dims, candidate: 5 } as never), 'candidate', 'did you mean candidates?'],
      [() => new MultiVectorIndex({ dimensions: dims, fde: { numRepetition: 2 } } as never), 'numRepetition', 'did you mean numRepetitions?'],
      [() => new MultiVectorIndex({ dimensions: dims, colour: 'red' } as never), "'colour'", 'it takes'],
    ]
    for (const [make, ...fragments] of cases) rejects(make, ...fragments)
  })

  it('search options of every index kind, sync and async (the issue\'s `ef: 5` and `tokenNeighbors`)', async () => {
    using hnsw = filled(new HnswIndex({ dimensions: dims }))
    using flat = filled(new FlatIndex({ dimensions: dims }))
    rejects(() => hnsw.searchSync(query, { k: 1, ef: 5 } as never), "'ef'", 'did you mean efSearch?')
    await rejectsAsync(() => hnsw.search(query, { k: 1, ef: 5 } as never), "'ef'", 'did you mean efSearch?')
    rejects(() => flat.searchSync(query, { k: 1, efSearch: 5 } as never), "'efSearch'")
    await rejectsAsync(() => flat.search(query, { k: 1, rescor: false } as never), 'did you mean rescore?')
    using multi = new MultiVectorIndex({ dimensions: dims })
    multi.addSync([1, 2], [randomMatrix(3, dims, 1), randomMatrix(2, dims, 2)])
    await rejectsAsync(() => multi.search(randomMatrix(2, dims, 3), { k: 1, tokenNeighbors: 8 } as never), 'tokenNeighbors', 'did you mean tokenNeighbours?')
    rejects(() => multi.searchSync(randomMatrix(2, dims, 3), { k: 1, tokenNeighbors: 8 } as never), 'did you mean tokenNeighbours?')
  })

  it('stream options and the encoder', async () => {
    using hnsw = new HnswIndex({ dimensions: dims })
    await rejectsAsync(() => hnsw.addStream([query], { batchsize: 2 } as never), 'did you mean batchSize?')
    rejects(() => new FdeEncoder({ dimensions: dims, numSimHashProjections: 3 } as never), 'did you mean numSimhashProjections?')
  })

  it('values of the wrong kind or out of range name the limits from the table', () => {
    const m = OPTION_TABLES.HnswIndexOptions.options.m
    rejects(() => new HnswIndex({ dimensions: dims, m: (m.max as number) + 1 }), `from ${m.min} to ${m.max}`)
    rejects(() => new HnswIndex({ dimensions: dims, m: 8.5 }), 'm must be an integer')
    rejects(() => new HnswIndex({ dimensions: dims, insertionOrder: 'sorted' as never }), "'given', 'random', 'lid'")
    rejects(() => new FlatIndex({ dimensions: dims, quantization: { type: 'sq8', clipQuantile: 0.5 } }), 'clipQuantile must be a number in [0, 0.5)')
    rejects(() => new FlatIndex({ dimensions: dims, quantization: { type: 'sq8', symmetric: 'yes' as never } }), 'symmetric must be a boolean')
    rejects(() => new FlatIndex({ dimensions: 0 }), 'dimensions must be an integer from 1 to 65536')
    rejects(() => new FlatIndex({} as never), 'dimensions is required')
  })
})

/** How to read each default back from what a user builds: `Set.option` → the value in force. */
async function readers(): Promise<Record<string, () => unknown | Promise<unknown>>> {
  const dims = 32
  const hnsw = new HnswIndex({ dimensions: dims })
  const flat = new FlatIndex({ dimensions: dims })
  const multi = new MultiVectorIndex({ dimensions: dims })
  const encoder = new FdeEncoder({ dimensions: dims })
  const saved = async (index: { saveSync(path: string): void }, name: string) => {
    const path = join(dir, name)
    index.saveSync(path)
    return (await inspectIndexFile(path)).settings
  }
  hnsw.addSync([1], randomMatrix(1, dims, 1))
  const hnswSettings = await saved(hnsw, 'hnsw.vdx')
  const multiSettings = await saved(multi, 'multi.vdx')
  const sq8 = new FlatIndex({ dimensions: dims, quantization: 'sq8' })
  const sqSettings = await saved(sq8, 'sq8.vdx')
  const pq = new FlatIndex({ dimensions: dims, quantization: 'pq' })
  const pqSettings = await saved(pq, 'pq.vdx')

  // Streams: the batch a stream uses by default shows in how many native batches it makes.
  const batchesOf = async (count: number): Promise<number> => {
    using index = new FlatIndex({ dimensions: 2 })
    let batches = 0
    await index.addStream(
      Array.from({ length: count }, () => [1, 1]),
      { onProgress: (p) => (batches = p.batches) },
    )
    return batches
  }
  const documentBatchesOf = async (count: number): Promise<number> => {
    using index = new MultiVectorIndex({ dimensions: 2, strategy: 'walk' })
    let batches = 0
    await index.addStream(
      Array.from({ length: count }, (_, key) => ({ key, tokens: [[1, 0.5]] })),
      { onProgress: (p) => (batches = p.batches) },
    )
    return batches
  }
  const streamRows = async (): Promise<number> => {
    using index = new FlatIndex({ dimensions: 2 })
    index.addSync([1], [[1, 1]])
    const queries = Array.from({ length: 1000 }, () => [1, 1])
    for await (const rows of index.searchStream(queries, { k: 1 })) return rows.length
    return 0
  }
  const addDefault = Number(OPTION_TABLES.AddStreamOptions.options.batchSize.default)
  const documentDefault = Number(OPTION_TABLES.DocumentStreamOptions.options.batchSize.default)
  const startKey = async () => {
    using index = new FlatIndex({ dimensions: 2 })
    await index.addStream([[1, 1]])
    return Number(index.keys()[0])
  }
  // Searches: the default of a search option gives the results of giving it explicitly.
  const sameResults = async (make: (extra: object) => Promise<{ keys: BigUint64Array; distances: Float32Array }>, extra: object) => {
    const [a, b] = [await make({}), await make(extra)]
    return [...a.keys].join() === [...b.keys].join() && [...a.distances].join() === [...b.distances].join()
  }
  const searched = new FlatIndex({ dimensions: dims, quantization: 'sq8', trainingSize: 64 })
  searched.addSync(Array.from({ length: 64 }, (_, i) => i), randomMatrix(64, dims, 9))
  const tokenDocs = new MultiVectorIndex({ dimensions: dims, strategy: 'tokens' })
  tokenDocs.addSync(Array.from({ length: 40 }, (_, i) => i), Array.from({ length: 40 }, (_, i) => randomMatrix(3, dims, 100 + i)))
  const tokenQuery = randomMatrix(2, dims, 5)

  // Collections: graph settings from the saved file, contents from what a search or get returns.
  const collection = new Collection({ dimensions: dims })
  collection.upsertSync([{ id: 'a', vector: randomMatrix(1, dims, 11), text: 't', metadata: { n: 1 } }])
  const collectionSettings = await saved(collection, 'collection.vdx')
  const collectionQuery = randomMatrix(1, dims, 12)
  const compressedCollection = new Collection({ dimensions: dims, index: 'flat', quantization: 'sq8', trainingSize: 64 })
  compressedCollection.upsertSync(Array.from({ length: 64 }, (_, i) => ({ id: i, vector: randomMatrix(1, dims, 200 + i) })))
  const sameHits = async (extra: object) => {
    const [a, b] = [await compressedCollection.search(collectionQuery, { k: 5 }), await compressedCollection.search(collectionQuery, { k: 5, ...extra })]
    return JSON.stringify(a) === JSON.stringify(b)
  }
  const upsertBatchesOf = async (count: number): Promise<number> => {
    using target = new Collection({ dimensions: 2, index: 'flat' })
    let batches = 0
    await target.upsertStream(
      Array.from({ length: count }, (_, id) => ({ id, vector: [1, 0.5] })),
      { onProgress: () => batches++ },
    )
    return batches
  }
  const upsertDefault = Number(OPTION_TABLES.UpsertStreamOptions.options.batchSize.default)

  return {
    'CollectionOptions.metric': () => collection.metric,
    'CollectionOptions.index': () => collection.index === collectionSettings.index && collection.index,
    'CollectionOptions.m': () => collectionSettings.m,
    'CollectionOptions.efConstruction': () => collectionSettings.efConstruction,
    'CollectionOptions.efSearch': () => collectionSettings.efSearch,
    'CollectionOptions.seed': () => collectionSettings.seed,
    'CollectionOptions.insertionOrder': () => collectionSettings.insertionOrder,
    'CollectionOptions.fullVectors': () => collection.stats().fullVectors,
    'CollectionSearchOptions.includeMetadata': () => {
      const [hit] = collection.searchSync(collectionQuery, { k: 1 })
      const [bare] = collection.searchSync(collectionQuery, { k: 1, includeMetadata: false })
      return bare.metadata === undefined && bare.text === undefined && hit.text === 't' && hit.metadata !== undefined
    },
    'CollectionSearchOptions.includeVectors': () => {
      const [withVector] = collection.searchSync(collectionQuery, { k: 1, includeVectors: true })
      if (!(withVector.vector instanceof Float32Array)) return 'includeVectors: true gave no vector'
      return collection.searchSync(collectionQuery, { k: 1 })[0].vector !== undefined
    },
    'CollectionSearchOptions.rescore': async () => (await sameHits({ rescore: true })) && !(await sameHits({ rescore: false })) && true,
    'CollectionGetOptions.includeVectors': () => collection.getSync(['a'])[0]?.vector instanceof Float32Array && collection.getSync(['a'], { includeVectors: false })[0]?.vector === undefined,
    'UpsertStreamOptions.batchSize': async () => (await upsertBatchesOf(upsertDefault + 1)) === 2 && (await upsertBatchesOf(upsertDefault)) === 1 && upsertDefault,
    'FlatIndexOptions.metric': () => flat.metric,
    'FlatIndexOptions.fullVectors': () => flat.compressionStats().fullVectors,
    'HnswIndexOptions.metric': () => hnsw.metric,
    'HnswIndexOptions.m': () => hnsw.m === hnswSettings.m && hnsw.m,
    'HnswIndexOptions.efConstruction': () => hnsw.efConstruction === hnswSettings.efConstruction && hnsw.efConstruction,
    'HnswIndexOptions.efSearch': () => hnsw.efSearch === hnswSettings.efSearch && hnsw.efSearch,
    'HnswIndexOptions.seed': () => hnswSettings.seed,
    'HnswIndexOptions.insertionOrder': () => hnswSettings.insertionOrder,
    'HnswIndexOptions.fullVectors': () => hnsw.compressionStats().fullVectors,
    'CompressionOptions.quantization': () => hnsw.compressionStats().quantization,
    'QuantizationOptions.clipQuantile': () => sqSettings.clipQuantile,
    'QuantizationOptions.iterations': () => pqSettings.iterations,
    'MultiVectorIndexOptions.metric': () => multi.metric,
    'MultiVectorIndexOptions.m': () => multi.m === multiSettings['graph.m'] && multi.m,
    'MultiVectorIndexOptions.efConstruction': () => multi.efConstruction,
    'MultiVectorIndexOptions.efSearch': () => multi.efSearch,
    'MultiVectorIndexOptions.seed': () => multiSettings['graph.seed'],
    'MultiVectorIndexOptions.candidates': () => multi.candidates === multiSettings.candidates && multi.candidates,
    'MultiVectorIndexOptions.strategy': () => multi.strategy === multiSettings.strategy && multi.strategy,
    'MultiVectorIndexOptions.fdeMetric': () => multi.fdeMetric === multiSettings.fdeMetric && multi.fdeMetric,
    'MultiVectorFdeOptions.numRepetitions': () => multi.fde.numRepetitions === multiSettings.numRepetitions && multi.fde.numRepetitions,
    'MultiVectorFdeOptions.numSimhashProjections': () => multi.fde.numSimhashProjections,
    'MultiVectorFdeOptions.seed': () => multiSettings.seed,
    'MultiVectorFdeOptions.projectionType': () => multi.fde.projectionType,
    'MultiVectorFdeOptions.projectionDimension': () => multi.fde.projectionDimension,
    'MultiVectorFdeOptions.fillEmptyPartitions': () => multi.fde.fillEmptyPartitions,
    'FdeEncoderOptions.numRepetitions': () => encoder.config.numRepetitions,
    'FdeEncoderOptions.numSimhashProjections': () => encoder.config.numSimhashProjections,
    'FdeEncoderOptions.seed': () => encoder.config.seed,
    'FdeEncoderOptions.projectionType': () => encoder.config.projectionType,
    'FdeEncoderOptions.projectionDimension': () => encoder.config.projectionDimension,
    'FdeEncoderOptions.fillEmptyPartitions': () => encoder.config.fillEmptyPartitions,
    'SearchOptions.rescore': async () =>
      (await sameResults((extra) => searched.search(randomMatrix(1, dims, 3), { k: 5, ...extra }), { rescore: true })) &&
      !(await sameResults((extra) => searched.search(randomMatrix(1, dims, 3), { k: 5, ...extra }), { rescore: false })) &&
      true,
    'MultiVectorSearchOptions.tokenNeighbours': async () => {
      const neighbours = Number(OPTION_TABLES.MultiVectorSearchOptions.options.tokenNeighbours.default)
      const same = await sameResults((extra) => tokenDocs.search(tokenQuery, { k: 10, candidates: 10, ...extra }), { tokenNeighbours: neighbours })
      const other = await sameResults((extra) => tokenDocs.search(tokenQuery, { k: 10, candidates: 10, ...extra }), { tokenNeighbours: 1 })
      return same && !other && neighbours
    },
    'AddStreamOptions.batchSize': async () => (await batchesOf(addDefault + 1)) === 2 && (await batchesOf(addDefault)) === 1 && addDefault,
    'AddStreamOptions.startKey': startKey,
    'DocumentStreamOptions.batchSize': async () => (await documentBatchesOf(documentDefault + 1)) === 2 && (await documentBatchesOf(documentDefault)) === 1 && documentDefault,
    'SearchStreamOptions.batchSize': streamRows,
  }
}

describe('documented defaults are the defaults a user gets', () => {
  it('every value default in the core table reads back from a built object', async () => {
    const read = await readers()
    const checked: string[] = []
    for (const [set, table] of Object.entries(OPTION_TABLES)) {
      for (const [name, spec] of Object.entries(table.options)) {
        if (spec.default === undefined) continue
        const id = `${set}.${name}`
        expect(read[id], `no reader for the default of ${id}: add one`).toBeTypeOf('function')
        const value = await read[id]()
        // `SearchOptions.rescore` reads back as "true gives the default's results, false does not".
        expect(value, id).toBe(spec.default)
        checked.push(id)
      }
    }
    expect(checked.length).toBeGreaterThan(30)
  })

  it('a default MultiVectorIndex uses the documented FDE: the token mean (1 × 2^0 × the token dimension)', () => {
    using multi = new MultiVectorIndex({ dimensions: 16 })
    const fde = OPTION_TABLES.MultiVectorFdeOptions.options
    expect([fde.numRepetitions.default, fde.numSimhashProjections.default, fde.projectionType.default]).toEqual([1, 0, 'identity'])
    expect(multi.stats().fdeDimension).toBe(16)
    expect(multi.fde).toMatchObject({ numRepetitions: 1, numSimhashProjections: 0, projectionType: 'identity', outputDimension: 16 })
    // Asking for the sketch alone takes the sketch's default size (the FdeEncoder's).
    using sketched = new MultiVectorIndex({ dimensions: 16, fde: { projectionType: 'amsSketch' } })
    expect(sketched.fde.projectionDimension).toBe(OPTION_TABLES.FdeEncoderOptions.options.projectionDimension.default)
    // A sketch size with no projection named asks for the sketch; with the identity named it is
    // a typed error, not a silent change of projection.
    using sized = new MultiVectorIndex({ dimensions: 16, fde: { numRepetitions: 2, numSimhashProjections: 3, projectionDimension: 8 } })
    expect(sized.fde).toMatchObject({ projectionType: 'amsSketch', projectionDimension: 8, outputDimension: 2 * 8 * 8 })
    expect(() => new MultiVectorIndex({ dimensions: 16, fde: { projectionType: 'identity', projectionDimension: 8 } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('the README options reference is the one rendered from the table', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const start = readme.indexOf(BEGIN)
    const end = readme.indexOf(END)
    expect(start, 'README.md has an options block').toBeGreaterThanOrEqual(0)
    expect(readme.slice(start, end + END.length), 'run `node scripts/options-table.mjs --write`').toBe(renderOptions(OPTION_TABLES))
  })

  it('every option set the TS layer checks against exists in the table', () => {
    const sets: OptionSetName[] = ['FlatIndexOptions', 'HnswIndexOptions', 'MultiVectorIndexOptions', 'SearchOptions', 'HnswSearchOptions', 'MultiVectorSearchOptions', 'ExactSearchOptions', 'AddStreamOptions', 'SearchStreamOptions', 'FdeEncoderOptions', 'CollectionOptions', 'CollectionSearchOptions', 'CollectionGetOptions', 'CollectionCountOptions', 'UpsertStreamOptions']
    for (const set of sets) expect(optionsOf(set).size, set).toBeGreaterThan(0)
  })
})

/** The JSDoc of each property of each exported interface in the built `.d.ts` files. */
function interfaceDocs(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>()
  const distDir = new URL('../dist/', import.meta.url)
  for (const file of readdirSync(distDir).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(new URL(file, distDir), 'utf8')
    for (const match of text.matchAll(/export interface (\w+)(?: extends [^{]+)? \{([\s\S]*?)\n\}/g)) {
      const props = new Map<string, string>()
      for (const prop of match[2].matchAll(/\/\*\*([\s\S]*?)\*\/\s*(\w+)\??:/g)) props.set(prop[2], prop[1].replace(/\s*\*\s*/g, ' '))
      out.set(match[1], props)
    }
  }
  return out
}

const asNumber = (text: string) => Number(text.replace(/,/g, ''))

describe('numbers in the TS docs of options agree with the table', () => {
  // The TS interface each option set's docs live on (FdeOptions documents the encoder's defaults).
  const documented: [string, OptionSetName][] = [
    ['FlatIndexOptions', 'FlatIndexOptions'],
    ['HnswIndexOptions', 'HnswIndexOptions'],
    ['MultiVectorIndexOptions', 'MultiVectorIndexOptions'],
    ['CompressionOptions', 'CompressionOptions'],
    ['FdeOptions', 'FdeEncoderOptions'],
    ['SearchOptions', 'SearchOptions'],
    ['HnswSearchOptions', 'HnswSearchOptions'],
    ['MultiVectorSearchOptions', 'MultiVectorSearchOptions'],
    ['AddStreamOptions', 'AddStreamOptions'],
    ['SearchStreamOptions', 'SearchStreamOptions'],
    ['CollectionOptions', 'CollectionOptions'],
    ['CollectionSearchOptions', 'CollectionSearchOptions'],
    ['UpsertStreamOptions', 'UpsertStreamOptions'],
  ]

  it('every "default N" and "A to B" in an option\'s doc is the table\'s', () => {
    const docs = interfaceDocs()
    let checked = 0
    for (const [iface, set] of documented) {
      const props = docs.get(iface)
      expect(props, `interface ${iface} in dist/*.d.ts`).toBeDefined()
      for (const [name, doc] of props!) {
        const spec = optionsOf(set).get(name)
        expect(spec, `${iface}.${name} is an option of ${set}`).toBeDefined()
        const range = /\b(\d[\d,]*) to (\d[\d,]*)\b/.exec(doc)
        if (range && spec!.kind === 'integer') {
          expect([asNumber(range[1]), asNumber(range[2])], `${iface}.${name}: ${doc}`).toEqual([spec!.min, spec!.max])
          checked++
        }
        const value = /\bdefault:? (\d[\d,]*)\b/.exec(doc)
        if (value && typeof spec!.default === 'number') {
          expect(asNumber(value[1]), `${iface}.${name}: ${doc}`).toBe(spec!.default)
          checked++
        }
        const named = /'(\w+)' \(default\b/.exec(doc)
        if (named && typeof spec!.default === 'string') {
          expect(named[1], `${iface}.${name}: ${doc}`).toBe(spec!.default)
          checked++
        }
      }
    }
    expect(checked).toBeGreaterThan(10)
  })
})
