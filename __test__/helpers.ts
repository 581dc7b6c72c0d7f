import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { expect } from 'vitest'
import { VecdexError } from '../dist/index.js'
// @ts-expect-error: plain ES module without type declarations
import { mulberry32 } from '../benchmark/datasets.mjs'

export type RefMetric = 'cosine' | 'dot' | 'l2sq'

/** Deterministic PRNG (the benchmark's mulberry32) so failures reproduce. */
export const rng: (seed: number) => () => number = mulberry32

export function randomMatrix(rows: number, dim: number, seed: number): Float32Array {
  const next = rng(seed)
  const out = new Float32Array(rows * dim)
  for (let i = 0; i < out.length; i++) out[i] = next() * 2 - 1
  return out
}

/** Plain float64 distance, independent of vecdex: the reference for every search test. */
export function refDistance(a: ArrayLike<number>, b: ArrayLike<number>, metric: RefMetric): number {
  let dot = 0
  let na = 0
  let nb = 0
  let l2 = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
    const d = a[i] - b[i]
    l2 += d * d
  }
  if (metric === 'l2sq') return l2
  if (metric === 'dot') return 1 - dot
  return 1 - dot / (Math.sqrt(na) * Math.sqrt(nb))
}

/** Exact top-k by a plain float64 scan: [index, distance] pairs per query, best first. */
export function referenceScan(base: Float32Array, queries: Float32Array, dim: number, k: number, metric: RefMetric) {
  const n = base.length / dim
  const results: { index: number; distance: number }[][] = []
  for (let q = 0; q < queries.length / dim; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim)
    const all: { index: number; distance: number }[] = []
    for (let i = 0; i < n; i++) all.push({ index: i, distance: refDistance(query, base.subarray(i * dim, (i + 1) * dim), metric) })
    all.sort((x, y) => x.distance - y.distance || x.index - y.index)
    results.push(all.slice(0, k))
  }
  return results
}

/**
 * Checks vecdex hits against the reference: same count, distances equal within tolerance at
 * every rank, and every returned key is a true neighbour (its reference distance is within
 * tolerance of the reference distance at that rank: keys may differ only on ties).
 */
export function expectSameNeighbours(
  got: { keys: BigUint64Array; distances: Float32Array },
  want: { index: number; distance: number }[],
  refDistanceOf: (index: number) => number,
  relTol = 1e-4,
) {
  expect(got.keys.length).toBe(want.length)
  for (let r = 0; r < want.length; r++) {
    const tol = relTol * Math.max(1, Math.abs(want[r].distance))
    expect(Math.abs(got.distances[r] - want[r].distance)).toBeLessThanOrEqual(tol)
    const key = Number(got.keys[r])
    if (key !== want[r].index) {
      expect(Math.abs(refDistanceOf(key) - want[r].distance)).toBeLessThanOrEqual(tol)
    }
  }
  expect(new Set(got.keys).size).toBe(got.keys.length)
}

export const SHARED_DATA = resolve(__dirname, '..', '..', 'shared', 'data')

/** SIFT 5k (texmex descriptors from NGT's test data), or null when ../shared/data is absent. */
export function loadSift(): { base: Float32Array; queries: Float32Array; dim: number } | null {
  const basePath = resolve(SHARED_DATA, 'ngt-sift', 'sift-dataset-5k.tsv')
  const queryPath = resolve(SHARED_DATA, 'ngt-sift', 'sift-query-3.tsv')
  if (!existsSync(basePath) || !existsSync(queryPath)) return null
  const parse = (path: string, columns: number) => {
    const rows = readFileSync(path, 'utf8').trim().split('\n')
    const out = new Float32Array(rows.length * columns)
    rows.forEach((row, i) => {
      const cells = row.split('\t')
      for (let c = 0; c < columns; c++) out[i * columns + c] = Number(cells[c])
    })
    return out
  }
  return { base: parse(basePath, 128), queries: parse(queryPath, 128), dim: 128 }
}

/** MNIST test images (10k × 784, pixel values 0..255), or null when absent. */
export function loadMnist(): { images: Float32Array; dim: number; count: number } | null {
  const path = resolve(SHARED_DATA, 'mnist', 't10k-images-idx3-ubyte.gz')
  if (!existsSync(path)) return null
  const raw = gunzipSync(readFileSync(path))
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  if (view.getUint32(0) !== 0x803) throw new Error('not an IDX3 file')
  const count = view.getUint32(4)
  const dim = view.getUint32(8) * view.getUint32(12)
  const images = new Float32Array(count * dim)
  for (let i = 0; i < images.length; i++) images[i] = raw[16 + i]
  return { images, dim, count }
}

/** Asserts that `promise` rejects (or `fn` throws) with a VecdexError of `code`. */
export async function expectCode(action: Promise<unknown> | (() => unknown), code: string) {
  let error: unknown
  try {
    if (typeof action === 'function') await action()
    else await action
  } catch (e) {
    error = e
  }
  expect(error, `expected an error with code ${code}`).toBeInstanceOf(Error)
  expect((error as { code?: string }).code).toBe(code)
  // An abort is named as the platform names its aborts; every other error 'VecdexError'.
  expect((error as Error).name).toBe(code === 'ERR_ABORTED' ? 'AbortError' : 'VecdexError')
}

/** The code of the VecdexError that `work` throws or rejects with; undefined when it succeeds. */
export async function codeOf(work: () => unknown): Promise<string | undefined> {
  try {
    await work()
  } catch (error) {
    expect(error).toBeInstanceOf(VecdexError)
    return (error as VecdexError).code
  }
  return undefined
}

/** A NumPy 1.0 file whose header says `'shape': (<shape>)` verbatim (a malformed shape stays
 * malformed), padded with spaces so the data starts at a multiple of 64. */
export function npyFile(descr: string, shape: string, data: Buffer, fortran = false): Buffer {
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape}), }`
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64
  dict = dict.padEnd(total - 10 - 1, ' ') + '\n'
  const head = Buffer.alloc(10)
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head)
  head.writeUInt16LE(dict.length, 8)
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data])
}

/** Row-major f32 rows as a texmex .fvecs file (each row: its dimension as int32, then the values). */
export function fvecs(rows: Float32Array, dim: number): Buffer {
  const n = rows.length / dim
  const out = Buffer.alloc(n * (4 + 4 * dim))
  for (let i = 0; i < n; i++) {
    out.writeInt32LE(dim, i * (4 + 4 * dim))
    for (let j = 0; j < dim; j++) out.writeFloatLE(rows[i * dim + j], i * (4 + 4 * dim) + 4 + 4 * j)
  }
  return out
}

/** What one run of the `vecdex` command line gave: its exit status, output, and (with `--json`) the parsed JSON. */
export interface CliRun {
  status: number | null
  stdout: string
  stderr: string
  json: any
}

/** Runs `bin/vecdex.mjs` with `args` in a child process, on 2 threads. */
export function runCli(...args: string[]): CliRun {
  const bin = resolve(__dirname, '..', 'bin', 'vecdex.mjs')
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, VECDEX_THREADS: '2' } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: args.includes('--json') && r.stdout.trim() ? JSON.parse(r.stdout) : undefined }
}
