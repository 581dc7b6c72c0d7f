// Where the benchmark writes, and where it finds the libraries it compares against (its peers).
//
// In a source checkout (Cargo.toml beside benchmark/):
//   results   benchmark/results, or --out
//   venv      benchmark/.venv (numpy, for the exact suite's BLAS baseline)
//   peers     benchmark/peers/node_modules, installed from benchmark/peers/package.json and its
//             lock by `npm run bench` (--install-peers)
// From an installed package (node_modules/vecdex), everything goes to the output folder: --out,
// else ./vecdex-results in the folder the command runs from:
//   results   <out>
//   venv      <out>/.venv
//   peers     <out>/peers/node_modules (vecdex bench --install-peers), or wherever the project
//             the command runs in has them installed
// Never inside the package's own folder: a package manager may replace or share it, and a
// read-only install must still run the benchmark. (Dataset caches: datasets.mjs, cacheDir.)
//
// Peers are never dependencies of vecdex or of the repository root: a missing one is skipped by
// the benchmark with a message that says how to install it.

import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export const benchDir = path.dirname(fileURLToPath(import.meta.url))
/** The folder holding package.json: the repository, or node_modules/vecdex once installed. */
export const packageRoot = path.resolve(benchDir, '..')
export const sourceCheckout = fs.existsSync(path.join(packageRoot, 'Cargo.toml'))
/** The folder the command was started in (run.mjs later moves a source checkout's run to its root). */
const startDir = process.cwd()
/** The peers' manifest and lock, shipped with the package so an installed copy pins the same versions. */
const PEER_SOURCE = path.join(benchDir, 'peers')
const ON_DEMAND = 'on-demand'

/**
 * @typedef {object} Workspace
 * @property {string} results  result files (JSON, markdown, plots)
 * @property {string} venv     the Python venv with numpy
 * @property {string} peers    a folder with the peers' package.json; they live in its node_modules
 */

/**
 * The folders a run writes to, for `--out` (relative to the folder the command ran in).
 * @param {string | undefined} out
 * @returns {Workspace}
 */
export function resolveWorkspace(out) {
  if (sourceCheckout) {
    return {
      results: out ? path.resolve(startDir, out) : path.join(benchDir, 'results'),
      venv: path.join(benchDir, '.venv'),
      peers: PEER_SOURCE,
    }
  }
  const root = path.resolve(startDir, out ?? 'vecdex-results')
  return { results: root, venv: path.join(root, '.venv'), peers: path.join(root, 'peers') }
}

let current = resolveWorkspace(undefined)

/** Sets the workspace for this run (run.mjs, after reading --out). */
export function useWorkspace(out) {
  current = resolveWorkspace(out)
  return current
}

/** The workspace of this run. */
export function workspace() {
  return current
}

/** Peer names and their pinned versions, from benchmark/peers/package.json. */
export function peerVersions() {
  const manifest = JSON.parse(fs.readFileSync(path.join(PEER_SOURCE, 'package.json'), 'utf8'))
  return /** @type {Record<string, string>} */ (manifest.optionalDependencies ?? {})
}

/**
 * The folder whose node_modules holds `name`, or null. The checkout looks in
 * benchmark/peers/node_modules only, so a peer left in the root's node_modules is never used by
 * mistake; an installed package looks in its peer folder, then up from the folder the command
 * runs in, as Node would for the user's own project.
 */
function peerHome(name) {
  const holds = (dir) => fs.existsSync(path.join(dir, 'node_modules', ...name.split('/'), 'package.json'))
  for (const dir of [current.peers, path.join(current.peers, ON_DEMAND)]) if (holds(dir)) return dir
  if (sourceCheckout) return null
  for (let dir = startDir; ; dir = path.dirname(dir)) {
    if (holds(dir) && !path.join(dir, 'node_modules').startsWith(path.join(packageRoot, 'node_modules'))) return dir
    if (path.dirname(dir) === dir) return null
  }
}

/** How to get a missing peer, for skip messages. */
export function installHint(name) {
  const version = peerVersions()[name]
  const spec = version ? `${name}@${version}` : name
  return sourceCheckout
    ? `npm run bench installs the peers into benchmark/peers (or: npm ci --prefix benchmark/peers)`
    : `vecdex bench --install-peers installs the peers into ${current.peers} (or: npm install ${spec} in this project)`
}

/**
 * Loads a peer package.
 * @param {string} name package name
 * @returns {{ module: any, version: string | null, error?: undefined } | { error: string, module?: undefined }}
 */
export function loadPeer(name) {
  const home = peerHome(name)
  if (!home) return { error: `${name} is not installed (benchmark peer; ${installHint(name)})` }
  try {
    const require = createRequire(path.join(home, 'noop.js'))
    return { module: require(name), version: peerVersion(name) }
  } catch (error) {
    return { error: `cannot load ${name} (benchmark peer): ${String(error?.message ?? error).split('\n')[0]}` }
  }
}

/** Version of an installed peer (its package.json), or null when it is not installed. */
export function peerVersion(name) {
  const home = peerHome(name)
  if (!home) return null
  try {
    return JSON.parse(fs.readFileSync(path.join(home, 'node_modules', ...name.split('/'), 'package.json'), 'utf8')).version ?? null
  } catch {
    return null
  }
}

/**
 * The folder for peers installed on demand outside the pinned set (faiss-node): `<peers>/on-demand`,
 * given a package.json of its own so that npm installs there and touches nothing else.
 */
export function onDemandPeerDir() {
  const dir = path.join(current.peers, ON_DEMAND)
  fs.mkdirSync(dir, { recursive: true })
  const manifest = path.join(dir, 'package.json')
  if (!fs.existsSync(manifest)) fs.writeFileSync(manifest, `${JSON.stringify({ name: 'vecdex-benchmark-on-demand', private: true }, null, 2)}\n`)
  return dir
}

/** `npm` as a command: the npm running us (npm run bench), else the one on PATH. */
function npmCommand() {
  const execPath = process.env.npm_execpath
  if (execPath && /npm-cli\.[cm]?js$/.test(execPath)) return { command: process.execPath, args: [execPath], shell: false }
  return { command: 'npm', args: [], shell: process.platform === 'win32' }
}

/**
 * Runs npm in `cwd`; resolves { code, output } (output: its last lines). Never throws.
 * @param {string[]} args
 * @param {{ cwd: string, timeoutMs: number }} options
 */
export function runNpm(args, { cwd, timeoutMs }) {
  const { command, args: prefix, shell } = npmCommand()
  return new Promise((resolve) => {
    const child = spawn(command, [...prefix, ...args], { cwd, shell, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (d) => (output = (output + d).slice(-8192))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ code: -1, output: String(error.message) })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, output })
    })
  })
}

/**
 * Installs the pinned peers (benchmark/peers/package.json and its lock) into the workspace's peer
 * folder with npm, each optional, then logs which loaded and which are missing. Never throws: a
 * peer that fails to install is skipped by the suites.
 * @param {(msg: string) => void} log
 */
export async function installPeers(log) {
  const dir = current.peers
  if (dir !== PEER_SOURCE) {
    fs.mkdirSync(dir, { recursive: true })
    for (const file of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(PEER_SOURCE, file), path.join(dir, file))
  }
  log(`installing the benchmark peers into ${path.relative(startDir, dir) || '.'} (npm install; each one optional)…`)
  // --no-save: install what the lock pins and never rewrite the manifest or the lock.
  const result = await runNpm(['install', '--no-save', '--no-audit', '--no-fund'], { cwd: dir, timeoutMs: 15 * 60_000 })
  if (result.code !== 0) {
    log(`npm install failed (exit ${result.code}): ${result.output.trim().split('\n').slice(-2).join(' | ')}`)
  }
  const lines = Object.keys(peerVersions()).map((name) => {
    const version = peerVersion(name)
    return version ? `${name} ${version}` : `${name} missing`
  })
  log(`benchmark peers: ${lines.join(', ')}`)
}
