// Helpers shared by the exact adapters (adapters/*.mjs) and the ANN adapters (adapters/ann/*.mjs):
// loading vecdex or a peer (workspace.mjs) with its version or a skip reason, row keys, normalised copies, temp dirs.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { packageVersion } from '../machine.mjs'

export { loadPeer } from '../workspace.mjs'

/**
 * Loads vecdex through its package entry (dist/, written by `npm run build`).
 * @returns {Promise<{ module: any, version: string | null, error?: undefined } | { error: string, module?: undefined }>}
 */
export async function loadVecdex() {
  try {
    return { module: await import('vecdex'), version: packageVersion('vecdex') }
  } catch (error) {
    return { error: `cannot load vecdex (run npm run build): ${error?.message ?? error}` }
  }
}

/** Keys 0 … n − 1 (base row numbers), as usearch and vecdex take them. */
export function rowKeys(n) {
  const keys = new BigUint64Array(n)
  for (let i = 0; i < n; i++) keys[i] = BigInt(i)
  return keys
}

/** A copy of a row-major matrix with every row scaled to unit length (zero rows stay zero). */
export function normalisedRows(matrix, dim) {
  const out = new Float32Array(matrix.length)
  for (let i = 0; i < matrix.length; i += dim) {
    let s = 0
    for (let j = i; j < i + dim; j++) s += matrix[j] * matrix[j]
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0
    for (let j = i; j < i + dim; j++) out[j] = matrix[j] * inv
  }
  return out
}

/** Writes `src` scaled to unit length into `dst` (zeros stay zeros); returns `dst`. */
export function normaliseInto(src, dst) {
  let s = 0
  for (let j = 0; j < src.length; j++) s += src[j] * src[j]
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0
  for (let j = 0; j < src.length; j++) dst[j] = src[j] * inv
  return dst
}

/** Zero-copy views of each row of a row-major matrix. */
export function rowViews(matrix, dim) {
  const rows = new Array(matrix.length / dim)
  for (let i = 0; i < rows.length; i++) rows[i] = matrix.subarray(i * dim, (i + 1) * dim)
  return rows
}

const tempDirs = new Set()
let exitHookInstalled = false

/**
 * A fresh directory under the OS temp dir for an engine's files. It is removed by
 * `removeTempDir`, or at process exit if a run ends early.
 */
export function makeTempDir(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vecdex-bench-${label}-`))
  tempDirs.add(dir)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true })
    })
  }
  return dir
}

export function removeTempDir(dir) {
  if (!dir) return
  fs.rmSync(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

/** Total size in bytes of the files under a path (0 if it does not exist). */
export function diskBytes(p) {
  let stat
  try {
    stat = fs.statSync(p)
  } catch {
    return 0
  }
  if (!stat.isDirectory()) return stat.size
  let total = 0
  for (const entry of fs.readdirSync(p)) total += diskBytes(path.join(p, entry))
  return total
}
