// The package as it would be published: every manifest names its repository and the Node it
// needs, the benchmark's peers are the benchmark's own dependencies, the publish guard and the
// release checks catch what they are for, and `vecdex bench` never writes inside an installed
// package. The tarballs themselves (install, types, publish dry runs) are tested by
// `npm run test:package` (scripts/tarball-test.mjs).
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { expectedMainFiles, fileListProblems } from '../scripts/package-files.mjs'
import { bindingProblems, distProblems, gitProblems, platformProblems } from '../scripts/release-checks.mjs'
import { NODE_FEATURES } from '../scripts/package-test/engines.mjs'

const root = resolve(__dirname, '..')
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'))
const manifest = readJson(join(root, 'package.json'))
const platformManifests: Array<[string, any]> = readdirSync(join(root, 'npm')).map((dir) => [dir, readJson(join(root, 'npm', dir, 'package.json'))])
const tmp = mkdtempSync(join(tmpdir(), 'vecdex-package-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('manifests', () => {
  it('name the repository, homepage and bug tracker, the same in every package (npm provenance needs repository)', () => {
    const url = 'https://github.com/vecdex/vecdex'
    expect(manifest.repository).toEqual({ type: 'git', url: `git+${url}.git` })
    expect(manifest.homepage).toBe(`${url}#readme`)
    expect(manifest.bugs).toEqual({ url: `${url}/issues` })
    expect(platformManifests.length).toBe(manifest.napi.targets.length)
    for (const [, platform] of platformManifests) {
      expect({ name: platform.name, repository: platform.repository, homepage: platform.homepage, bugs: platform.bugs }).toEqual({
        name: platform.name,
        repository: manifest.repository,
        homepage: manifest.homepage,
        bugs: manifest.bugs,
      })
    }
  })

  it('ask for the Node that has Symbol.dispose (20.4.0), which the shipped code uses', () => {
    const dispose = NODE_FEATURES.find((f: { pattern: RegExp }) => f.pattern.test('Symbol.dispose'))
    expect(dispose.since).toBe('20.4.0')
    expect(readFileSync(join(root, 'dist', 'vector-index.js'), 'utf8')).toMatch(dispose.pattern)
    expect(manifest.engines).toEqual({ node: '>=20.4.0' })
    for (const [dir, platform] of platformManifests) expect([dir, platform.engines]).toEqual([dir, manifest.engines])
  })

  it('keep the benchmark peers out of the package: they are the benchmark manifest\'s optional dependencies', () => {
    // autocannon is the serve suite's load generator: a benchmark tool, never a dependency.
    const names = ['@lancedb/lancedb', 'hnswlib-node', 'usearch', '@resvg/resvg-js', 'autocannon']
    // hnswlib-node is also a devDependency, at the benchmark's version: the LangChain adapter's
    // spec compares with @langchain/community's HNSWLib store, which imports it.
    const devOnly = new Set(['hnswlib-node'])
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies', 'devDependencies', 'allowScripts']) {
      for (const name of names) {
        if (field === 'devDependencies' && devOnly.has(name)) continue
        expect(`${field} ${manifest[field]?.[name] ?? '-'}`).toBe(`${field} -`)
      }
    }
    const peers = readJson(join(root, 'benchmark', 'peers', 'package.json'))
    expect(Object.keys(peers.optionalDependencies).sort()).toEqual([...names].sort())
    expect(peers.private).toBe(true)
    expect(Object.keys(peers.allowScripts).sort()).toEqual(['hnswlib-node', 'usearch'])
    // The root lock installs none of them (npm ci stays small); the benchmark's lock pins them.
    const rootLock = readJson(join(root, 'package-lock.json')).packages
    const peersLock = readJson(join(root, 'benchmark', 'peers', 'package-lock.json')).packages
    for (const name of names) {
      if (devOnly.has(name)) {
        expect(manifest.devDependencies[name]).toBe(peers.optionalDependencies[name])
        expect(rootLock[`node_modules/${name}`]).toMatchObject({ version: peers.optionalDependencies[name], dev: true })
      } else expect(rootLock[`node_modules/${name}`]).toBeUndefined()
      expect(peersLock[`node_modules/${name}`]?.version).toBe(peers.optionalDependencies[name])
    }
  })

  it('guard a publish from the repository with prepublishOnly', () => {
    expect(manifest.scripts.prepublishOnly).toBe('node scripts/publish-guard.mjs')
    // The release's tarball carries no scripts (pack.mjs drops them), so the guard never runs for users.
    expect(expectedMainFiles(root)).not.toContain('scripts/publish-guard.mjs')
  })
})

describe('release checks', () => {
  it('want exactly the platform packages, at this version, in optionalDependencies', async () => {
    const platforms = Object.fromEntries(platformManifests.map(([, p]) => [p.name, manifest.version]))
    const missing = await platformProblems(root, manifest, { registry: false })
    expect(missing.join('\n')).toMatch(/optionalDependencies lack vecdex-linux-x64-gnu@/)
    expect(await platformProblems(root, { ...manifest, optionalDependencies: platforms }, { registry: false })).toEqual([])
    const withPeer = await platformProblems(root, { ...manifest, optionalDependencies: { ...platforms, usearch: '2.25.3' } }, { registry: false })
    expect(withPeer.join('\n')).toMatch(/not platform packages: usearch/)
    const oldVersion = await platformProblems(root, { ...manifest, optionalDependencies: { ...platforms, [platformManifests[0][1].name]: '0.0.1' } }, { registry: false })
    expect(oldVersion.join('\n')).toMatch(/optionalDependencies lack/)
  })

  it('refuse a dirty work tree, except the optionalDependencies napi pre-publish writes', () => {
    const repo = join(tmp, 'git')
    mkdirSync(repo)
    const git = (...args: string[]) => {
      const r = spawnSync('git', args, { cwd: repo, encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`)
    }
    git('init', '-q')
    writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }, null, 2))
    writeFileSync(join(repo, 'a.txt'), 'a')
    git('add', '.')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x')
    expect(gitProblems(repo)).toEqual([])
    writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0', optionalDependencies: { 'x-linux-x64-gnu': '1.0.0' } }, null, 2))
    expect(gitProblems(repo)).toEqual([])
    writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.1' }, null, 2))
    expect(gitProblems(repo).join('\n')).toMatch(/package.json differs from HEAD/)
    writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0' }, null, 2))
    writeFileSync(join(repo, 'a.txt'), 'changed')
    writeFileSync(join(repo, 'stray.txt'), 'new')
    expect(gitProblems(repo).join('\n')).toMatch(/not committed: M a.txt, \?\? stray.txt/)
  })

  it('find a dist/ that is not what lib/ compiles to: edited, stale or missing files', () => {
    const copy = join(tmp, 'dist-check')
    mkdirSync(copy)
    for (const file of ['tsconfig.json', 'index.js', 'index.d.ts']) copyFileSync(join(root, file), join(copy, file))
    cpSync(join(root, 'lib'), join(copy, 'lib'), { recursive: true })
    cpSync(join(root, 'types'), join(copy, 'types'), { recursive: true }) // tsconfig.json "paths"
    cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true })
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'junction')
    writeFileSync(join(copy, 'dist', 'keys.js'), `${readFileSync(join(copy, 'dist', 'keys.js'), 'utf8')}\n// edited\n`)
    writeFileSync(join(copy, 'dist', 'removed-source.js'), '')
    rmSync(join(copy, 'dist', 'results.d.ts'))
    const problems = distProblems(copy).join('\n')
    expect(problems).toMatch(/dist\/ lacks results\.d\.ts/)
    expect(problems).toMatch(/files no lib\/ source emits: removed-source\.js/)
    expect(problems).toMatch(/keys\.js differ/)
  })

  it('find index.js and index.d.ts that disagree on the native exports', () => {
    const copy = join(tmp, 'binding-check')
    mkdirSync(copy)
    copyFileSync(join(root, 'index.js'), join(copy, 'index.js'))
    writeFileSync(join(copy, 'index.d.ts'), `${readFileSync(join(root, 'index.d.ts'), 'utf8')}\nexport declare function notInTheLoader(): void\n`)
    const fake = { ...manifest, name: 'not-built' } // no addon of that name: compare the two files only
    expect(bindingProblems(copy, fake, { requireBinary: false }).join('\n')).toMatch(/only in index\.d\.ts notInTheLoader/)
    expect(bindingProblems(copy, fake, { requireBinary: true }).join('\n')).toMatch(/no built addon/)
    expect(bindingProblems(root, manifest, { requireBinary: true })).toEqual([])
  })

  it('find tests, binaries, peers and maps without sources in a file list', () => {
    const expected = ['package.json', 'dist/a.js', 'dist/a.js.map', 'lib/a.ts']
    const maps = new Map([['dist/a.js.map', ['../lib/a.ts']]])
    expect(fileListProblems(expected, expected, { main: true, maps })).toEqual([])
    const bad = ['package.json', 'dist/a.js', 'dist/a.js.map', '__test__/a.spec.ts', 'vecdex.linux-x64-gnu.node', 'node_modules/usearch/index.js']
    const problems = fileListProblems(bad, expected, { main: true, maps }).join('\n')
    expect(problems).toMatch(/missing: lib\/a\.ts/)
    expect(problems).toMatch(/tests: __test__\/a\.spec\.ts/)
    expect(problems).toMatch(/native binaries .*vecdex\.linux-x64-gnu\.node/)
    expect(problems).toMatch(/installed packages: node_modules\/usearch\/index\.js/)
    expect(problems).toMatch(/dist\/a\.js\.map points at sources the package lacks: lib\/a\.ts/)
  })
})

describe('vecdex bench output', () => {
  const where = (cwd: string, workspace: string, out?: string) => {
    const code = `import(${JSON.stringify(`file://${workspace}`)}).then((m) => console.log(JSON.stringify({ ws: m.resolveWorkspace(${JSON.stringify(out)}), peer: m.loadPeer('usearch').error ?? 'loaded' })))`
    const r = spawnSync(process.execPath, ['-e', code], { cwd, encoding: 'utf8' })
    expect(r.stderr).toBe('')
    return JSON.parse(r.stdout)
  }

  it('goes to the working folder or --out from an installed package, never inside it', () => {
    const project = join(tmp, 'project')
    const installed = join(project, 'node_modules', 'vecdex')
    mkdirSync(join(installed, 'benchmark', 'peers'), { recursive: true })
    copyFileSync(join(root, 'benchmark', 'workspace.mjs'), join(installed, 'benchmark', 'workspace.mjs'))
    copyFileSync(join(root, 'benchmark', 'peers', 'package.json'), join(installed, 'benchmark', 'peers', 'package.json'))
    const workspace = join(installed, 'benchmark', 'workspace.mjs')
    const byDefault = where(project, workspace)
    expect(byDefault.ws).toEqual({ results: join(project, 'vecdex-results'), venv: join(project, 'vecdex-results', '.venv'), peers: join(project, 'vecdex-results', 'peers') })
    expect(byDefault.peer).toMatch(/usearch is not installed .*vecdex bench --install-peers installs the peers into .*vecdex-results.peers .*npm install usearch@2\.25\.3/)
    expect(where(project, workspace, 'out').ws.venv).toBe(join(project, 'out', '.venv'))
  })

  it('stays in benchmark/ of a checkout, with the peers only from benchmark/peers', () => {
    const { ws, peer } = where(root, join(root, 'benchmark', 'workspace.mjs'))
    expect(ws).toEqual({ results: join(root, 'benchmark', 'results'), venv: join(root, 'benchmark', '.venv'), peers: join(root, 'benchmark', 'peers') })
    const installedHere = readdirSync(join(root, 'benchmark', 'peers')).includes('node_modules')
    if (!installedHere) expect(peer).toMatch(/usearch is not installed .*npm run bench installs the peers into benchmark\/peers/)
  })
})
