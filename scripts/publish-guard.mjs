#!/usr/bin/env node
// prepublishOnly: refuses `npm publish` from the repository unless what would be published is
// what a release publishes. The release itself (release.yml) publishes the tarball made by
// scripts/pack.mjs, which carries no scripts, so this guard stops the other way in: someone
// typing `npm publish` in a checkout. It refuses unless
//
//   - dist/ is exactly what tsc emits from the current lib/ (release-checks.mjs distProblems);
//   - index.js, index.d.ts and the built addon export the same names (bindingProblems);
//   - the git work tree is committed, but for the optionalDependencies napi pre-publish writes;
//   - optionalDependencies are the platform packages at this version, each already on the
//     registry (otherwise users would install vecdex without a binary);
//   - npm would pack exactly the expected files (package-files.mjs): no tests, no benchmark
//     peers or output, no source map without its source.
//
// Every problem is listed; exit 1 if there is one. `node scripts/publish-guard.mjs` runs it alone.

import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PackageError } from './package-files.mjs'
import { bindingProblems, distProblems, gitProblems, packedFileProblems, platformProblems } from './release-checks.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

async function main() {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const problems = [
    ...gitProblems(root),
    ...(await platformProblems(root, manifest, { registry: true })),
    ...distProblems(root),
    ...bindingProblems(root, manifest, { requireBinary: true }),
    ...packedFileProblems(root),
  ]
  if (problems.length === 0) {
    console.error(`publish guard: ${manifest.name} ${manifest.version} is ready to publish`)
    return 0
  }
  console.error(`publish guard: refusing to publish ${manifest.name} ${manifest.version} from the repository:`)
  for (const problem of problems) console.error(`  - ${problem}`)
  console.error('A release publishes the tarballs of scripts/pack.mjs from release.yml (tag v<version>).')
  return 1
}

try {
  process.exitCode = await main()
} catch (error) {
  console.error(`publish guard: ${error instanceof PackageError ? error.message : error.stack}`)
  process.exitCode = 1
}
