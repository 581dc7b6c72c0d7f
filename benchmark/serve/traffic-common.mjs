// Shared pieces of the soak and bad-traffic checks of `npm run bench -- --suite serve`: starting a
// `vecdex serve` child on a loopback port, raw HTTP requests with full control of headers and body
// bytes (malformed traffic needs that; fetch normalises too much), the server's RSS from /proc, and
// building a collection from a benchmark dataset over HTTP.
//
// The server is always a child process (`node bin/vecdex.mjs serve --port 0 ...`): the load comes
// from this process, over 127.0.0.1 only.

import fs from 'node:fs'
import http from 'node:http'
import { launchServer } from './launch.mjs'

/**
 * @typedef {object} ServerHandle
 * @property {number} pid           the server process (node running bin/vecdex.mjs serve)
 * @property {string} url           http://127.0.0.1:PORT
 * @property {number} port
 * @property {Promise<{ code: number | null, signal: string | null }>} exited
 * @property {() => boolean} alive  false once the child has exited
 * @property {(signal?: NodeJS.Signals) => void} kill
 * @property {() => string} output  the last lines of its stdout and stderr (for failure reports)
 */

/**
 * Starts `vecdex serve` on a free loopback port and resolves once it serves. `launch` is the
 * suite's launcher (launch.mjs `launchServer`, the default), passed in so a test can substitute it.
 * @param {{ dataDir?: string, args?: string[], env?: Record<string, string>, log?: (m: string) => void, launch?: Function, logLevel?: string }} opts
 *   args: extra `vecdex serve` options (e.g. --no-batching); env: extra environment of the child
 * @returns {Promise<ServerHandle>}
 */
export async function startServer({ dataDir, args = [], env = {}, log = () => {}, launch = launchServer, logLevel = 'info' }) {
  // info: vecdex serve logs requests only with --log-requests, so info is events and errors.
  const argv = ['--log-level', logLevel]
  if (dataDir) argv.push('--data', dataDir)
  const s = await launch({ command: 'vecdex', args: [...argv, ...args], env, log })
  let exitedState = null
  s.exited.then((st) => {
    exitedState = st
  })
  return {
    pid: s.pid,
    port: s.port,
    url: s.address,
    exited: s.exited,
    alive: () => exitedState === null && s.child.exitCode === null && s.child.signalCode === null,
    kill: (signal = 'SIGTERM') => {
      if (exitedState === null) s.child.kill(signal)
    },
    output: () => s.logs().slice(-40).join('\n'),
  }
}

/** Stops a server with `signal` and waits up to `timeoutMs` for it to exit. */
export async function stopServer(server, signal = 'SIGTERM', timeoutMs = 120_000) {
  server.kill(signal)
  let timer
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs)
  })
  const state = await Promise.race([server.exited, timeout])
  clearTimeout(timer)
  if (state === null) {
    server.kill('SIGKILL')
    await server.exited
    return { code: null, signal: 'SIGKILL', timedOut: true }
  }
  return { ...state, timedOut: false }
}

/** Resident set size of a process in bytes (VmRSS of /proc/PID/status), or NaN if unreadable. */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : NaN
  } catch {
    return NaN
  }
}

/**
 * @typedef {object} Reply
 * @property {number} status      0 when no response arrived
 * @property {Record<string, string | string[] | undefined>} headers
 * @property {string} text
 * @property {any} json           parsed body, or undefined
 * @property {string} [error]     a transport failure: ECONNRESET, ECONNREFUSED, timeout, ...
 * @property {number} ms
 */

/**
 * One HTTP request. `body` may be an object (sent as JSON), a string or a Buffer (sent as is).
 * `headers` are sent exactly; a JSON object body gets content-type application/json unless
 * headers say otherwise. Never throws: transport errors come back in `error`.
 * @returns {Promise<Reply>}
 */
export function request(url, { method = 'GET', path: p = '/', body, headers = {}, timeoutMs = 30_000, agent } = {}) {
  const started = performance.now()
  let payload
  const h = { ...headers }
  if (body !== undefined) {
    if (Buffer.isBuffer(body) || typeof body === 'string') payload = body
    else {
      payload = JSON.stringify(body)
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json'
    }
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-length' || k.toLowerCase() === 'transfer-encoding')) h['content-length'] = String(Buffer.byteLength(payload))
  }
  return new Promise((resolve) => {
    let settled = false
    const finish = (reply) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ ...reply, ms: performance.now() - started })
    }
    const req = http.request(url + p, { method, headers: h, agent: agent ?? false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        finish({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
      res.on('error', (e) => finish({ status: res.statusCode ?? 0, headers: res.headers, text: '', json: undefined, error: e.code ?? e.message }))
    })
    const timer = setTimeout(() => {
      req.destroy(new Error('timeout'))
      finish({ status: 0, headers: {}, text: '', json: undefined, error: `timeout after ${timeoutMs} ms` })
    }, timeoutMs)
    req.on('error', (e) => finish({ status: 0, headers: {}, text: '', json: undefined, error: e.code ?? e.message }))
    if (payload !== undefined) req.end(payload)
    else req.end()
  })
}

/** Calls `request` and throws with the exact exchange unless the status is 2xx. */
export async function must(url, opts) {
  const r = await request(url, opts)
  if (r.status < 200 || r.status >= 300) {
    const sent = opts.body === undefined ? '' : ` ${truncate(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body), 300)}`
    throw new Error(`${opts.method ?? 'GET'} ${opts.path} → ${r.status || r.error} ${truncate(r.text, 500)} (sent${sent})`)
  }
  return r.json
}

export function truncate(text, max) {
  const s = String(text ?? '')
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s
}

/** Row `i` of a row-major Float32Array as a plain array of numbers (JSON-ready). */
export function row(matrix, dim, i) {
  return Array.from(matrix.subarray(i * dim, (i + 1) * dim))
}

/** The dataset's dimension count, whatever the loader calls it. */
export function dimsOf(dataset) {
  return dataset.dim ?? dataset.dims ?? dataset.dimensions
}

/** The dataset's base vectors (Float32Array, row-major). */
export function baseOf(dataset) {
  return dataset.base ?? dataset.vectors
}

/**
 * Creates collection `name` and upserts base rows 0 … count − 1 (ids = row numbers; metadata and
 * text from `metadataOf(i)` / `textOf(i)` when given) in batches well under any sane body limit.
 */
export async function buildCollection(url, { name, dataset, count, index = 'hnsw', fields, metadataOf, textOf, batch = 250, log = () => {}, agent, extra = {} }) {
  const dim = dimsOf(dataset)
  const base = baseOf(dataset)
  const create = { name, dimensions: dim, metric: dataset.metric, index, ...extra }
  if (fields) create.fields = fields
  await must(url, { method: 'POST', path: '/collections', body: create, agent })
  const started = performance.now()
  let lastLog = started
  for (let from = 0; from < count; from += batch) {
    const items = []
    for (let i = from; i < Math.min(count, from + batch); i++) {
      const item = { id: i, vector: row(base, dim, i) }
      const metadata = metadataOf?.(i)
      if (metadata) item.metadata = metadata
      const text = textOf?.(i)
      if (text !== undefined) item.text = text
      items.push(item)
    }
    await must(url, { method: 'POST', path: `/collections/${name}/upsert`, body: { items }, agent, timeoutMs: 300_000 })
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now()
      log(`${name}: ${Math.min(count, from + batch).toLocaleString('en-US')} / ${count.toLocaleString('en-US')} upserted`)
    }
  }
  return { seconds: (performance.now() - started) / 1e3 }
}

/** Minimal `--name value` / `--flag` parsing for the standalone runners. */
export function cliArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i])
    if (!m) throw new Error(`unexpected argument ${argv[i]}`)
    if (m[2] !== undefined) out[m[1]] = m[2]
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[m[1]] = argv[++i]
    else out[m[1]] = true
  }
  return out
}
