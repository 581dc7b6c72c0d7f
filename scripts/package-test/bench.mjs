// `vecdex bench` from the installed package writes to the folder it runs in (or --out), never
// inside node_modules/vecdex: its --help names where this run would put results, the Python venv
// and peer installs, and a tiny real run (the ann suite, vecdex alone, 1,000 × 16 vectors)
// writes its results there and leaves every file of the installed package as it was.

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'

/** path → size and mtime of every file under `dir`. */
function snapshot(dir, prefix = '') {
  const files = new Map()
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const stat = statSync(path)
    if (stat.isDirectory()) for (const [k, v] of snapshot(path, `${prefix}${name}/`)) files.set(k, v)
    else files.set(`${prefix}${name}`, `${stat.size}:${stat.mtimeMs}`)
  }
  return files
}

/**
 * @param {{ project: string, env: object, isWindows: boolean, ok: Function, fail: Function }} t
 */
export function checkBench({ project, env, isWindows, ok, fail }) {
  const installed = realpathSync(join(project, 'node_modules', 'vecdex'))
  const shim = join(project, 'node_modules', '.bin', isWindows ? 'vecdex.cmd' : 'vecdex')
  const vecdex = (args, timeout) => {
    const result = spawnSync(shim, args, { cwd: project, env, encoding: 'utf8', timeout, shell: isWindows })
    if (result.error) fail(`vecdex ${args.join(' ')}: ${result.error.message}`)
    if (result.status !== 0) fail(`vecdex ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`)
    return result
  }
  const before = snapshot(installed)

  // 1. Where it would write: each folder --help names lies in the project, none in the package.
  const help = vecdex(['bench', '--help', '--out', 'bench-out'], 60_000).stdout
  const places = Object.fromEntries([...help.matchAll(/^ {2}(results|venv|peers|cache) +(\S.*?)(?: {3}\(.*)?$/gm)].map((m) => [m[1], m[2].trim()]))
  for (const what of ['results', 'venv', 'peers']) {
    const place = places[what]
    if (!place) fail(`vecdex bench --help does not say where it writes its ${what}:\n${help}`)
    const inside = (dir) => place === dir || place.startsWith(dir + sep)
    if (inside(installed) || inside(join(project, 'node_modules'))) fail(`vecdex bench would write its ${what} inside the installed package: ${place}`)
    if (!inside(realpathSync(project))) fail(`vecdex bench would write its ${what} outside the folder it runs in and --out: ${place}`)
  }
  ok(`vecdex bench --help --out bench-out: results, venv and peers in ${relative(project, places.results) || '.'}, ${relative(project, places.venv)}, ${relative(project, places.peers)}; cache ${places.cache}`)

  // 2. A real run, small enough for CI: results land in --out; the package is untouched.
  const args = ['bench', '--suite', 'ann', '--dataset', 'clustered-1k-16', '--peers', 'vecdex', '--queries', '10', '--k', '5', '--runs', '1', '--ef', '16', '--threads', '1', '--out', 'bench-out']
  const run = vecdex(args, 180_000)
  const out = join(project, 'bench-out')
  const written = existsSync(out) ? readdirSync(out) : []
  for (const ext of ['.json', '.md', '.svg']) {
    if (!written.some((f) => f.endsWith(ext))) fail(`vecdex ${args.join(' ')} wrote no ${ext} into bench-out (it has ${written.join(', ') || 'nothing'}):\n${run.stderr}`)
  }
  const after = snapshot(installed)
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((f) => before.get(f) !== after.get(f))
  if (changed.length > 0) fail(`vecdex bench changed files inside node_modules/vecdex: ${changed.join(', ')}`)
  ok(`vecdex ${args.join(' ')}: wrote ${written.sort().join(', ')} to bench-out/; node_modules/vecdex unchanged (${after.size} files)`)
}
