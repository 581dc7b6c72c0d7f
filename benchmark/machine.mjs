// What the benchmark ran on: CPU, memory, Node, vecdex's kernels and pool, peer versions, and
// (on request) the machine's f32 matrix-multiply throughput through numpy/OpenBLAS.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { benchDir, repoRoot } from './datasets.mjs'
import { peerVersion, workspace } from './workspace.mjs'

/** Version of vecdex or of an installed peer (its package.json), or null when it is not installed. */
export function packageVersion(name) {
  if (name !== 'vecdex') return peerVersion(name)
  try {
    return JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version ?? null
  } catch {
    return null
  }
}

function cpuFlags() {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8')
    const line = text.split('\n').find((l) => l.startsWith('flags'))
    const flags = new Set(line ? line.split(':')[1].trim().split(/\s+/) : [])
    return ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'neon'].filter((f) => flags.has(f))
  } catch {
    return undefined
  }
}

/** Machine description for every result file. */
export async function machineInfo() {
  const cpus = os.cpus()
  /** @type {any} */
  let capabilities = null
  try {
    const vecdex = await import('vecdex')
    capabilities = vecdex.capabilities()
  } catch (error) {
    capabilities = { error: String(error?.message ?? error) }
  }
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuMHz: cpus[0]?.speed,
    cores: os.availableParallelism?.() ?? cpus.length,
    cpuFlags: cpuFlags(),
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg(),
    node: process.version,
    v8: process.versions.v8,
    vecdex: { version: packageVersion('vecdex'), capabilities },
    peers: {
      usearch: packageVersion('usearch'),
      'hnswlib-node': packageVersion('hnswlib-node'),
      'faiss-node': packageVersion('faiss-node'),
      '@lancedb/lancedb': packageVersion('@lancedb/lancedb'),
    },
    env: Object.fromEntries(['VECDEX_THREADS', 'OMP_NUM_THREADS', 'UV_THREADPOOL_SIZE'].filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])),
  }
}

/**
 * CPU time so far, in seconds, from /proc (Linux): busy time of the whole machine (user, nice,
 * system, irq, softirq), stolen time, and this process's time including waited-for children.
 * Null elsewhere.
 */
export function cpuSnapshot() {
  try {
    const hz = 100 // USER_HZ: the unit of /proc/stat and /proc/self/stat on Linux
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, , , irq, softirq, steal] = cpu
    // /proc/self/stat: fields after the ")" of the command name; utime is field 14.
    const self = fs.readFileSync('/proc/self/stat', 'utf8')
    const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number)
    const [utime, stime, cutime, cstime] = f.slice(11, 15)
    return { wall: performance.now() / 1e3, busy: (user + nice + system + irq + softirq) / hz, steal: (steal ?? 0) / hz, self: (utime + stime + cutime + cstime) / hz }
  } catch {
    return null
  }
}

/** Cores kept busy by other processes (and stolen by the hypervisor) between two snapshots. */
export function cpuContention(before, after) {
  if (!before || !after) return null
  const wall = after.wall - before.wall
  if (wall <= 0) return null
  return {
    seconds: wall,
    otherCores: Math.max(0, (after.busy - before.busy - (after.self - before.self)) / wall),
    stealCores: (after.steal - before.steal) / wall,
    selfCores: (after.self - before.self) / wall,
  }
}

/** Runs a command (in `cwd`, default this process's folder); resolves { code, stdout, stderr }, killing its whole process group on timeout. */
export function run(command, args, { timeoutMs = 120_000, env = process.env, cwd = undefined } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }, timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ code: -1, stdout, stderr: stderr + String(error.message), timedOut })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: timedOut ? -1 : code, stdout, stderr, timedOut })
    })
  })
}

/** The workspace's venv (workspace.mjs: benchmark/.venv in a checkout, <out>/.venv once installed). */
function venvPaths() {
  const venv = workspace().venv
  return { venv, python: path.join(venv, 'bin', 'python'), pip: path.join(venv, 'bin', 'pip') }
}

/** Creates the venv with numpy (and threadpoolctl, if it installs) unless it works already. */
async function ensureNumpy(log) {
  const { venv: venvDir, python, pip } = venvPaths()
  if (fs.existsSync(python)) {
    const check = await run(python, ['-c', 'import numpy'], { timeoutMs: 60_000 })
    if (check.code === 0) return null
  }
  log(`creating ${venvDir} with numpy (once)…`)
  const venv = await run('python3', ['-m', 'venv', venvDir], { timeoutMs: 120_000 })
  if (venv.code !== 0) return `python3 -m venv failed: ${(venv.stderr || venv.stdout).trim().split('\n').pop()}`
  const both = await run(pip, ['install', '--quiet', 'numpy', 'threadpoolctl'], { timeoutMs: 300_000 })
  if (both.code !== 0) {
    const numpyOnly = await run(pip, ['install', '--quiet', 'numpy'], { timeoutMs: 300_000 })
    if (numpyOnly.code !== 0) return `pip install numpy failed: ${(numpyOnly.stderr || numpyOnly.stdout).trim().split('\n').pop()}`
  }
  return null
}

/**
 * f32 GEMM throughput through numpy's BLAS on `threads` threads: `Q @ B.T` for each
 * [q, n, dim] shape and a 4096³ sgemm, best of 5 after a warm-up. OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE are removed from the environment so OpenBLAS picks its kernels itself.
 * @returns {Promise<{ available: true, shapes: any[], square: any, blas: any } | { available: false, reason: string }>}
 */
export async function measureSgemm({ threads, shapes, log = () => {} }) {
  const problem = await ensureNumpy(log)
  if (problem) return { available: false, reason: problem }
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) }
  delete env.OPENBLAS_CORETYPE
  delete env.OPENBLAS_L2_SIZE
  log(`sgemm: numpy on ${threads} thread(s), shapes ${shapes.map((s) => s.join('×')).join(', ')} and 4096³…`)
  const r = await run(venvPaths().python, [path.join(benchDir, 'sgemm.py'), JSON.stringify({ shapes, repeats: 5 })], { env, timeoutMs: 600_000 })
  if (r.code !== 0) return { available: false, reason: `sgemm.py failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` }
  try {
    return { available: true, ...JSON.parse(r.stdout.trim().split('\n').pop()) }
  } catch (error) {
    return { available: false, reason: `cannot read sgemm.py output: ${error.message}` }
  }
}

/** A one-line summary of the BLAS numpy used (name, version, core type, threads). */
export function blasSummary(sgemm) {
  if (!sgemm?.available) return 'unavailable'
  const b = sgemm.blas ?? {}
  const pool = Array.isArray(b.threadpoolctl) ? b.threadpoolctl.find((p) => p.user_api === 'blas') : null
  const parts = [b.name ?? 'blas', b.version, pool?.architecture && `core ${pool.architecture}`, pool?.num_threads && `${pool.num_threads} threads`]
  return parts.filter(Boolean).join(', ')
}
