// The type test of the package test: vecdex's declarations, as installed from the tarball, in
// strict consumer projects (strict, skipLibCheck false, so every .d.ts vecdex ships is checked):
//
//   esm   "type": "module", module/moduleResolution nodenext, plus exactOptionalPropertyTypes,
//         noUncheckedIndexedAccess and verbatimModuleSyntax → the import condition, dist/esm.d.mts
//   cjs   no "type", module/moduleResolution node16 → the require condition, dist/index.d.ts
//
// Each compiles __test__/types/uses.ts (what users write), rejects.ts (mistakes, each marked
// `// @ts-expect-error TSxxxx why`: an expected error that does not occur fails the build) and
// its entry file (esm.ts, cjs.ts), with 0 errors. Then rejects.ts is compiled without its
// directives, and each marked line must fail with the code named in its directive, and no other
// line fail: a mistake rejected for another reason than the one intended does not pass.
//
// The server entry, `vecdex/serve`, is checked the same way from the sources below (SERVE_USES:
// createServer with typed options, listen, close; SERVE_REJECTS: wrong options), against
// dist/serve.d.mts (esm) and dist/serve.d.ts (both).
//
// TypeScript and @types/node come from the repository's devDependencies (nothing is downloaded).

import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const STRICT = { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', types: ['node'] }

const MODES = [
  {
    name: 'esm',
    packageJson: { name: 'vecdex-types-esm', private: true, type: 'module' },
    compilerOptions: {
      ...STRICT,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      lib: ['ES2022'],
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: true,
    },
    entry: 'esm.ts',
    declarations: ['node_modules/vecdex/dist/esm.d.mts', 'node_modules/vecdex/dist/index.d.ts', 'node_modules/vecdex/index.d.ts', 'node_modules/vecdex/dist/serve.d.mts', 'node_modules/vecdex/dist/serve.d.ts'],
  },
  {
    name: 'cjs',
    packageJson: { name: 'vecdex-types-cjs', private: true },
    compilerOptions: { ...STRICT, module: 'node16', moduleResolution: 'node16' },
    entry: 'cjs.ts',
    declarations: ['node_modules/vecdex/dist/index.d.ts', 'node_modules/vecdex/index.d.ts', 'node_modules/vecdex/dist/serve.d.ts'],
  },
]

const SERVE_USES = String.raw`import { createServer, VecdexServer, type ServeOptions, type BatchingOptions, type ServeLimits } from 'vecdex/serve'

export async function useServe(): Promise<string> {
  const server = await createServer({ host: '127.0.0.1', port: 0, dataDir: '/tmp/x' })
  const batching: BatchingOptions = { maxBatch: 64, windowMs: 1 }
  const limits: Partial<ServeLimits> = { maxK: 100 }
  const options: ServeOptions = { port: 7700, apiKey: 'a-long-key', batching, limits, logger: { level: 'warn' }, autosaveSeconds: 60 }
  const other: VecdexServer = await createServer(options)
  const address: string = await server.listen()
  const closed: Promise<void> = server.close()
  await closed
  await other.close()
  return address + String(server.address)
}
`

const SERVE_REJECTS = String.raw`// What the server's types must refuse (the same rules as __test__/types/rejects.ts).
import { createServer } from 'vecdex/serve'

export async function misuse(): Promise<void> {
  // @ts-expect-error TS2322 the port is a number, not a string
  await createServer({ port: '80' })
  // @ts-expect-error TS2353 the data folder is dataDir
  await createServer({ dir: '/tmp/x' })
  // @ts-expect-error TS2322 batching is a boolean or its settings
  await createServer({ batching: 'on' })
  // @ts-expect-error TS2561 a misspelt batching setting (windowMs)
  await createServer({ batching: { window: 1 } })
  const server = await createServer()
  // @ts-expect-error TS2322 listen resolves with the address, a string
  const port: number = await server.listen()
  void port
}
`

// Their file names in the consumer projects.
const SERVE_FILES = { uses: 'serve-uses.ts', rejects: 'serve-rejects.ts' }

const DIRECTIVE = /^(\s*)\/\/ @ts-expect-error (TS\d+)\b.*$/

/** `file(line,col): error TSxxxx: ...` lines of tsc's output, as { file, line, code }. */
function diagnostics(output) {
  return [...output.matchAll(/^([^\s(][^(]*)\((\d+),\d+\): error (TS\d+):/gm)].map((m) => ({ file: m[1], line: Number(m[2]), code: m[3] }))
}

/**
 * @param {{ root: string, project: string, node: string, env: object, ok: Function, fail: Function }} t
 *   project: a folder whose node_modules holds the vecdex installed from the tarball
 */
export function checkTypes({ root, project, node, env, ok, fail }) {
  const compiler = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const typesNode = join(root, 'node_modules', '@types', 'node')
  if (!existsSync(compiler) || !existsSync(typesNode)) fail('types: typescript and @types/node (devDependencies) are not installed: run npm ci')
  const tsVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'typescript', 'package.json'), 'utf8')).version
  const sources = join(root, '__test__', 'types')

  // The consumer's @types/node, linked (a junction on Windows needs no privilege).
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true })
  const link = join(project, 'node_modules', '@types', 'node')
  if (!existsSync(link)) symlinkSync(realpathSync(typesNode), link, 'junction')

  // The files of mistakes, each with what it marks: `bare-<file>:<line>` (1-based, the line
  // after each directive; the name of the copy without directives) → error code.
  const rejectSources = [
    { file: 'rejects.ts', from: '__test__/types/rejects.ts', text: readFileSync(join(sources, 'rejects.ts'), 'utf8') },
    { file: SERVE_FILES.rejects, from: 'SERVE_REJECTS in scripts/package-test/types.mjs', text: SERVE_REJECTS },
  ]
  const expected = new Map()
  const bareFiles = []
  for (const source of rejectSources) {
    const lines = source.text.split('\n')
    const before = expected.size
    lines.forEach((line, i) => {
      const m = DIRECTIVE.exec(line)
      if (m) expected.set(`bare-${source.file}:${i + 2}`, m[2])
    })
    if (expected.size === before) fail(`types: ${source.from} marks no mistake`)
    bareFiles.push({ file: `bare-${source.file}`, text: lines.map((line) => line.replace(DIRECTIVE, '$1// (directive removed)')).join('\n') })
  }

  for (const mode of MODES) {
    const dir = join(project, `types-${mode.name}`)
    mkdirSync(dir, { recursive: true })
    const files = ['uses.ts', 'rejects.ts', mode.entry, SERVE_FILES.uses, SERVE_FILES.rejects]
    for (const file of ['uses.ts', 'rejects.ts', mode.entry]) copyFileSync(join(sources, file), join(dir, file))
    writeFileSync(join(dir, SERVE_FILES.uses), SERVE_USES)
    writeFileSync(join(dir, SERVE_FILES.rejects), SERVE_REJECTS)
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(mode.packageJson, null, 2)}\n`)
    writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions: mode.compilerOptions, files }, null, 2)}\n`)

    // 1. Everything compiles with 0 errors, and vecdex's own declarations were among the files checked.
    const checked = tsc(`tsc (${mode.name})`, node, [compiler, '-p', join(dir, 'tsconfig.json'), '--listFiles'], { cwd: dir, env }, true, fail)
    const listed = checked.split('\n').map((l) => l.trim().replace(/\\/g, '/'))
    const missing = mode.declarations.filter((d) => !listed.some((f) => f.endsWith(`${project.replace(/\\/g, '/')}/${d}`)))
    if (missing.length > 0) fail(`types (${mode.name}): tsc did not check ${missing.join(', ')}`)
    const options = Object.entries(mode.compilerOptions)
      .filter(([k, v]) => v === true && k !== 'noEmit')
      .map(([k]) => k)
    ok(`types (${mode.name}, ${mode.compilerOptions.module}, ${options.join(', ')}; TypeScript ${tsVersion}): ${files.join(', ')} compile with 0 errors against ${mode.declarations.join(', ')}`)

    // 2. Without the directives, each marked line fails with its code, and nothing else fails.
    for (const bare of bareFiles) writeFileSync(join(dir, bare.file), bare.text)
    writeFileSync(join(dir, 'tsconfig.rejects.json'), `${JSON.stringify({ compilerOptions: mode.compilerOptions, files: bareFiles.map((b) => b.file) }, null, 2)}\n`)
    const failing = tsc(`tsc rejects (${mode.name})`, node, [compiler, '-p', join(dir, 'tsconfig.rejects.json')], { cwd: dir, env }, false, fail)
    const found = diagnostics(failing).map((d) => ({ ...d, at: `${d.file.replace(/\\/g, '/').split('/').pop()}:${d.line}` }))
    const problems = []
    for (const [at, code] of expected) {
      const here = found.filter((d) => d.at === at)
      if (!here.some((d) => d.code === code)) problems.push(`${at}: expected ${code}, got ${here.map((d) => d.code).join(', ') || 'no error'}`)
    }
    const strays = found.filter((d) => !expected.has(d.at))
    for (const d of strays) problems.push(`${d.at}: unexpected ${d.code} in ${d.file}`)
    if (problems.length > 0) fail(`types (${mode.name}): ${rejectSources.map((s) => s.from).join(' and ')}:\n  ${problems.join('\n  ')}\n${failing}`)
    const counts = {}
    for (const code of expected.values()) counts[code] = (counts[code] ?? 0) + 1
    const perFile = rejectSources.map((s) => `${[...expected.keys()].filter((k) => k.startsWith(`bare-${s.file}:`)).length} of ${s.file}`).join(', ')
    ok(`types (${mode.name}): the ${expected.size} mistakes (${perFile}) fail with their own errors (${Object.entries(counts).map(([c, n]) => `${c} ×${n}`).join(', ')})`)
  }
}

/** Runs tsc; `pass`: it must succeed (else it must fail, with diagnostics). Returns its output. */
function tsc(label, node, args, options, pass, fail) {
  const result = spawnSync(node, args, { ...options, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 180_000 })
  if (result.error) fail(`${label}: ${result.error.message}`)
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
  if (pass && result.status !== 0) fail(`${label} exited with ${result.status ?? result.signal}:\n${output.trim()}`)
  if (!pass && result.status === 0) fail(`${label}: tsc reported no error at all`)
  return output
}
