// engines.node of the installed packages against what their code needs: the newest Node version
// among the features the shipped JavaScript uses. Each feature names where its version comes
// from; add one when the code starts to use something newer than the engines field allows.
//
// vecdex's runtime dependencies declare engines of their own: each must admit every Node version
// vecdex's engines.node admits, or be a package vecdex never loads. Those that do not admit them
// all are returned, and the server check (serve.mjs) fails if the running server loads one.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Node features the package may use, the first Node 20 release that has each, and the source. */
export const NODE_FEATURES = [
  {
    feature: 'Symbol.dispose (every index, KeyFilter and abort handle is disposable; `using`)',
    since: '20.4.0',
    pattern: /\bSymbol\.dispose\b/,
    source: 'Node.js 20.4.0 changelog, "Support to the explicit resource management proposal" (nodejs/node#48518): Symbol.dispose and Symbol.asyncDispose',
  },
  {
    feature: 'util.parseArgs (the vecdex command)',
    since: '20.0.0',
    pattern: /\bparseArgs\b/,
    source: 'util.parseArgs with default values from 18.11.0, no longer experimental in 20.0.0 (nodejs/node#46718)',
  },
]

const compare = (a, b) => {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i]
  return 0
}

/** JavaScript files of an installed package (not node_modules). */
function scripts(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : scripts(path)
    return /\.(c|m)?js$/.test(name) ? [path] : []
  })
}

/**
 * @param {{ project: string, platformName: string, dependencies: { name: string, version: string, dir: string, chain: string[] }[],
 *   semver: object, ok: Function, fail: Function }} t
 *   dependencies: the installed production closure (dependencies.mjs); semver: npm's copy
 * @returns the dependencies whose engines.node leaves out part of vecdex's range
 */
export function checkEngines({ project, platformName, dependencies, semver, ok, fail }) {
  const dir = join(project, 'node_modules', 'vecdex')
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const range = manifest.engines?.node
  const floor = /^>=\s*(\d+\.\d+\.\d+)$/.exec(range ?? '')?.[1]
  if (!floor) fail(`engines.node of the installed vecdex is ${JSON.stringify(range)}, not ">=x.y.z"`)

  const code = scripts(dir).map((f) => readFileSync(f, 'utf8'))
  const used = NODE_FEATURES.filter((f) => code.some((text) => f.pattern.test(text)))
  const needed = used.reduce((max, f) => (compare(f.since, max) > 0 ? f.since : max), '20.0.0')
  const driver = used.find((f) => f.since === needed)
  if (compare(floor, needed) < 0) fail(`engines.node is ${range}, but the code uses ${driver.feature}, which Node has from ${needed} (${driver.source})`)
  if (compare(floor, needed) > 0) fail(`engines.node is ${range}, but nothing the code uses needs more than ${needed}: lower it, or add the feature that needs it to NODE_FEATURES`)

  const platform = JSON.parse(readFileSync(join(project, 'node_modules', platformName, 'package.json'), 'utf8'))
  if (platform.engines?.node !== range) fail(`${platformName} has engines.node ${JSON.stringify(platform.engines?.node)}, vecdex ${JSON.stringify(range)}`)
  if (compare(process.versions.node, floor) < 0) fail(`this Node (${process.version}) is older than engines.node ${range}`)
  ok(`engines.node ${range} in vecdex and ${platformName}: the code needs ${needed} (${driver ? driver.feature : 'Node 20'}; ${driver?.source ?? ''})`)

  // Each dependency's engines.node against vecdex's: is every Node >= floor one it accepts?
  const narrower = []
  let declaring = 0
  for (const dep of dependencies) {
    const depRange = JSON.parse(readFileSync(join(dep.dir, 'package.json'), 'utf8')).engines?.node
    if (depRange === undefined) continue
    declaring++
    if (!semver.validRange(depRange)) fail(`engines: ${dep.name}@${dep.version} declares engines.node ${JSON.stringify(depRange)}, which is no semver range`)
    if (!semver.subset(`>=${floor}`, depRange)) narrower.push({ ...dep, range: depRange })
  }
  const listed = narrower.map((d) => `${d.name}@${d.version} (${d.chain.join(' > ')}) needs ${d.range}`)
  ok(`engines.node of the ${dependencies.length} dependencies: ${declaring - narrower.length} of the ${declaring} that declare one admit every Node ${range}${listed.length ? `; ${listed.join(', ')}: vecdex must not load ${narrower.length === 1 ? 'it' : 'them'} (checked by the server test)` : ''}`)
  return narrower
}
