// Checks that what is about to be packed or published is what the repository says it is. Each
// returns a list of problems (empty: fine), so a caller can report them all at once.
//
//   distProblems       dist/ is exactly what tsc emits from the current lib/ (nothing stale,
//                      nothing missing, no edit by hand)
//   bindingProblems    index.js, index.d.ts and the built addon export the same names (the
//                      committed loader and types belong to this binary)
//   gitProblems        the work tree is committed (napi pre-publish may only have added the
//                      platform packages to optionalDependencies)
//   platformProblems   optionalDependencies are exactly the platform packages at this version,
//                      each already on the registry (napi pre-publish publishes them first)
//   packedFileProblems the files npm would pack are the expected list (package-files.mjs)
//
// Used by publish-guard.mjs (prepublishOnly: all of them) and pack.mjs --strict (the artefact
// checks), and tested by __test__/package.spec.ts.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix, relative, resolve } from 'node:path'
import { expectedMainFiles, fileListProblems, hostPlatformArchAbi, mapSources, platformPackages } from './package-files.mjs'

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))

function spawn(command, args, options = {}) {
  return spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options })
}

/** Every file under `dir`, relative and '/'-separated. */
function walk(dir, prefix = '') {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const rel = prefix ? `${prefix}/${name}` : name
    return statSync(join(dir, name)).isDirectory() ? walk(join(dir, name), rel) : [rel]
  })
}

/** A source map with its sources made absolute, so maps emitted into two folders compare equal. */
function normalisedMap(file) {
  const map = readJson(file)
  map.sources = (map.sources ?? []).map((s) => resolve(dirname(file), map.sourceRoot ?? '', s))
  delete map.sourceRoot
  return JSON.stringify(map)
}

/**
 * dist/ against a fresh `tsc -p tsconfig.json` into a temporary folder: the same files, byte for
 * byte (source maps compared by where their sources are).
 */
export function distProblems(root) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!existsSync(tsc)) return ['cannot check dist/: typescript is not installed (npm ci)']
  const out = mkdtempSync(join(tmpdir(), 'vecdex-dist-check-'))
  try {
    const compiled = spawn(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--outDir', out], { cwd: root })
    if (compiled.status !== 0) return [`lib/ does not compile: ${(compiled.stdout + compiled.stderr).trim().split('\n').slice(0, 5).join(' | ')}`]
    const fresh = walk(out).sort()
    const built = walk(join(root, 'dist')).sort()
    const problems = []
    const missing = fresh.filter((f) => !built.includes(f))
    const stale = built.filter((f) => !fresh.includes(f))
    if (missing.length > 0) problems.push(`dist/ lacks ${missing.join(', ')} (run npm run build:ts)`)
    if (stale.length > 0) problems.push(`dist/ has files no lib/ source emits: ${stale.join(', ')} (remove dist/ and run npm run build:ts)`)
    const differ = fresh.filter((f) => {
      if (!built.includes(f)) return false
      const a = join(out, f)
      const b = join(root, 'dist', f)
      return f.endsWith('.map') ? normalisedMap(a) !== normalisedMap(b) : !readFileSync(a).equals(readFileSync(b))
    })
    if (differ.length > 0) problems.push(`dist/ is not what the current lib/ compiles to: ${differ.join(', ')} differ (run npm run build:ts)`)
    return problems
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

/** Runtime exports index.js takes from the addon (its `module.exports.X = nativeBinding.X` lines). */
function loaderExports(root) {
  return [...readFileSync(join(root, 'index.js'), 'utf8').matchAll(/^module\.exports\.(\w+) = nativeBinding\.\1$/gm)].map((m) => m[1]).sort()
}

/** Values index.d.ts declares, less the loader's own (ExternalObject is a type-only class). */
function declaredExports(root) {
  const own = new Set(['ExternalObject', '__napiBindingTarget'])
  return [...readFileSync(join(root, 'index.d.ts'), 'utf8').matchAll(/^export declare (?:class|function|const(?! enum)|enum|namespace) (\w+)/gm)]
    .map((m) => m[1])
    .filter((name) => !own.has(name))
    .sort()
}

/** The built addon for this host: beside index.js (npm run build) or in npm/<platform>/ (napi artifacts). */
export function hostBinary(root, manifest) {
  const platform = hostPlatformArchAbi()
  const binary = `${manifest.napi?.binaryName ?? manifest.name}.${platform}.node`
  return [join(root, binary), join(root, 'npm', platform, binary)].find((p) => existsSync(p)) ?? null
}

/**
 * index.js, index.d.ts and the addon name the same exports. Without a built addon for this host
 * only the first two are compared, unless `requireBinary`.
 */
export function bindingProblems(root, manifest, { requireBinary }) {
  const problems = []
  const js = loaderExports(root)
  const dts = declaredExports(root)
  const diff = (a, b) => a.filter((x) => !b.includes(x))
  if (diff(js, dts).length + diff(dts, js).length > 0) {
    problems.push(`index.js and index.d.ts disagree: only in index.js ${diff(js, dts).join(', ') || '-'}; only in index.d.ts ${diff(dts, js).join(', ') || '-'} (run npm run build)`)
  }
  const binary = hostBinary(root, manifest)
  if (!binary) {
    if (requireBinary) problems.push(`no built addon for ${hostPlatformArchAbi()} to compare index.js with (run npm run build)`)
    return problems
  }
  const listed = spawn(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(Object.keys(require(process.argv[1]))))', binary])
  if (listed.status !== 0) return [...problems, `cannot load ${relative(root, binary)}: ${listed.stderr.trim().split('\n')[0]}`]
  const native = JSON.parse(listed.stdout).sort()
  if (diff(native, js).length + diff(js, native).length > 0) {
    problems.push(
      `${relative(root, binary)} does not match index.js: only in the addon ${diff(native, js).join(', ') || '-'}; only in index.js ${diff(js, native).join(', ') || '-'} (run npm run build and commit index.js, index.d.ts)`,
    )
  }
  return problems
}

/** The work tree is committed; package.json may differ from HEAD only in optionalDependencies. */
export function gitProblems(root) {
  const inside = spawn('git', ['rev-parse', '--is-inside-work-tree'], { cwd: root })
  if (inside.error || inside.status !== 0) return []
  const status = spawn('git', ['status', '--porcelain', '--untracked-files=normal'], { cwd: root })
  if (status.status !== 0) return [`git status failed: ${status.stderr.trim()}`]
  const changed = status.stdout.split('\n').filter(Boolean)
  const problems = []
  const others = changed.filter((line) => line.slice(3) !== 'package.json')
  if (others.length > 0) problems.push(`the work tree has changes that are not committed: ${others.map((l) => l.trim()).join(', ')}`)
  if (others.length !== changed.length) {
    const head = spawn('git', ['show', 'HEAD:package.json'], { cwd: root })
    const strip = (text) => {
      const { optionalDependencies, ...rest } = JSON.parse(text)
      return JSON.stringify(rest)
    }
    if (head.status !== 0 || strip(head.stdout) !== strip(readFileSync(join(root, 'package.json'), 'utf8'))) {
      problems.push('package.json differs from HEAD in more than optionalDependencies (what napi pre-publish adds): commit it')
    }
  }
  return problems
}

/**
 * optionalDependencies are exactly the platform packages at this version, and (unless
 * `registry` is false) each is on the registry: users get their binary from them.
 */
export async function platformProblems(root, manifest, { registry }) {
  const platforms = await platformPackages(root, manifest)
  const wanted = Object.fromEntries(platforms.map((p) => [p.name, manifest.version]))
  const have = manifest.optionalDependencies ?? {}
  const missing = Object.keys(wanted).filter((name) => have[name] !== manifest.version)
  const strays = Object.keys(have).filter((name) => !(name in wanted))
  const problems = []
  if (missing.length > 0) problems.push(`optionalDependencies lack ${missing.map((n) => `${n}@${manifest.version}`).join(', ')} (npx napi pre-publish publishes the platform packages and lists them)`)
  if (strays.length > 0) problems.push(`optionalDependencies name packages that are not platform packages: ${strays.join(', ')} (benchmark peers belong in benchmark/peers/package.json)`)
  if (problems.length > 0) return problems
  if (!registry) return []
  const npmCli = process.env.npm_execpath && /npm-cli\.[cm]?js$/.test(process.env.npm_execpath) ? [process.execPath, [process.env.npm_execpath]] : ['npm', []]
  const absent = []
  for (const { name } of platforms) {
    const view = spawn(npmCli[0], [...npmCli[1], 'view', `${name}@${manifest.version}`, 'version', '--json'], { shell: npmCli[0] === 'npm' && process.platform === 'win32' })
    let found = false
    try {
      found = JSON.parse(view.stdout || 'null') === manifest.version
    } catch {
      // not JSON: npm printed an error
    }
    if (!found) absent.push(name)
  }
  return absent.length > 0 ? [`not on the registry at ${manifest.version} (or the registry cannot be reached): ${absent.join(', ')}`] : []
}

/** The files `npm pack` would take from `dir`, with the tarball's paths. */
export function packedFiles(dir) {
  const npmCli = process.env.npm_execpath && /npm-cli\.[cm]?js$/.test(process.env.npm_execpath) ? [process.execPath, [process.env.npm_execpath]] : ['npm', []]
  const packed = spawn(npmCli[0], [...npmCli[1], 'pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, shell: npmCli[0] === 'npm' && process.platform === 'win32' })
  if (packed.status !== 0) throw new Error(`npm pack --dry-run failed in ${dir}: ${packed.stderr.trim()}`)
  return JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0].files.map((f) => f.path.split('\\').join(posix.sep))
}

/** The repository's packed file list against the expected one. */
export function packedFileProblems(root) {
  const files = packedFiles(root)
  return fileListProblems(files, expectedMainFiles(root), { main: true, maps: mapSources(root, files) }).map((p) => `npm pack would ship the wrong files: ${p}`)
}
