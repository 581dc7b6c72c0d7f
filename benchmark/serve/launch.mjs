// Starts an HTTP server under test as a child process and stops it: the real `vecdex serve`
// (bin/vecdex.mjs) or a peer server (peer-server.mjs), for the serve suite's load test, soak and
// bad-traffic checks. The load generator stays in the bench process, so every request crosses a
// real socket between two processes.
//
// API (shared with soak.mjs and bad-traffic.mjs):
//
//   launchServer({ command: 'vecdex' | 'peer', engine?, args?, env?, cwd?, port?, timeoutMs?, log? })
//     → Promise<{ address, port, pid, child, logs(): string[], exited: Promise<{ code, signal }>,
//                 stop(signal = 'SIGTERM', { timeoutMs } = {}) → Promise<{ code, signal, forced }>,
//                 kill(signal = 'SIGKILL') → Promise<{ code, signal }> }>
//   - command 'vecdex': `node bin/vecdex.mjs serve --host 127.0.0.1 --port <port> ...args`
//     command 'peer':   `node benchmark/serve/peer-server.mjs --engine <engine> --host 127.0.0.1 --port <port> ...args`
//   - port: default a free loopback port picked here (so a server started with a quiet
//     --log-level is still found: its GET /health is polled as well as its stdout read);
//     0 = let the server pick, then its `… listening` log line (with "address") is the only signal.
//   - Resolves once the server logged its `… listening` line (JSON, with "address") or answered
//     GET /health with 200; rejects with the last log lines if it exits or times out first (the
//     child is killed then).
//   - logs(): the last MAX_LOG_LINES lines of the child's stdout and stderr, oldest first.
//   - stop(): sends `signal`, waits for the exit; after timeoutMs (default 30 s) sends SIGKILL
//     and reports forced: true. kill(): SIGKILL now (a crash, for the soak's restart check).
//   Every child still running when the bench process exits is killed.
//
//   freePort() → Promise<number>: a loopback port that was free a moment ago.
//   getJson(url, { method?, body?, headers?, timeoutMs? }) → Promise<{ status, body, headers }>:
//     one request over node:http (a fresh connection), for calibration and metric reads.

import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '..', '..')
const VECDEX_BIN = path.join(repoRoot, 'bin', 'vecdex.mjs')
const PEER_SERVER = path.join(here, 'peer-server.mjs')
/** Log lines kept per child: enough for a failure's context, bounded under a long soak. */
const MAX_LOG_LINES = 2000

/** Children still running, killed if the bench process exits first (a crash or Ctrl-C). */
const running = new Set()
let exitHook = false
function trackChild(child) {
  running.add(child)
  if (exitHook) return
  exitHook = true
  process.once('exit', () => {
    for (const c of running) {
      try {
        c.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
  })
}

/** A loopback port that was free a moment ago (the OS picks it; the server binds it next). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address())
      srv.close(() => resolve(port))
    })
  })
}

/**
 * One HTTP request with a JSON body (or none); the reply parsed as JSON when it is JSON.
 * A fresh connection each time (agent: false): calibration and metric reads must not hold
 * sockets open across a server restart.
 * @param {string} url
 * @param {{ method?: string, body?: unknown, raw?: string | Buffer, headers?: Record<string, string>, timeoutMs?: number }} [opts]
 *   body: serialised as JSON; raw: sent as is (with the given headers)
 * @returns {Promise<{ status: number, body: any, text: string, headers: http.IncomingHttpHeaders }>}
 */
export function getJson(url, { method, body, raw, headers = {}, timeoutMs = 30_000 } = {}) {
  const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body))
  const hdrs = { ...headers }
  if (payload !== undefined) {
    if (raw === undefined) hdrs['content-type'] ??= 'application/json'
    hdrs['content-length'] = String(Buffer.byteLength(payload))
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: method ?? (payload === undefined ? 'GET' : 'POST'), headers: hdrs, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed = text
        if (/json/.test(String(res.headers['content-type'] ?? ''))) {
          try {
            parsed = JSON.parse(text)
          } catch {
            parsed = text
          }
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text, headers: res.headers })
      })
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method ?? 'request'} ${url}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    if (payload !== undefined) req.write(payload)
    req.end()
  })
}

/**
 * Starts a server child process and waits until it serves (see the file header).
 * @param {{ command: 'vecdex' | 'peer', engine?: string, args?: string[], env?: Record<string, string>, cwd?: string,
 *           port?: number, timeoutMs?: number, log?: (msg: string) => void, nodeArgs?: string[] }} opts
 */
export async function launchServer({ command, engine, args = [], env = {}, cwd = repoRoot, port, timeoutMs = 180_000, log = () => {}, nodeArgs = [] }) {
  if (command !== 'vecdex' && command !== 'peer') throw new TypeError(`launchServer: command must be 'vecdex' or 'peer', got ${JSON.stringify(command)}`)
  if (command === 'peer' && !engine) throw new TypeError("launchServer: command 'peer' needs an engine")
  const chosenPort = port ?? (await freePort())
  const script = command === 'vecdex' ? [VECDEX_BIN, 'serve'] : [PEER_SERVER, '--engine', String(engine)]
  const argv = [...nodeArgs, ...script, '--host', '127.0.0.1', '--port', String(chosenPort), ...args]
  const label = command === 'vecdex' ? 'vecdex serve' : `peer ${engine}`
  const child = spawn(process.execPath, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  trackChild(child)

  const lines = []
  const keep = (line) => {
    lines.push(line)
    if (lines.length > MAX_LOG_LINES) lines.splice(0, lines.length - MAX_LOG_LINES)
  }
  /** @type {(address: string, port: number) => void} */
  let onListening = () => {}
  const splitter = (stream, tag) => {
    let partial = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk) => {
      partial += chunk
      let nl
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl)
        partial = partial.slice(nl + 1)
        keep(tag ? `${tag}${line}` : line)
        // Only JSON lines can be the listening line; the rest is kept as context.
        if (line.includes('listening') && line.startsWith('{')) {
          try {
            const entry = JSON.parse(line)
            if (typeof entry.msg === 'string' && entry.msg.endsWith('listening') && typeof entry.address === 'string') {
              onListening(entry.address, Number(entry.port ?? new URL(entry.address).port))
            }
          } catch {
            // not JSON after all
          }
        }
      }
    })
    stream.on('end', () => {
      if (partial) keep(tag ? `${tag}${partial}` : partial)
    })
  }
  splitter(child.stdout, '')
  splitter(child.stderr, '[stderr] ')

  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    })
  })
  const spawnError = new Promise((resolve) => child.once('error', resolve))

  const tail = () => lines.slice(-30).join('\n')
  let settled = false
  const ready = await new Promise((resolve, reject) => {
    const finish = (fn, value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      fn(value)
    }
    const timer = setTimeout(() => finish(reject, new Error(`${label} did not start within ${timeoutMs / 1000} s; last output:\n${tail()}`)), timeoutMs)
    onListening = (address, p) => finish(resolve, { address, port: p })
    exited.then(({ code, signal }) => finish(reject, new Error(`${label} exited (code ${code}, signal ${signal}) before listening; last output:\n${tail()}`)))
    spawnError.then((error) => finish(reject, new Error(`${label} could not be started: ${error?.message ?? error}`)))
    // A quiet log level may hide the listening line: poll /health on the port we chose.
    if (chosenPort > 0) {
      const address = `http://127.0.0.1:${chosenPort}`
      const poll = async () => {
        while (!settled) {
          try {
            const r = await getJson(`${address}/health`, { timeoutMs: 2000 })
            if (r.status === 200) return finish(resolve, { address, port: chosenPort })
          } catch {
            // not up yet
          }
          await new Promise((r) => setTimeout(r, 200))
        }
      }
      poll()
    }
  }).catch(async (error) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
    throw error
  })
  log(`${label} listening at ${ready.address} (pid ${child.pid})`)

  let stopping = null
  return {
    address: ready.address,
    port: ready.port,
    pid: child.pid,
    child,
    exited,
    logs: () => lines.slice(),
    /** @param {NodeJS.Signals} [signal] @param {{ timeoutMs?: number }} [opts] */
    stop(signal = 'SIGTERM', { timeoutMs: stopTimeout = 30_000 } = {}) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return { ...(await exited), forced: false }
        child.kill(signal)
        let timer
        const forced = await Promise.race([
          exited.then(() => false),
          new Promise((r) => {
            timer = setTimeout(() => r(true), stopTimeout)
          }),
        ])
        clearTimeout(timer)
        if (forced) child.kill('SIGKILL')
        return { ...(await exited), forced }
      })()
      return stopping
    },
    /** @param {NodeJS.Signals} [signal] */
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
