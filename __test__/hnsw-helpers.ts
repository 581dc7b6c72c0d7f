import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { expect } from 'vitest'
import { FlatIndex, type HnswIndexOptions, type SearchResults } from '../dist/index.js'
import { refDistance, rng, type RefMetric } from './helpers'

/** Keys `start .. start + n − 1`. */
export function seqKeys(n: number, start = 0): Uint32Array {
  return Uint32Array.from({ length: n }, (_, i) => start + i)
}

/** Row `i` of a flat row-major matrix. */
export function row(matrix: Float32Array, dim: number, i: number): Float32Array {
  return matrix.subarray(i * dim, (i + 1) * dim)
}

/** The given rows of `matrix`, packed. */
export function pickRows(matrix: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim)
  for (let i = 0; i < rows.length; i++) out.set(row(matrix, dim, rows[i]), i * dim)
  return out
}

/** A seeded Fisher–Yates sample of `count` distinct integers below `n`. */
export function sample(n: number, count: number, seed: number): number[] {
  const next = rng(seed)
  const all = Array.from({ length: n }, (_, i) => i)
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (n - i))
    ;[all[i], all[j]] = [all[j], all[i]]
  }
  return all.slice(0, count)
}

/**
 * Gaussian-ish clusters (sum of uniforms) around `clusters` random centres (drawn from `seed`;
 * the points from `noiseSeed`, so queries can share the centres), with `duplicates`
 * rows copied exactly from earlier rows: closer to real embeddings than uniform noise, and
 * exact duplicates test that a self-query may find a twin at distance 0.
 */
export function clusteredMatrix(rows: number, dim: number, clusters: number, seed: number, duplicates = 0, noiseSeed = seed + 1): Float32Array {
  const centre = rng(seed)
  const centres = Float32Array.from({ length: clusters * dim }, () => centre() * 4 - 2)
  const next = rng(noiseSeed)
  const out = new Float32Array(rows * dim)
  for (let i = 0; i < rows; i++) {
    const c = Math.floor(next() * clusters)
    for (let d = 0; d < dim; d++) out[i * dim + d] = centres[c * dim + d] + (next() + next() + next() - 1.5) * 0.5
  }
  for (let j = 0; j < duplicates; j++) {
    const to = 1 + Math.floor(next() * (rows - 1))
    const from = Math.floor(next() * to)
    out.copyWithin(to * dim, from * dim, (from + 1) * dim)
  }
  return out
}

/** Exact top-k of `queries` among `base` (keys = `keys[row]`), from a FlatIndex. */
export async function exactSearch(
  base: Float32Array,
  keys: ArrayLike<number>,
  dim: number,
  metric: RefMetric,
  queries: Float32Array,
  k: number,
  filter?: ArrayLike<number>,
): Promise<SearchResults> {
  using flat = new FlatIndex({ dimensions: dim, metric })
  flat.addSync(Uint32Array.from(keys), base)
  return flat.searchBatch(queries, { k, filter: filter === undefined ? undefined : Array.from(filter) })
}

/**
 * Recall@k of approximate results against exact ones, counting ties: a returned key is a hit
 * when its true (float64) distance is within tolerance of the exact k-th distance. Also checks
 * every row: distinct keys, sorted distances, and a full row (min(k, exact count) hits).
 */
export function recallOf(
  got: SearchResults,
  exact: SearchResults,
  queries: Float32Array,
  dim: number,
  metric: RefMetric,
  vectorOf: (key: number) => ArrayLike<number>,
  k: number,
): number {
  let hits = 0
  let wanted = 0
  for (let q = 0; q < exact.length; q++) {
    const want = exact.get(q)
    const have = got.get(q)
    const n = Math.min(k, want.keys.length)
    wanted += n
    expect(have.keys.length, `query ${q}: hit count`).toBe(n)
    expect(new Set(have.keys).size, `query ${q}: distinct keys`).toBe(have.keys.length)
    expectSorted(have.distances, `query ${q}`)
    if (n === 0) continue
    const kth = want.distances[n - 1]
    const tol = 1e-4 * Math.max(1, Math.abs(kth))
    const query = row(queries, dim, q)
    for (const key of have.keys) {
      if (refDistance(query, vectorOf(Number(key)), metric) <= kth + tol) hits++
    }
  }
  return wanted === 0 ? 1 : hits / wanted
}

export function expectSorted(distances: Float32Array, what: string) {
  for (let i = 1; i < distances.length; i++) {
    if (!(distances[i - 1] <= distances[i])) {
      expect.fail(`${what}: distances not sorted at ${i}: ${distances[i - 1]} > ${distances[i]}`)
    }
  }
}

/**
 * Self-query: searches every row of `vectors` (keys `keys[i]`) with k = 1 and returns the share
 * whose own key comes first, counting an exact duplicate at distance ~0 as found.
 */
export function selfHitRate(results: SearchResults, keys: ArrayLike<number>, zero = 1e-6): { rate: number; misses: number[] } {
  const misses: number[] = []
  for (let i = 0; i < keys.length; i++) {
    const hit = results.get(i)
    const found = hit.keys.length > 0 && (hit.keys[0] === BigInt(keys[i]) || Math.abs(hit.distances[0]) <= zero)
    if (!found) misses.push(keys[i])
  }
  return { rate: 1 - misses.length / keys.length, misses }
}

// ---- child processes (VECDEX_THREADS is read once per process) ----

const CHILD = resolve(__dirname, 'hnsw-child.cjs')

/** One build the child makes, and how it searches. */
export interface ChildBuild {
  options: HnswIndexOptions
  k: number
  efSearch: number
}

export interface ChildResult {
  threads: number
  builds: { k: number; keys: string[]; distances: number[]; counts: number[]; stats: Record<string, unknown> }[]
}

let scratch: string | undefined
let written = 0

/** Writes a matrix where a child process can read it (until {@link removeMatrices}); returns
 * the path. */
export function writeMatrix(matrix: Float32Array, name: string): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'vecdex-hnsw-'))
  const path = join(scratch, `${name}-${written++}.f32`)
  writeFileSync(path, Buffer.from(matrix.buffer, matrix.byteOffset, matrix.byteLength))
  return path
}

/** Deletes the files {@link writeMatrix} wrote (call in `afterAll`). */
export function removeMatrices() {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
  scratch = undefined
}

/**
 * Builds HnswIndexes in a fresh Node process with `VECDEX_THREADS=threads` (one `add` of the
 * whole base under keys 0 .. n − 1), searches `queries` in it, and returns the results.
 */
export function runChild(basePath: string, queriesPath: string, dim: number, builds: ChildBuild[], threads: number): Promise<ChildResult> {
  const spec = JSON.stringify({ base: basePath, queries: queriesPath, dim, builds })
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      [CHILD, spec],
      { env: { ...process.env, VECDEX_THREADS: String(threads) }, maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`child failed: ${error.message}\n${stderr}`))
        else resolvePromise(JSON.parse(stdout) as ChildResult)
      },
    )
  })
}

/** A child's results of one build as SearchResults-like rows. */
export function childRows(build: ChildResult['builds'][number]): SearchResults {
  const keys = BigUint64Array.from(build.keys.map(BigInt))
  const distances = Float32Array.from(build.distances)
  const counts = Uint32Array.from(build.counts)
  const k = build.k
  return {
    k,
    keys,
    distances,
    counts,
    length: counts.length,
    get(i: number) {
      const start = i * k
      const ks = keys.subarray(start, start + counts[i])
      return { keys: ks, distances: distances.subarray(start, start + counts[i]), numberKeys: () => Array.from(ks, Number) }
    },
  } as unknown as SearchResults
}
