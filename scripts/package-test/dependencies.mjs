// vecdex's runtime dependencies in the package test. The consumer project installs offline from a
// dead registry, so vecdex's `dependencies` (fastify, prom-client and what they pull in) must come
// from the repository and nowhere else:
//
//   closure   the production dependency closure, walked in the repository's package-lock.json
//             from the root's `dependencies` (each package's dependencies, optional dependencies
//             and non-optional peers, resolved as Node would through nested node_modules). It
//             must be exactly the set the lock does not mark dev, and each package in the
//             repository's node_modules must be the version the lock names.
//   pack      each of them packed from the repository's node_modules (`npm pack <dir>...`, one
//             call, no scripts, no network) into a folder of the test.
//   lock      the consumer project gets a package-lock.json pinning exactly those packages, at the
//             places the repository's lock puts them, to the packed tarballs (`resolved: file:`).
//             `npm install <vecdex tarballs>` then finds every dependency of vecdex already in
//             the tree: an edge the pinned version does not satisfy makes npm ask the dead
//             registry and fail (ENOTCACHED); a pinned package nothing needs is pruned. The
//             lock is needed, not just the tarballs as extra install arguments: the closure holds
//             two versions of fast-uri (one nested under ajv), and a project's package.json can
//             name a package only once.
//   check     after the install: node_modules holds exactly vecdex, the platform package and the
//             closure (so none of vecdex's devDependencies), each dependency vecdex declares
//             resolves to a version within its range, and `npm ls --all` finds no invalid,
//             missing or extraneous package.

import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))
const nameAt = (path) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)
const toPosix = (path) => path.split('\\').join('/')

/** Where Node would find `name` required from the lock entry at `from` ('' is the root). */
function resolveInLock(packages, from, name) {
  let dir = from
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`
    if (packages[candidate]) return candidate
    if (!dir) return null
    const cut = dir.lastIndexOf('/node_modules/')
    dir = cut < 0 ? '' : dir.slice(0, cut)
  }
}

/** npm's own semver (bundled with npm), so the test needs nothing the repository may lack. */
export function npmSemver(npmCli) {
  return createRequire(npmCli)('semver')
}

/**
 * The production closure of the repository: [{ path, name, version, entry }] sorted by path, where
 * path is the lock's key (node_modules/a or node_modules/a/node_modules/b).
 */
export function productionClosure(root, fail) {
  const lock = readJson(join(root, 'package-lock.json'))
  const packages = lock.packages
  if (lock.lockfileVersion < 2 || !packages?.['']) fail('dependencies: package-lock.json has no "packages" section (lockfileVersion 2 or 3)')
  const manifest = readJson(join(root, 'package.json'))
  const sorted = (deps) => JSON.stringify(Object.entries(deps ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
  if (sorted(packages[''].dependencies) !== sorted(manifest.dependencies)) {
    fail(`dependencies: package-lock.json lists ${JSON.stringify(packages[''].dependencies ?? {})} as the root's dependencies, package.json ${JSON.stringify(manifest.dependencies ?? {})}: run npm install`)
  }

  const closure = new Map()
  const queue = [{ from: '', edges: Object.entries(manifest.dependencies ?? {}), via: [] }]
  while (queue.length > 0) {
    const { from, edges, via } = queue.shift()
    for (const [name] of edges) {
      const path = resolveInLock(packages, from, name)
      if (!path) fail(`dependencies: package-lock.json has no ${name} for ${from || 'the root'}: run npm install`)
      if (closure.has(path)) continue
      const entry = packages[path]
      if (entry.link) fail(`dependencies: ${path} is a link in package-lock.json; a published dependency cannot be`)
      // The lock flags a package dev (or devOptional) when only development reaches it: if
      // vecdex's dependencies reach it, the lock is stale.
      if (entry.dev || entry.devOptional) fail(`dependencies: package-lock.json marks ${path} dev-only, but ${[...via, name].join(' > ')} needs it: run npm install`)
      const chain = [...via, name]
      closure.set(path, { path, name, version: entry.version, entry, chain })
      const peers = Object.entries(entry.peerDependencies ?? {}).filter(([peer]) => !entry.peerDependenciesMeta?.[peer]?.optional)
      queue.push({ from: path, edges: [...Object.entries(entry.dependencies ?? {}), ...Object.entries(entry.optionalDependencies ?? {}), ...peers], via: chain })
    }
  }

  // npm's own view, from the same lock: every package not marked dev belongs to production.
  const notDev = Object.keys(packages).filter((path) => path !== '' && !packages[path].dev && !packages[path].devOptional && !packages[path].link)
  const unreached = notDev.filter((path) => !closure.has(path))
  if (unreached.length > 0) fail(`dependencies: package-lock.json marks ${unreached.join(', ')} as production packages, but vecdex's dependencies do not reach them: run npm install`)

  // What will be packed is the repository's node_modules: it must be the lock's versions.
  const drift = []
  for (const { path, name, version } of closure.values()) {
    const file = join(root, path, 'package.json')
    const found = existsSync(file) ? readJson(file) : null
    if (!found || found.name !== name || found.version !== version) drift.push(`${path} is ${found ? `${found.name}@${found.version}` : 'missing'}, the lock says ${name}@${version}`)
  }
  if (drift.length > 0) fail(`dependencies: node_modules is not what package-lock.json says (run npm ci):\n  ${drift.join('\n  ')}`)
  return [...closure.values()].sort((a, b) => (a.path < b.path ? -1 : 1))
}

/**
 * Packs each name@version of the closure from the repository's node_modules into `outDir`, with
 * one `npm pack` in the test's offline environment. Returns name@version → { file, integrity }.
 */
export function packClosure({ root, closure, outDir, node, npmCli, env, fail }) {
  mkdirSync(outDir, { recursive: true })
  const unique = new Map()
  for (const dep of closure) if (!unique.has(`${dep.name}@${dep.version}`)) unique.set(`${dep.name}@${dep.version}`, dep)
  const dirs = [...unique.values()].map((dep) => join(root, dep.path))
  // `npm pack` without a folder would pack the folder it runs in.
  if (dirs.length === 0) return new Map()
  const result = spawnSync(node, [npmCli, 'pack', '--json', '--ignore-scripts', '--pack-destination', outDir, ...dirs], {
    cwd: outDir,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  })
  if (result.status !== 0) fail(`dependencies: npm pack of ${dirs.length} packages exited with ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`)
  const listed = JSON.parse(result.stdout.slice(result.stdout.indexOf('[')))
  const packed = new Map()
  const files = new Set()
  for (const info of listed) {
    const key = `${info.name}@${info.version}`
    if (!unique.has(key)) fail(`dependencies: npm pack produced ${key}, which is not in the closure`)
    if (files.has(info.filename)) fail(`dependencies: two packages packed to the same file name ${info.filename}`)
    files.add(info.filename)
    packed.set(key, { file: join(outDir, info.filename), integrity: info.integrity })
  }
  const missing = [...unique.keys()].filter((key) => !packed.has(key))
  if (missing.length > 0) fail(`dependencies: npm pack did not pack ${missing.join(', ')}`)
  return packed
}

/**
 * Writes `project`/package-lock.json: the closure at the repository lock's places, each resolved
 * to its packed tarball (relative, as npm writes file: paths), with its packed integrity.
 */
export function writeConsumerLock({ project, closure, packed }) {
  const manifest = readJson(join(project, 'package.json'))
  const packages = { '': { name: manifest.name, version: manifest.version } }
  for (const dep of closure) {
    const { file, integrity } = packed.get(`${dep.name}@${dep.version}`)
    // The repository's lock entry: dependencies, engines, bin, os/cpu... as the registry gave
    // them; `dev`, `devOptional` and `peer` describe the repository's tree, not the consumer's.
    const { dev, devOptional, peer, resolved, integrity: registryIntegrity, funding, ...entry } = dep.entry
    packages[dep.path] = { ...entry, resolved: `file:${toPosix(relative(project, file))}`, integrity }
  }
  const lock = { name: manifest.name, version: manifest.version, lockfileVersion: 3, requires: true, packages }
  writeFileSync(join(project, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`)
}

/** Every package installed under `dir`/node_modules, nested ones included: [{ path, name, version }]. */
export function installedPackages(dir, prefix = '') {
  const modules = join(dir, 'node_modules')
  if (!existsSync(modules)) return []
  const found = []
  const visit = (folder, rel) => {
    const manifest = join(folder, 'package.json')
    if (!existsSync(manifest)) return
    const { name, version } = readJson(manifest)
    found.push({ path: rel, name, version })
    found.push(...installedPackages(folder, `${rel}/`))
  }
  for (const name of readdirSync(modules)) {
    if (name.startsWith('.')) continue
    if (name.startsWith('@')) {
      for (const scoped of readdirSync(join(modules, name))) visit(join(modules, name, scoped), `${prefix}node_modules/${name}/${scoped}`)
    } else visit(join(modules, name), `${prefix}node_modules/${name}`)
  }
  return found
}

/**
 * After the install: exactly vecdex, `platformName` and the closure; vecdex's declared ranges met;
 * `npm ls --all` clean. Returns the installed closure packages with their folders.
 */
export function checkInstalledDependencies({ root, project, platformName, closure, node, npmCli, env, ok, fail }) {
  const semver = npmSemver(npmCli)
  const installed = installedPackages(project)
  const key = (p) => `${p.path} ${p.name}@${p.version}`
  const expected = [
    { path: 'node_modules/vecdex', name: 'vecdex', version: readJson(join(project, 'node_modules', 'vecdex', 'package.json')).version },
    { path: `node_modules/${platformName}`, name: platformName, version: readJson(join(project, 'node_modules', platformName, 'package.json')).version },
    ...closure,
  ].map(key)
  const have = installed.map(key)
  const extra = have.filter((k) => !expected.includes(k))
  const missing = expected.filter((k) => !have.includes(k))
  const devNames = Object.keys(readJson(join(root, 'package.json')).devDependencies ?? {})
  const devInstalled = installed.filter((p) => devNames.includes(p.name)).map((p) => p.path)
  if (devInstalled.length > 0) fail(`dependencies: devDependencies of vecdex were installed: ${devInstalled.join(', ')}`)
  if (extra.length > 0 || missing.length > 0) {
    fail(`dependencies: node_modules is not vecdex, ${platformName} and the production closure:${extra.length ? `\n  unexpected: ${extra.join(', ')}` : ''}${missing.length ? `\n  missing: ${missing.join(', ')}` : ''}`)
  }

  // Each dependency vecdex declares, found from vecdex's folder as Node would, within its range.
  const manifest = readJson(join(project, 'node_modules', 'vecdex', 'package.json'))
  const declared = Object.entries(manifest.dependencies ?? {})
  if (declared.length === 0) fail('dependencies: the installed vecdex declares no dependencies (the server needs fastify and prom-client)')
  const met = []
  for (const [name, range] of declared) {
    const dir = [join(project, 'node_modules', 'vecdex', 'node_modules', name), join(project, 'node_modules', name)].find((d) => existsSync(join(d, 'package.json')))
    if (!dir) fail(`dependencies: vecdex depends on ${name} ${range}, which is not installed`)
    const { version } = readJson(join(dir, 'package.json'))
    if (!semver.satisfies(version, range)) fail(`dependencies: vecdex depends on ${name} ${range}, but ${version} is installed`)
    met.push(`${name} ${version} (${range})`)
  }

  // npm's own audit of the tree: every edge valid, nothing missing, nothing extraneous.
  const ls = spawnSync(node, [npmCli, 'ls', '--all', '--json'], { cwd: project, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 })
  let problems = []
  try {
    problems = JSON.parse(ls.stdout).problems ?? []
  } catch {
    problems = [`unreadable output: ${ls.stdout.slice(0, 200)}${ls.stderr}`]
  }
  if (ls.status !== 0 || problems.length > 0) fail(`dependencies: npm ls --all in the consumer project exited with ${ls.status}:\n  ${problems.join('\n  ')}`)

  const closureNames = new Set(closure.map((d) => d.name))
  ok(`dependencies: ${met.join(', ')}; with ${closure.length} packages (${closureNames.size} names) of the production closure and none of vecdex's ${devNames.length} devDependencies (${devNames.slice(0, 4).join(', ')}, ...); npm ls --all: no problem`)
  return closure.map((dep) => ({ ...dep, dir: join(project, dep.path) }))
}
