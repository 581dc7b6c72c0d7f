// `vecdex serve` and `vecdex/serve` from the installed package, with the dependencies the offline
// install put there (package-test/dependencies.mjs):
//
//   cli      `vecdex serve --help` names --port; `vecdex serve --port 0 --data <dir>` logs its
//            "vecdex serve listening" JSON line with the address, answers GET /health (200),
//            creates a collection, upserts, finds the nearest item, serves /metrics (Prometheus
//            text, prom-client) and /openapi.json, and on SIGTERM saves the collection into
//            <dir> and exits 0 within seconds;
//   library  require('vecdex/serve') and import('vecdex/serve') give one and the same
//            createServer (the ES module entry re-exports the CommonJS build), resolved inside
//            node_modules/vecdex/dist/; the required one starts a server on port 0 that answers
//            /health and closes;
//   engines  the server process records every file it loads through require(): no dependency
//            whose engines.node leaves out part of vecdex's range (engines.mjs) may be among
//            them, so that such a package cannot break vecdex on a Node version vecdex claims.

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, sep } from 'node:path'

// Preloaded into the server (NODE_OPTIONS --require): every file resolved for require() (which
// CommonJS code, and require() of an ES module, go through) and every module in require.cache,
// written out when the process exits.
const TRACER = String.raw`'use strict'
const Module = require('node:module')
const fs = require('node:fs')
const seen = new Set()
const resolveFilename = Module._resolveFilename
Module._resolveFilename = function (...args) {
  const file = resolveFilename.apply(this, args)
  seen.add(file)
  return file
}
process.on('exit', () => {
  for (const file of Object.keys(require.cache)) seen.add(file)
  fs.writeFileSync(process.env.VECDEX_TRACE_OUT, JSON.stringify([...seen]))
})
`

const LIBRARY_CJS = String.raw`'use strict'
const assert = require('node:assert')
const path = require('node:path')
;(async () => {
  const serve = require('vecdex/serve')
  assert.equal(typeof serve.createServer, 'function', 'require("vecdex/serve").createServer is ' + typeof serve.createServer)
  const entry = path.relative(process.cwd(), require.resolve('vecdex/serve')).split(path.sep).join('/')
  assert.equal(entry, 'node_modules/vecdex/dist/serve.js')
  const server = await serve.createServer({ port: 0, logger: false })
  const address = await server.listen()
  const response = await fetch(address + '/health')
  assert.equal(response.status, 200, 'GET /health: ' + response.status)
  await server.close()
  console.log("require('vecdex/serve'): " + entry + ', createServer started ' + address + ', /health 200, closed')
})().catch((error) => {
  console.error(error.stack)
  process.exitCode = 1
})
`

const LIBRARY_ESM = String.raw`import assert from 'node:assert'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import * as serve from 'vecdex/serve'
const require = createRequire(import.meta.url)
assert.equal(typeof serve.createServer, 'function', 'import("vecdex/serve").createServer is ' + typeof serve.createServer)
const entry = fileURLToPath(import.meta.resolve('vecdex/serve'))
assert.ok(entry.replaceAll('\\', '/').endsWith('/node_modules/vecdex/dist/serve.mjs'), 'vecdex/serve imports ' + entry)
assert.equal(serve.createServer, require('vecdex/serve').createServer, 'the ES module entry has a createServer of its own')
console.log("import('vecdex/serve'): node_modules/vecdex/dist/serve.mjs, the same createServer as require()")
`

const request = async (address, method, path, body) => {
  const response = await fetch(address + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await response.text()
  return { status: response.status, type: response.headers.get('content-type') ?? '', text }
}

/** Waits for `child` to exit, up to `ms`: { code, signal } or null on timeout. */
function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

/**
 * @param {{ project: string, node: string, env: object, isWindows: boolean,
 *   mustNotLoad: { name: string, version: string, range: string, chain: string[], dir: string }[],
 *   dependencies: { name: string, dir: string }[], ok: Function, fail: Function }} t
 *   dependencies: the installed production closure (checkInstalledDependencies)
 */
export async function checkServe({ project, node, env, isWindows, mustNotLoad, dependencies, ok, fail }) {
  const installed = join(project, 'node_modules', 'vecdex')
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'))
  if (!manifest.exports?.['./serve']) fail("serve: the installed vecdex's package.json exports no ./serve")
  const shim = join(project, 'node_modules', '.bin', isWindows ? 'vecdex.cmd' : 'vecdex')

  // 1. --help, through the bin shim users run.
  const help = spawnSync(shim, ['serve', '--help'], { cwd: project, env, encoding: 'utf8', timeout: 60_000, shell: isWindows })
  if (help.status !== 0) fail(`serve: vecdex serve --help exited with ${help.status ?? help.signal}:\n${help.stdout}${help.stderr}`)
  if (!/--port\b/.test(help.stdout)) fail(`serve: vecdex serve --help does not name --port:\n${help.stdout}`)
  ok(`vecdex serve --help: exit 0, ${help.stdout.trim().split('\n').length} lines, names --port`)

  // 2. The command, run as users run it (the shim; on Windows node and the bin file, so that
  // the signal reaches vecdex and not cmd.exe), with the require() tracer preloaded.
  const data = join(project, 'serve-data')
  mkdirSync(data)
  const tracer = join(project, 'serve-tracer.cjs')
  const traceOut = join(project, 'serve-trace.json')
  writeFileSync(tracer, TRACER)
  const serveEnv = { ...env, NODE_OPTIONS: `--require "${tracer.split(sep).join('/')}"`, VECDEX_TRACE_OUT: traceOut }
  const [command, args] = isWindows ? [node, [join(installed, 'bin', 'vecdex.mjs')]] : [shim, []]
  const started = Date.now()
  const child = spawn(command, [...args, 'serve', '--port', '0', '--data', data, '--threads', '1'], { cwd: project, env: serveEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  const said = () => `${stdout}${stderr}`.trim().split('\n').slice(-20).join('\n')
  try {
    const listening = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "vecdex serve listening" line within 30 s')), 30_000)
      child.once('exit', (code, signal) => reject(new Error(`exited with ${code ?? signal} before listening`)))
      child.once('error', reject)
      child.stdout.setEncoding('utf8').on('data', (chunk) => {
        stdout += chunk
        for (const line of stdout.split('\n')) {
          let record
          try {
            record = JSON.parse(line)
          } catch {
            continue
          }
          if (record.msg === 'vecdex serve listening' && typeof record.address === 'string') {
            clearTimeout(timer)
            resolve(record)
          }
        }
      })
    }).catch((error) => fail(`serve: vecdex serve --port 0 --data serve-data: ${error.message}:\n${said()}`))
    const address = listening.address
    if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(address)) fail(`serve: listening on ${address}, not on 127.0.0.1 (the default host)`)
    const upMs = Date.now() - started

    const health = await request(address, 'GET', '/health')
    if (health.status !== 200 || JSON.parse(health.text).status !== 'ok') fail(`serve: GET /health answered ${health.status} ${health.text}`)
    const created = await request(address, 'POST', '/collections', { name: 'smoke', dimensions: 3, index: 'flat' })
    if (created.status !== 201) fail(`serve: POST /collections answered ${created.status} ${created.text}`)
    const items = [
      { id: 1, vector: [1, 0, 0], metadata: { tag: 'a' } },
      { id: 2, vector: [0, 1, 0], metadata: { tag: 'b' } },
      { id: 3, vector: [0, 0, 1], metadata: { tag: 'c' } },
    ]
    const upserted = await request(address, 'POST', '/collections/smoke/upsert', { items })
    if (upserted.status !== 200 || JSON.parse(upserted.text).upserted !== 3) fail(`serve: upsert answered ${upserted.status} ${upserted.text}`)
    const found = await request(address, 'POST', '/collections/smoke/search', { vector: [0.1, 0.9, 0], k: 1 })
    const hit = found.status === 200 ? JSON.parse(found.text).hits?.[0] : undefined
    if (String(hit?.id) !== '2') fail(`serve: search for [0.1, 0.9, 0] answered ${found.status} ${found.text}, not item 2`)
    const metrics = await request(address, 'GET', '/metrics')
    if (metrics.status !== 200 || !/^text\/plain/.test(metrics.type) || !/^# TYPE \w+ (counter|gauge|histogram|summary)$/m.test(metrics.text)) {
      fail(`serve: GET /metrics answered ${metrics.status} ${metrics.type}:\n${metrics.text.slice(0, 300)}`)
    }
    const openapi = await request(address, 'GET', '/openapi.json')
    const document = openapi.status === 200 ? JSON.parse(openapi.text) : {}
    if (!String(document.openapi).startsWith('3.') || !document.paths?.['/health']) fail(`serve: GET /openapi.json answered ${openapi.status} ${openapi.text.slice(0, 300)}`)

    // 3. SIGTERM: a graceful stop saves the changed collection and exits 0. (On Windows a
    // signal ends a process without running its handlers: only the exit is checked there.)
    const stopping = Date.now()
    child.kill('SIGTERM')
    const exit = await exited(child, 10_000)
    if (!exit) fail(`serve: vecdex serve still running 10 s after SIGTERM:\n${said()}`)
    const stopMs = Date.now() - stopping
    if (!isWindows) {
      if (exit.code !== 0) fail(`serve: vecdex serve exited with ${exit.code ?? exit.signal} after SIGTERM:\n${said()}`)
      if (!existsSync(join(data, 'smoke.vdx'))) fail(`serve: SIGTERM did not save the changed collection into serve-data/smoke.vdx:\n${said()}`)
    }
    ok(`vecdex serve --port 0 --data serve-data: listening on ${address} after ${upMs} ms; /health 200; create, upsert 3, search found item 2; /metrics Prometheus text; /openapi.json ${document.openapi}; SIGTERM: ${isWindows ? 'ended' : 'saved smoke.vdx, exit 0'} in ${stopMs} ms`)
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited(child, 5_000)
    }
  }

  // 4. What the server loaded: none of the dependencies whose engines leave out part of vecdex's.
  if (!existsSync(traceOut)) fail(`serve: the server wrote no list of the files it loaded (${traceOut})`)
  const files = JSON.parse(readFileSync(traceOut, 'utf8'))
  const owner = (file) => dependencies.filter((d) => file.startsWith(d.dir + sep)).sort((a, b) => b.dir.length - a.dir.length)[0]
  const loadedDeps = new Set(files.map(owner).filter(Boolean).map((d) => d.dir))
  const loadedNarrow = mustNotLoad.filter((d) => loadedDeps.has(d.dir))
  if (loadedNarrow.length > 0) {
    fail(`serve: the server loads ${loadedNarrow.map((d) => `${d.name}@${d.version} (${d.chain.join(' > ')}; engines.node ${d.range})`).join(', ')}, whose engines.node leaves out Node versions vecdex's engines.node admits`)
  }
  const narrowNote = mustNotLoad.length > 0 ? `; not ${mustNotLoad.map((d) => `${d.name}@${d.version} (engines.node ${d.range}, via ${d.chain.slice(0, -1).join(' > ')})`).join(', ')}` : ''
  ok(`vecdex serve loaded ${loadedDeps.size} of the ${dependencies.length} installed dependency packages through require()${narrowNote}`)

  // 5. The library entry, through require() and import.
  writeFileSync(join(project, 'serve-library.cjs'), LIBRARY_CJS)
  writeFileSync(join(project, 'serve-library.mjs'), LIBRARY_ESM)
  for (const entry of ['serve-library.cjs', 'serve-library.mjs']) {
    const result = spawnSync(node, [entry], { cwd: project, env, encoding: 'utf8', timeout: 60_000 })
    if (result.status !== 0) fail(`serve: node ${entry} exited with ${result.status ?? result.signal}:\n${`${result.stdout}${result.stderr}`.trim()}`)
    ok(result.stdout.trim())
  }
}
