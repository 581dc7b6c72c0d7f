// The publishing part of the package test:
//
//   - `npm publish --dry-run --json` of both tarballs a release publishes (vecdex and this host's
//     platform package), offline against a dead registry: it must succeed without a warning
//     other than "not logged in", and list exactly the expected files (package-files.mjs: no
//     tests, no benchmark peers, no source map without its source);
//   - `npm publish --dry-run` from the repository itself must be refused by the prepublishOnly
//     guard (publish-guard.mjs), here because no platform package is listed in
//     optionalDependencies (napi pre-publish adds them at release).

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { expectedMainFiles, expectedPlatformFiles, fileListProblems, mapSources } from '../package-files.mjs'

/** The package entry of `npm publish --json` output (an object keyed by name, or an array). */
function publishedEntry(stdout, name) {
  const start = stdout.search(/[[{]/)
  const parsed = JSON.parse(stdout.slice(start))
  const entry = Array.isArray(parsed) ? parsed[0] : (parsed[name] ?? parsed)
  if (!entry?.files) throw new Error(`unexpected npm publish --json output:\n${stdout}`)
  return entry
}

/** Groups paths by their first folder, for a one-line summary. */
function summary(files) {
  const groups = new Map()
  for (const f of files) {
    const top = f.includes('/') ? `${f.split('/')[0]}/` : f
    groups.set(top, (groups.get(top) ?? 0) + 1)
  }
  return [...groups].map(([g, n]) => (g.endsWith('/') ? `${g} ${n}` : g)).join(', ')
}

/** `folder/: a, b, c` lines listing every file. */
function byFolder(files) {
  const folders = new Map()
  for (const f of files) {
    const cut = f.lastIndexOf('/')
    const folder = cut < 0 ? '.' : f.slice(0, cut + 1)
    folders.set(folder, [...(folders.get(folder) ?? []), f.slice(cut + 1)])
  }
  return [...folders].map(([folder, names]) => `${folder}: ${names.join(', ')}`)
}

/**
 * @param {{ root: string, project: string, node: string, npmCli: string, env: object, registry: string,
 *   main: { path: string, name: string }, platform: { path: string, name: string, platform: string },
 *   ok: Function, fail: Function, verbose: boolean }} t
 */
export function checkPublishDryRun({ root, project, node, npmCli, env, registry, main, platform, ok, fail, verbose }) {
  const binary = `vecdex.${platform.platform}.node`
  const packages = [
    { tarball: platform, expected: expectedPlatformFiles(binary), isMain: false },
    { tarball: main, expected: expectedMainFiles(root), isMain: true },
  ]
  for (const { tarball, expected, isMain } of packages) {
    const result = spawnSync(node, [npmCli, 'publish', tarball.path, '--dry-run', '--json', '--offline', `--registry=${registry}`, '--access', 'public'], {
      cwd: project,
      env,
      encoding: 'utf8',
      timeout: 90_000,
    })
    if (result.status !== 0) fail(`npm publish --dry-run ${tarball.name} exited with ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`)
    const warnings = result.stderr
      .split('\n')
      .filter((l) => /^npm warn/i.test(l) && !/requires you to be logged in/.test(l))
    if (warnings.length > 0) fail(`npm publish --dry-run ${tarball.name} warned:\n  ${warnings.join('\n  ')}`)
    if (!/\(dry-run\)/.test(result.stderr)) fail(`npm publish --dry-run ${tarball.name} did not say it was a dry run:\n${result.stderr}`)
    const entry = publishedEntry(result.stdout, tarball.name)
    const files = entry.files.map((f) => f.path).sort()
    // The maps' sources, read from the copy npm installed from this very tarball.
    const maps = isMain ? mapSources(join(project, 'node_modules', 'vecdex'), files) : new Map()
    const problems = fileListProblems(files, expected, { main: isMain, maps })
    if (problems.length > 0) fail(`npm publish --dry-run ${tarball.name} would publish the wrong files:\n  ${problems.join('\n  ')}`)
    ok(`npm publish --dry-run ${entry.id}: succeeds offline; ${files.length} files as expected (${summary(files)}); ${entry.size} bytes packed`)
    // The list itself, one line per folder (every file with --verbose on a line of its own).
    if (verbose) for (const f of files) console.log(`          ${f}`)
    else for (const line of byFolder(files)) console.log(`          ${line}`)
  }
}

/** `npm publish --dry-run` in the repository runs prepublishOnly, which must refuse. */
export function checkGuardRefuses({ root, node, npmCli, registry, ok, fail }) {
  // The repository's own environment (the guard needs its git, typescript and addon), but a dead
  // registry: nothing could be published even if the guard let it through.
  const env = { ...process.env, npm_config_registry: registry, npm_config_update_notifier: 'false' }
  const result = spawnSync(node, [npmCli, 'publish', '--dry-run', `--registry=${registry}`], { cwd: root, env, encoding: 'utf8', timeout: 300_000 })
  const output = `${result.stdout}${result.stderr}`
  if (result.status === 0) fail(`npm publish --dry-run from the repository was not refused:\n${output}`)
  if (!/publish guard: refusing/.test(output)) fail(`npm publish --dry-run from the repository failed, but not by the prepublishOnly guard:\n${output}`)
  if (!/optionalDependencies lack vecdex-/.test(output)) fail(`the publish guard refused without naming the missing platform packages:\n${output}`)
  const reasons = output.split('\n').filter((l) => /^\s+- /.test(l)).map((l) => l.trim().slice(2).split(' (')[0].slice(0, 80))
  ok(`npm publish from the repository: refused by prepublishOnly (${reasons.join('; ')})`)
}
