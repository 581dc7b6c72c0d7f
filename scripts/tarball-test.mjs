#!/usr/bin/env node
// Proof that the published packages work without Rust and without the network, and can be
// published: packs the tarballs (scripts/pack.mjs --strict), installs them into an empty project
// with npm offline (a registry that refuses connections, an empty cache), on a PATH that holds
// node and nothing else (so no cargo, rustc or rustup could build anything), with vecdex's
// runtime dependencies packed from the repository's node_modules and pinned by the project's
// lock (package-test/dependencies.mjs: exactly the production closure of package-lock.json), then
//   - checks that the install holds vecdex, its platform package and that closure, nothing else
//     (no devDependencies), with vecdex's declared ranges met and `npm ls --all` clean;
//   - uses vecdex from that project through require() and import: HNSW and exact indexes,
//     search, save and load; checks that the binary came from the platform package, that the
//     user's manifest carries no benchmark peers, and that the vecdex command runs;
//   - checks engines.node against what the code needs, and against what each runtime
//     dependency declares (package-test/engines.mjs);
//   - runs `vecdex serve` from the install (start, /health, a search, /metrics, SIGTERM with a
//     save) and `vecdex/serve` through require() and import, and checks the server loads no
//     dependency whose engines leave out part of vecdex's (package-test/serve.mjs);
//   - type-checks a strict consumer project, ESM and CJS, with positive uses and rejected
//     mistakes (package-test/types.mjs);
//   - runs and type-checks the adapter subpaths vecdex/langchain and vecdex/llamaindex through
//     require() and import, with their optional peers linked from the repository
//     (package-test/adapters.mjs);
//   - runs `vecdex bench` from the install and checks it writes nothing inside it
//     (package-test/bench.mjs);
//   - runs `npm publish --dry-run` of both tarballs and checks their file lists, and checks that
//     the prepublishOnly guard refuses a publish from the repository (package-test/publish.mjs);
//   - checks that each platform package's os/cpu/libc fields select exactly its own platform.
//
// Usage: node scripts/tarball-test.mjs [--verbose]   (npm run test:package; --verbose lists
// every published file)
// Needs the built addon for this host (npm run build) and dist/ (npm run build:ts).

import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkAdapters } from './package-test/adapters.mjs'
import { checkBench } from './package-test/bench.mjs'
import { checkInstalledDependencies, npmSemver, packClosure, productionClosure, writeConsumerLock } from './package-test/dependencies.mjs'
import { checkEngines } from './package-test/engines.mjs'
import { checkGuardRefuses, checkPublishDryRun } from './package-test/publish.mjs'
import { checkServe } from './package-test/serve.mjs'
import { checkTypes } from './package-test/types.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const isWindows = process.platform === 'win32'
const started = Date.now()
const REGISTRY = 'http://127.0.0.1:9/' // the discard port: nothing listens, connections fail fast
const verbose = process.argv.includes('--verbose')

class TestFailure extends Error {}
const fail = (message) => {
  throw new TestFailure(message)
}
const ok = (message) => console.log(`  ok    ${message}`)
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))

function run(label, command, args, options) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options })
  if (result.error) fail(`${label}: ${result.error.message}`)
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim()
    fail(`${label} exited with ${result.status ?? result.signal}:\n${output}`)
  }
  return result
}

// npm's own entry script, run with node directly so that npm need not be on the test's PATH.
function findNpmCli() {
  const candidates = []
  const execPath = process.env.npm_execpath
  if (execPath && /\.[cm]?js$/.test(execPath)) candidates.push(execPath)
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || isWindows) continue
    const npm = join(dir, 'npm')
    if (existsSync(npm)) candidates.push(realpathSync(npm))
  }
  const nodeDir = dirname(process.execPath)
  candidates.push(join(nodeDir, 'node_modules', 'npm', 'bin', 'npm-cli.js'))
  candidates.push(join(nodeDir, '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'))
  const found = candidates.find((path) => /npm-cli\.js$/.test(path) && existsSync(path))
  if (!found) fail(`could not find npm-cli.js (looked at ${candidates.join(', ')})`)
  return found
}

// An environment built from nothing: a PATH of node alone, a fresh HOME, npm offline against a
// dead registry with an empty cache and no user or global npmrc. Nothing from this shell leaks
// in (no CARGO_HOME, NODE_PATH, npm_config_*).
function isolatedEnv(tmp) {
  const home = join(tmp, 'home')
  const cache = join(tmp, 'npm-cache')
  const userrc = join(tmp, 'user.npmrc')
  const globalrc = join(tmp, 'global.npmrc')
  mkdirSync(home)
  mkdirSync(cache)
  writeFileSync(userrc, '')
  writeFileSync(globalrc, '')
  let path
  if (isWindows) {
    // Symlinks need privileges on Windows: use node's own directory and System32 (for cmd.exe).
    const system32 = join(process.env.SystemRoot ?? 'C:\\Windows', 'System32')
    path = [dirname(process.execPath), system32].join(delimiter)
  } else {
    const bin = join(tmp, 'bin')
    mkdirSync(bin)
    symlinkSync(process.execPath, join(bin, 'node'))
    path = bin
  }
  const env = {
    PATH: path,
    HOME: home,
    TMPDIR: tmp,
    npm_config_cache: cache,
    npm_config_userconfig: userrc,
    npm_config_globalconfig: globalrc,
    npm_config_registry: REGISTRY,
    npm_config_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  }
  if (isWindows) {
    for (const name of ['SystemRoot', 'windir', 'ComSpec', 'PATHEXT']) {
      if (process.env[name]) env[name] = process.env[name]
    }
    Object.assign(env, { USERPROFILE: home, TEMP: tmp, TMP: tmp })
  }
  return env
}

// Nothing that could compile Rust is reachable on that PATH.
function checkNoRust(env) {
  const exts = isWindows ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').concat('') : ['']
  for (const dir of env.PATH.split(delimiter)) {
    for (const tool of ['cargo', 'rustc', 'rustup']) {
      for (const ext of exts) {
        if (existsSync(join(dir, tool + ext.toLowerCase()))) fail(`${tool} is reachable on the test PATH in ${dir}`)
      }
    }
  }
  ok(`PATH=${env.PATH}: node only, no cargo, rustc or rustup; npm offline, registry ${REGISTRY}, empty cache`)
}

// The smoke test, written into the temporary project: one check shared by a CommonJS and an ES
// module entry. Keys 0..n-1, a fixed pseudo-random data set so a failure reproduces.
const SMOKE_CHECK = String.raw`'use strict'
const fs = require('node:fs')
const path = require('node:path')

const expectedPackage = process.env.VECDEX_EXPECT_PACKAGE

function assert(condition, message) {
  if (!condition) throw new Error(message)
}

// The addon this process actually loaded (dlopen), from Node's diagnostic report.
function loadedBinaries() {
  process.report.excludeNetwork = true
  return process.report.getReport().sharedObjects.filter((p) => /vecdex\.[\w-]+\.node$/.test(p))
}

function sameResults(a, b, what) {
  assert(a.keys.length === b.keys.length, what + ': result sizes differ')
  for (let i = 0; i < a.keys.length; i++) {
    assert(a.keys[i] === b.keys[i] && Object.is(a.distances[i], b.distances[i]), what + ': results differ at ' + i)
  }
  for (let i = 0; i < a.counts.length; i++) assert(a.counts[i] === b.counts[i], what + ': counts differ')
}

// Real, long-form paths (Windows may report 8.3 short names), case-folded where the file
// system is case-insensitive, so that two spellings of one file compare equal.
function canonical(p) {
  const real = fs.realpathSync.native(p)
  return process.platform === 'win32' || process.platform === 'darwin' ? real.toLowerCase() : real
}

module.exports = async function check(vecdex, label, resolvedEntry) {
  const project = process.cwd()
  const rel = (p) => path.relative(canonical(project), canonical(p)).split(path.sep).join('/')
  const lines = []

  assert(rel(resolvedEntry).startsWith('node_modules/vecdex/dist/'), label + ": 'vecdex' resolved to " + resolvedEntry)
  const binaries = loadedBinaries()
  assert(binaries.length === 1, label + ': expected one vecdex addon loaded, found ' + JSON.stringify(binaries))
  const binary = rel(binaries[0])
  assert(binary.startsWith('node_modules/' + expectedPackage + '/'), label + ': addon loaded from ' + binary + ', not from ' + expectedPackage)
  const beside = fs.readdirSync(path.join(project, 'node_modules', 'vecdex')).filter((f) => f.endsWith('.node'))
  assert(beside.length === 0, label + ': the main package ships a binary: ' + beside.join(', '))
  lines.push("'vecdex' is " + rel(resolvedEntry) + ', addon ' + binary)

  const n = 2000
  const d = 32
  const q = 200
  let seed = 0x2545f491
  const random = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 4294967296 - 0.5
  }
  const vectors = new Float32Array(n * d).map(random)
  const keys = Uint32Array.from({ length: n }, (_, i) => i)
  const queries = vectors.slice(0, q * d)

  const kinds = [
    ['HnswIndex', () => new vecdex.HnswIndex({ dimensions: d, metric: 'l2sq', m: 16, efConstruction: 100 }), { k: 10, efSearch: 128 }, 0.99],
    ['FlatIndex', () => new vecdex.FlatIndex({ dimensions: d, metric: 'l2sq' }), { k: 10 }, 1],
  ]
  for (const [name, create, options, minSelf] of kinds) {
    const index = create()
    await index.add(keys, vectors)
    assert(index.size === n, name + ': size ' + index.size + ' after adding ' + n)
    const before = await index.searchBatch(queries, options)
    let self = 0
    for (let i = 0; i < q; i++) {
      const hit = before.get(i)
      if (hit.keys[0] === BigInt(i) && hit.distances[0] === 0) self++
    }
    assert(self / q >= minSelf, label + ' ' + name + ': self-query top-1 ' + self + '/' + q)
    const one = index.searchSync(vectors.subarray(7 * d, 8 * d), { k: 1 })
    assert(one.get(0).keys[0] === 7n, label + ' ' + name + ': searchSync of vector 7 gave ' + one.get(0).keys[0])

    const file = path.join(project, label + '-' + name + '.vecdex')
    await index.save(file)
    const loaded = await vecdex[name].load(file)
    const after = await loaded.searchBatch(queries, options)
    sameResults(before, after, label + ' ' + name + ' after load')
    index.close()
    loaded.close()
    lines.push(name + ': ' + n + ' x ' + d + ', self top-1 ' + self + '/' + q + ', saved ' + fs.statSync(file).size + ' bytes, loaded, same results')
  }
  for (const line of lines) console.log(label + ': ' + line)
}
`

const SMOKE_CJS = `'use strict'
const vecdex = require('vecdex')
require('./check.cjs')(vecdex, 'require', require.resolve('vecdex')).catch((error) => {
  console.error(error.stack)
  process.exitCode = 1
})
`

const SMOKE_ESM = `import * as vecdex from 'vecdex'
import { fileURLToPath } from 'node:url'
import check from './check.cjs'
await check(vecdex, 'import', fileURLToPath(import.meta.resolve('vecdex')))
`

async function main() {
  console.log('tarball test: install the packed packages offline, without Rust, and use them')
  const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vecdex-tarball-test-')))
  const cleanup = () => rmSync(tmp, { recursive: true, force: true })
  const onSignal = (signal) => {
    cleanup()
    process.kill(process.pid, signal)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    // 1. Pack, with this shell's environment (pack.mjs runs npm pack, which needs nothing online).
    const packing = run('scripts/pack.mjs', process.execPath, [join(root, 'scripts', 'pack.mjs'), '--json', '--strict', '--out', join(tmp, 'pack')], {
      cwd: root,
    })
    for (const line of packing.stderr.trim().split('\n').filter(Boolean)) console.log(`        ${line}`)
    const packed = JSON.parse(packing.stdout)
    const platform = packed.tarballs.find((t) => t.kind === 'platform')
    const main = packed.tarballs.find((t) => t.kind === 'main')
    if (!platform || !main) fail('pack.mjs did not produce a platform and a main tarball')
    ok(`packed ${relative(tmp, platform.path)} and ${relative(tmp, main.path)}`)

    // 2. An empty project, installed offline on a PATH without Rust; vecdex's dependencies come
    // from the repository's node_modules, packed, and are pinned by the project's lock.
    const env = isolatedEnv(tmp)
    checkNoRust(env)
    const node = isWindows ? process.execPath : join(tmp, 'bin', 'node')
    const npmCli = findNpmCli()
    const closure = productionClosure(root, fail)
    const depsStarted = Date.now()
    const packedDeps = packClosure({ root, closure, outDir: join(tmp, 'deps'), node, npmCli, env, fail })
    ok(`dependencies: the production closure of package-lock.json, ${closure.length} packages, packed from node_modules into deps/ in ${Date.now() - depsStarted} ms`)
    const project = join(tmp, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'vecdex-tarball-test', version: '1.0.0', private: true }, null, 2)}\n`)
    writeConsumerLock({ project, closure, packed: packedDeps })
    const installStarted = Date.now()
    const install = run(
      'npm install',
      node,
      [npmCli, 'install', platform.path, main.path, '--offline', `--registry=${REGISTRY}`, '--no-audit', '--no-fund', '--no-update-notifier'],
      { cwd: project, env, timeout: 90_000 },
    )
    const npmSaid = `${install.stdout}${install.stderr}`.trim().split('\n').filter(Boolean)
    const summary = npmSaid.find((l) => /^(added|changed|up to date)\b/.test(l)) ?? npmSaid.at(-1) ?? ''
    ok(`npm install (offline) in ${Date.now() - installStarted} ms: ${summary}`)
    for (const line of npmSaid.filter((l) => /warn|err/i.test(l))) console.log(`        npm: ${line}`)

    // 3. What got installed: vecdex, this host's platform package and vecdex's dependencies,
    // nothing else. The other platform packages are optional dependencies that do not exist
    // offline; npm treats an optional dependency it cannot fetch as skipped, as it skips one
    // whose os/cpu/libc differ.
    const modules = join(project, 'node_modules')
    const expected = ['vecdex', platform.name].sort()
    const dependencies = checkInstalledDependencies({ root, project, platformName: platform.name, closure, node, npmCli, env, ok, fail })
    const manifest = readJson(join(modules, 'vecdex', 'package.json'))
    const optional = Object.keys(manifest.optionalDependencies ?? {})
    const others = optional.filter((name) => name !== platform.name)
    if (!optional.includes(platform.name)) fail(`vecdex's optionalDependencies lack ${platform.name}`)
    const wrongVersion = optional.filter((name) => manifest.optionalDependencies[name] !== manifest.version)
    if (wrongVersion.length > 0) fail(`optional dependencies not at ${manifest.version}: ${wrongVersion.join(', ')}`)
    const strays = optional.filter((name) => !name.startsWith('vecdex-'))
    if (strays.length > 0) fail(`the published manifest lists non-platform optional dependencies: ${strays.join(', ')}`)
    for (const field of ['devDependencies', 'allowScripts']) {
      if (manifest[field]) fail(`the published manifest has ${field}`)
    }
    // pack.mjs keeps install-time lifecycle scripts only (there are none today).
    const scripts = Object.keys(manifest.scripts ?? {}).filter((name) => !['preinstall', 'install', 'postinstall'].includes(name))
    if (scripts.length > 0) fail(`the published manifest has development scripts: ${scripts.join(', ')}`)
    ok(`installed ${expected.join(' + ')} and their dependencies; ${others.length} other platform packages skipped without error; no benchmark peers, devDependencies or scripts`)

    // 4. The smoke test, through require() and import, with the same bare environment.
    writeFileSync(join(project, 'check.cjs'), SMOKE_CHECK)
    writeFileSync(join(project, 'smoke.cjs'), SMOKE_CJS)
    writeFileSync(join(project, 'smoke.mjs'), SMOKE_ESM)
    const smokeEnv = { ...env, VECDEX_EXPECT_PACKAGE: platform.name }
    for (const entry of ['smoke.cjs', 'smoke.mjs']) {
      const smoke = run(`node ${entry}`, node, [entry], { cwd: project, env: smokeEnv, timeout: 90_000 })
      for (const line of smoke.stdout.trim().split('\n')) ok(line)
    }

    // 5. Without its platform package, vecdex fails to load with an error that names it.
    checkMissingBinary(tmp, main, platform, node, npmCli, env, closure, packedDeps)

    // 6. The CLI, once the package has one.
    checkBin(project, env, manifest)

    // 7. engines.node is what the shipped code needs, in both packages, and every dependency
    // that declares a narrower range is one the server must not load (7b).
    const narrower = checkEngines({ project, platformName: platform.name, dependencies, semver: npmSemver(npmCli), ok, fail })

    // 7b. vecdex serve and vecdex/serve from the install, on the installed dependencies.
    await checkServe({ project, node, env, isWindows, mustNotLoad: narrower, dependencies, ok, fail })

    // 8. The types, in strict consumer projects (ESM and CJS) beside the installed package.
    checkTypes({ root, project, node, env, ok, fail })

    // 8b. The adapter subpaths, run and type-checked, with their peers linked in (after the checks
    // above, which want the install as npm left it).
    checkAdapters({ root, project, node, env, ok, fail })

    // 9. vecdex bench from the install writes to the folder it runs in, not into the package.
    checkBench({ project, env, isWindows, ok, fail })

    // 10. Both tarballs publish (dry run) with exactly the expected files; the repository does not.
    checkPublishDryRun({ root, project, node, npmCli, env, registry: REGISTRY, main, platform, ok, fail, verbose })
    checkGuardRefuses({ root, node: process.execPath, npmCli, registry: REGISTRY, ok, fail })

    // 11. Each platform package is selected on its own platform only, by npm's own check.
    await checkPlatformFields(npmCli)

    console.log(`PASS tarball test (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  } finally {
    cleanup()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}

function checkMissingBinary(tmp, main, platform, node, npmCli, env, closure, packed) {
  const project = join(tmp, 'project-without-binary')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), '{ "name": "vecdex-no-binary", "version": "1.0.0", "private": true }\n')
  writeConsumerLock({ project, closure, packed })
  run('npm install (main package only)', node, [npmCli, 'install', main.path, '--offline', `--registry=${REGISTRY}`], {
    cwd: project,
    env,
    timeout: 90_000,
  })
  const probe = `try { require('vecdex'); console.log('LOADED') } catch (e) {
    const chain = []; for (let c = e; c; c = c.cause) chain.push(String(c.message).split('\\n')[0]); console.log(chain.join(' <- ')) }`
  const said = run('require without a binary', node, ['-e', probe], { cwd: project, env, timeout: 30_000 }).stdout.trim()
  if (said === 'LOADED') fail(`vecdex loaded without ${platform.name}: a binary must be reachable from the main package`)
  if (!said.includes(platform.name)) fail(`the load error does not name ${platform.name}: ${said}`)
  ok(`without ${platform.name}, require('vecdex') throws: ${said}`)
}

function checkBin(project, env, manifest) {
  const bins = typeof manifest.bin === 'string' ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {})
  if (!bins.vecdex) fail('the published manifest declares no vecdex bin')
  const shim = join(project, 'node_modules', '.bin', isWindows ? 'vecdex.cmd' : 'vecdex')
  let linked = false
  try {
    lstatSync(shim)
    linked = true
    statSync(shim)
  } catch {
    fail(`vecdex --version: ${bins.vecdex} is not in the package${linked ? ' (npm linked a dangling bin)' : ''}`)
  }
  const result = run('vecdex --version', shim, ['--version'], { cwd: project, env, timeout: 30_000, shell: isWindows })
  ok(`node_modules/.bin/vecdex --version: ${result.stdout.trim().split('\n')[0]}`)
}

async function checkPlatformFields(npmCli) {
  const requireFromNpm = createRequire(npmCli)
  let checkPlatform
  try {
    ;({ checkPlatform } = requireFromNpm('npm-install-checks'))
  } catch {
    fail("platform fields: npm's npm-install-checks module (bundled with npm) not found beside npm-cli.js")
  }
  const { parseTriple } = await import('@napi-rs/cli')
  const rootManifest = readJson(join(root, 'package.json'))
  const targets = rootManifest.napi.targets.map(parseTriple)
  const libcOf = (abi) => (abi === 'gnu' ? 'glibc' : abi === 'musl' ? 'musl' : undefined)
  const problems = []
  for (const target of targets) {
    const manifest = readJson(join(root, 'npm', target.platformArchABI, 'package.json'))
    for (const host of targets) {
      let accepted = true
      try {
        checkPlatform(manifest, false, { os: host.platform, cpu: host.arch, libc: libcOf(host.abi) })
      } catch {
        accepted = false
      }
      if (accepted !== (host === target)) {
        problems.push(`${manifest.name} is ${accepted ? 'accepted' : 'rejected'} on ${host.platformArchABI}`)
      }
    }
  }
  if (problems.length > 0) fail(`os/cpu/libc fields of npm/*/package.json:\n  ${problems.join('\n  ')}`)
  ok(`os/cpu/libc: each of the ${targets.length} platform packages is installable on its own platform only (npm-install-checks)`)
}

try {
  await main()
} catch (error) {
  console.log(`FAIL tarball test: ${error instanceof TestFailure ? error.message : error.stack}`)
  process.exitCode = 1
}
