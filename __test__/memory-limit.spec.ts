import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

// Every buffer whose size comes from the caller (options, counts, inputs) is allocated
// fallibly: one that does not fit is ERR_OUT_OF_MEMORY, sync or async, and the process lives
// on. Each case runs in a child process under an address-space limit (ulimit -v), so that its
// multi-GiB request fails on any machine; before the fix each of them aborted the process.

const CHILD = resolve(__dirname, 'memory-limit-child.cjs')
/** Address space of the child: node with vecdex loaded reserves about 1 GiB of it. */
const LIMIT_KIB = 3 * 1024 * 1024

interface ChildResult {
  code?: string
  message?: string
  alive: boolean
  k?: number
}

function runLimited(name: string): { status: number | null; signal: string | null; result?: ChildResult; stderr: string } {
  const child = spawnSync('sh', ['-c', `ulimit -v ${LIMIT_KIB} && exec "$0" "$1" "$2"`, process.execPath, CHILD, name], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  let result: ChildResult | undefined
  try {
    result = JSON.parse(child.stdout)
  } catch {
    result = undefined
  }
  return { status: child.status, signal: child.signal, result, stderr: child.stderr.slice(0, 500) }
}

const OUT_OF_MEMORY = [
  'fde k24 sync',
  'fde k24 async',
  'fde k24 queries async',
  'fde block sync',
  'fde block query sync',
  'fde block async',
  'fde final sync',
  'fde final async',
  'multi add many sync',
  'multi add many async',
  'multi add long sync',
  'multi add long async',
  'multi search long sync',
  'multi search long async',
  'multi exact many queries sync',
  'multi exact many queries async',
  'pca flat sync',
  'pca hnsw async',
  'flat load 2^30 sync',
  'flat load 2^31 async',
  'hnsw load 4 GiB sync',
  'hnsw load 64 GiB async',
  'hnsw add m256 sync',
  'hnsw add m128 async',
]

describe.runIf(process.platform === 'linux')('allocations sized by the caller, under a memory limit', () => {
  it.each(OUT_OF_MEMORY)('%s: ERR_OUT_OF_MEMORY, and the process lives on', (name) => {
    const run = runLimited(name)
    expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' })
    expect(run.result?.code).toBe('ERR_OUT_OF_MEMORY')
    expect(run.result?.message).toMatch(/do not fit in memory/)
    expect(run.result?.alive).toBe(true)
  })

  it.each(['multi exact huge k sync', 'multi exact huge k async'])('%s: a k of 2^32 − 1 sizes nothing, every document comes back', (name) => {
    const run = runLimited(name)
    expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' })
    expect(run.result).toEqual({ k: 3, alive: true })
  })
})
