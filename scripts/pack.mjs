#!/usr/bin/env node
// Stages and packs the npm tarballs that a release publishes:
//
//   vecdex-<platform>-<version>.tgz   the prebuilt addon for this host (e.g. linux-x64-gnu), made
//                                     from npm/<platform>/ plus the built vecdex.<platform>.node
//   vecdex-<version>.tgz              the main package: dist/, the generated loader, the CLI and
//                                     the benchmark code, with no binary in it
//
// The main package is packed from a staged copy whose manifest is the one users install: the
// benchmark peers, devDependencies and development scripts are removed, and optionalDependencies
// lists every platform package at the same version (what `napi pre-publish` writes at release).
// npm then installs only the platform package whose os/cpu/libc match the user's machine.
//
// Usage: node scripts/pack.mjs [--out <dir>] [--json] [--main-only] [--strict]
//   --out <dir>    where the tarballs go (default dist-pack/)
//   --json         print { outDir, tarballs: [...] } as JSON on stdout (logs go to stderr)
//   --main-only    pack only the main package (the release publishes the platform packages with
//                  `napi pre-publish`, from the artifacts of every build job)
//   --strict       release checks (release-checks.mjs): dist/ is what tsc emits from the current
//                  lib/, and index.js, index.d.ts and the built addon (when there is one for this
//                  host) export the same names; a `bin` entry whose file is not in the package is
//                  an error, not just a warning (development)
//
// Both tarballs must hold exactly the files of package-files.mjs (no tests, no benchmark peers, no
// source map without its source): anything else is an error, and no tarball is left behind.

import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expectedMainFiles, expectedPlatformFiles, fileListProblems, hostPlatformArchAbi, mapSources, PackageError, platformPackages } from './package-files.mjs'
import { bindingProblems, distProblems } from './release-checks.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// Manifest fields of the repository that a user's install must not see. Install-time lifecycle
// scripts would be kept (there are none today); every other script is for development.
const DEV_ONLY_FIELDS = ['devDependencies', 'allowScripts', 'scripts', 'optionalDependencies']
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall']

function parseArgs(argv) {
  const options = { out: join(root, 'dist-pack'), json: false, mainOnly: false, strict: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--json') options.json = true
    else if (arg === '--main-only') options.mainOnly = true
    else if (arg === '--strict') options.strict = true
    else if (arg === '--out' || arg.startsWith('--out=')) {
      const value = arg === '--out' ? argv[++i] : arg.slice('--out='.length)
      if (!value) fail('--out needs a directory')
      options.out = resolve(value)
    } else if (arg === '--help' || arg === '-h') {
      options.help = true
    } else fail(`unknown argument ${arg}`)
  }
  return options
}

// Thrown for every expected failure; main() reports it after the staging dir is removed.
class PackError extends Error {}
function fail(message) {
  throw new PackError(message)
}

let log = (message) => process.stdout.write(`${message}\n`)

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))
const writeJson = (path, value) => writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`)

// npm's entry script, run with this node: the copy running this script (`npm run pack:release`),
// else the one installed beside node (Windows and POSIX layouts). Running it directly avoids a
// shell, which npm.cmd on Windows would need.
function npmCommand() {
  const execPath = process.env.npm_execpath
  const nodeDir = dirname(process.execPath)
  const candidates = [
    execPath && /\.[cm]?js$/.test(execPath) ? execPath : null,
    join(nodeDir, 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    join(nodeDir, '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ]
  const cli = candidates.find((path) => path && existsSync(path))
  return cli ? [process.execPath, [cli]] : ['npm', []]
}

function npm(args, cwd) {
  const [command, prefix] = npmCommand()
  const result = spawnSync(command, [...prefix, ...args], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    shell: command === 'npm' && process.platform === 'win32',
  })
  if (result.error) fail(`could not run npm: ${result.error.message}`)
  if (result.status !== 0) fail(`npm ${args.join(' ')} failed in ${cwd}:\n${result.stderr}`)
  return result.stdout
}

// `npm pack --json` prints an array with one entry per package; older npm versions may print
// lifecycle output before it, so parse from the first '['.
function packJson(stdout) {
  const start = stdout.indexOf('[')
  if (start < 0) fail(`unexpected npm pack output:\n${stdout}`)
  return JSON.parse(stdout.slice(start))[0]
}

// The manifest users install: repository fields minus development ones, plus the platform
// packages as optional dependencies at exactly this version.
function publishedManifest(manifest, platforms) {
  const published = { ...manifest }
  for (const field of DEV_ONLY_FIELDS) delete published[field]
  const installScripts = Object.fromEntries(
    Object.entries(manifest.scripts ?? {}).filter(([name]) => INSTALL_SCRIPTS.includes(name)),
  )
  if (Object.keys(installScripts).length > 0) published.scripts = installScripts
  published.optionalDependencies = Object.fromEntries(platforms.map((p) => [p.name, manifest.version]))

  // The repository lists no optional dependencies of its own: only `napi pre-publish` adds the
  // platform packages there at release. Anything else would reach users.
  const strays = Object.keys(manifest.optionalDependencies ?? {}).filter((name) => !platforms.some((p) => p.name === name))
  if (strays.length > 0) fail(`package.json lists optional dependencies that are not platform packages: ${strays.join(', ')} (benchmark peers belong in benchmark/peers/package.json)`)
  return published
}

function stagePlatform(platform, manifest, stageDir) {
  const built = join(root, platform.binary)
  if (!existsSync(built)) {
    fail(`${platform.binary} not found in ${root}: run npm run build first`)
  }
  mkdirSync(stageDir, { recursive: true })
  const packageJson = readJson(join(platform.dir, 'package.json'))
  // The same version as the main package (napi pre-publish does this too at release), and the
  // repository fields npm provenance checks, when the main package has them.
  packageJson.version = manifest.version
  for (const field of ['repository', 'homepage', 'bugs']) {
    if (manifest[field] !== undefined) packageJson[field] = manifest[field]
  }
  for (const field of ['os', 'cpu', 'main', 'files']) {
    if (!packageJson[field]) fail(`npm/${platform.platformArchABI}/package.json has no ${field}`)
  }
  if (platform.platformArchABI.startsWith('linux-') && !packageJson.libc) {
    fail(`npm/${platform.platformArchABI}/package.json has no libc field`)
  }
  writeJson(join(stageDir, 'package.json'), packageJson)
  copyFileSync(built, join(stageDir, platform.binary))
  for (const file of ['README.md']) {
    if (existsSync(join(platform.dir, file))) copyFileSync(join(platform.dir, file), join(stageDir, file))
  }
  if (existsSync(join(root, 'LICENSE'))) copyFileSync(join(root, 'LICENSE'), join(stageDir, 'LICENSE'))
}

function stageMain(manifest, published, stageDir) {
  // The files npm would publish from the repository itself (`files`, plus README, LICENSE and
  // package.json), copied as they are; only package.json is replaced.
  const listed = packJson(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root)).files.map((f) => f.path)
  for (const file of listed) {
    if (file === 'package.json') continue
    const target = join(stageDir, file)
    mkdirSync(dirname(target), { recursive: true })
    copyFileSync(join(root, file), target)
  }
  writeJson(join(stageDir, 'package.json'), published)
  return listed
}

function pack(stageDir, outDir) {
  const info = packJson(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', outDir], stageDir))
  return { ...info, path: join(outDir, info.filename), files: info.files.map((f) => f.path) }
}

// Paths a manifest points at (main, types, exports targets, bin), without the leading './'.
function referencedPaths(manifest) {
  const paths = new Set()
  const add = (value) => {
    if (typeof value === 'string') paths.add(value.replace(/^\.\//, ''))
    else if (value && typeof value === 'object') Object.values(value).forEach(add)
  }
  add(manifest.main)
  add(manifest.types)
  add(manifest.exports)
  return paths
}

function checkMain(tarball, published, strict) {
  const files = new Set(tarball.files)
  const problems = []
  const nodeFiles = tarball.files.filter((f) => f.endsWith('.node'))
  if (nodeFiles.length > 0) problems.push(`contains native binaries: ${nodeFiles.join(', ')}`)
  if (!tarball.files.some((f) => f.startsWith('dist/'))) problems.push('has no dist/ (run npm run build:ts)')
  for (const file of ['index.js', 'index.d.ts', 'package.json']) {
    if (!files.has(file)) problems.push(`has no ${file}`)
  }
  for (const path of referencedPaths(published)) {
    if (!path.endsWith('package.json') && !files.has(path)) problems.push(`has no ${path}, which package.json points at`)
  }
  if (existsSync(join(root, 'bin')) && !tarball.files.some((f) => f.startsWith('bin/'))) {
    problems.push('has no bin/ although the repository has one')
  }
  const bins = typeof published.bin === 'string' ? { [published.name]: published.bin } : (published.bin ?? {})
  for (const [name, path] of Object.entries(bins)) {
    if (files.has(path.replace(/^\.\//, ''))) continue
    const message = `bin ${name} points at ${path}, which is not in the package`
    if (strict) problems.push(message)
    else process.stderr.write(`pack: warning: ${message} (an error with --strict)\n`)
  }
  problems.push(...fileListProblems(tarball.files, expectedMainFiles(root), { main: true, maps: mapSources(root, tarball.files) }))
  if (problems.length > 0) fail(`main tarball ${tarball.filename}:\n  ${problems.join('\n  ')}`)
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) {
    process.stdout.write('usage: node scripts/pack.mjs [--out <dir>] [--json] [--main-only] [--strict]\n')
    return
  }
  if (options.json) log = (message) => process.stderr.write(`${message}\n`)

  const manifest = readJson(join(root, 'package.json'))
  const platforms = await platformPackages(root, manifest)
  const published = publishedManifest(manifest, platforms)
  if (options.strict) {
    const problems = [...distProblems(root), ...bindingProblems(root, manifest, { requireBinary: false })]
    if (problems.length > 0) fail(`not releasable as built:\n  ${problems.join('\n  ')}`)
  }

  mkdirSync(options.out, { recursive: true })
  const outDir = realpathSync(options.out)
  const staging = mkdtempSync(join(tmpdir(), 'vecdex-pack-'))
  const tarballs = []
  try {
    if (!options.mainOnly) {
      const host = hostPlatformArchAbi()
      const platform = platforms.find((p) => p.platformArchABI === host)
      if (!platform) fail(`this host (${host}) is not one of the napi targets in package.json`)
      stagePlatform(platform, manifest, join(staging, 'platform'))
      const tarball = pack(join(staging, 'platform'), outDir)
      const problems = fileListProblems(tarball.files, expectedPlatformFiles(platform.binary), { main: false })
      if (problems.length > 0) {
        rmSync(tarball.path, { force: true })
        fail(`platform tarball ${tarball.filename}:\n  ${problems.join('\n  ')}`)
      }
      tarballs.push({ kind: 'platform', name: tarball.name, version: tarball.version, path: tarball.path, platform: host })
    }

    stageMain(manifest, published, join(staging, 'main'))
    const tarball = pack(join(staging, 'main'), outDir)
    try {
      checkMain(tarball, published, options.strict)
    } catch (error) {
      // Leave no tarball of a failed pack behind: none of them may be published.
      for (const t of [tarball, ...tarballs]) rmSync(t.path, { force: true })
      throw error
    }
    tarballs.push({ kind: 'main', name: tarball.name, version: tarball.version, path: tarball.path })
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }

  if (options.json) {
    process.stdout.write(`${JSON.stringify({ outDir, tarballs }, null, 2)}\n`)
  } else {
    for (const t of tarballs) log(`${t.kind.padEnd(8)} ${t.path}`)
  }
}

try {
  await main()
} catch (error) {
  process.stderr.write(`pack: ${error instanceof PackError || error instanceof PackageError ? error.message : error.stack}\n`)
  process.exitCode = 1
}
