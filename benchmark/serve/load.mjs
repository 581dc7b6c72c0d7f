// The load generator of the serve suite: autocannon (a benchmark peer) in the bench process,
// over loopback, against a server child (launch.mjs). One level = a warm-up run, then a measured
// run of `durationSeconds` at a fixed number of connections, each connection sending its next
// request as soon as the previous answer arrives (closed loop, no pipelining).
//
// Request bodies are serialised once, before any timer (prepareBodies); each connection cycles
// through its own slice of the query set, starting at a different query, so concurrent requests
// carry different queries (identical ones arriving together would flatter a server's caches).
// Latency: every response's time from autocannon's 'response' event (float ms; autocannon's own
// histogram has 1 ms resolution, too coarse below a millisecond), exact percentiles over all
// of them. A sample of responses (one request body in SAMPLE_EVERY) is checked against the ids
// the same server returned for that query when asked sequentially, so a server that mixes up
// answers under load cannot pass.
// Server figures per level: GET /metrics before and after the measured run — prom-client's
// event-loop delay percentiles are reset at each scrape, so the second scrape covers the run —
// and process_cpu_seconds_total for the server's CPU use.

import { loadPeer } from '../workspace.mjs'
import { getJson } from './launch.mjs'
import { EVENT_LOOP_SAMPLING_MS } from './settings.mjs'

/** One request body in this many carries a response check (JSON.parse costs the client CPU). */
const SAMPLE_EVERY = 8
/** Requests per connection's slice, at least: short slices still rotate queries. */
const MIN_SLICE = 8
/** A server is idle again once a lone search takes at most this many times its idle latency. */
const DRAIN_FACTOR = 3
/** autocannon's per-request timeout, seconds: a slower answer counts as a timeout. */
export const REQUEST_TIMEOUT_SECONDS = 10

let autocannon
/** autocannon, or { error } when the peer is not installed. */
export function loadAutocannon() {
  if (autocannon === undefined) {
    const loaded = loadPeer('autocannon')
    autocannon = loaded.error ? { error: loaded.error } : { module: loaded.module, version: loaded.version }
  }
  return autocannon
}

/**
 * Request bodies for a search route, serialised once. Vector values are written with 9
 * significant digits — the shortest form that still reads back as the same float32 — as a
 * client sending float32 embeddings would.
 * @param {Float32Array} queries  q × dim, row-major
 * @param {number} q
 * @param {number} dim
 * @param {object} extra  the other body fields, e.g. { k, efSearch }
 * @returns {Buffer[]}
 */
export function prepareBodies(queries, q, dim, extra) {
  const out = new Array(q)
  const row = new Array(dim)
  for (let i = 0; i < q; i++) {
    for (let j = 0; j < dim; j++) row[j] = Number(queries[i * dim + j].toPrecision(9))
    out[i] = Buffer.from(JSON.stringify({ vector: row, ...extra }))
  }
  return out
}

/** The value of a Prometheus metric line `name{…} value` (the first one), or undefined. */
export function metricValue(text, name) {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm')
  const m = re.exec(text)
  return m ? Number(m[1]) : undefined
}

/** Reads a server's GET /metrics; undefined values when it has none. */
async function scrape(address) {
  try {
    const r = await getJson(`${address}/metrics`, { timeoutMs: 10_000 })
    if (r.status !== 200) return {}
    return {
      eventLoopP99: metricValue(r.text, 'nodejs_eventloop_lag_p99_seconds'),
      eventLoopMax: metricValue(r.text, 'nodejs_eventloop_lag_max_seconds'),
      cpuSeconds: metricValue(r.text, 'process_cpu_seconds_total'),
    }
  } catch {
    return {}
  }
}

/** A growable Float64Array of latencies. */
class Samples {
  constructor() {
    this.data = new Float64Array(1 << 16)
    this.length = 0
  }
  push(v) {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.length++] = v
  }
  /** Percentiles (nearest rank) of the samples, in their unit. */
  summary(ps) {
    const s = this.data.subarray(0, this.length).slice().sort()
    const at = (p) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : NaN)
    let sum = 0
    for (let i = 0; i < s.length; i++) sum += s[i]
    return { ...Object.fromEntries(ps.map((p) => [`p${String(p).replace('.', '')}`, at(p)])), mean: s.length ? sum / s.length : NaN, max: s.length ? s[s.length - 1] : NaN }
  }
}

/**
 * One autocannon run. Returns autocannon's result plus our latency samples and response checks.
 * @param {{ url: string, path: string, bodies: Buffer[], connections: number, seconds: number,
 *           check?: (query: number, status: number, body: string) => void }} opts
 */
function runOnce({ url, path, bodies, connections, seconds, check }) {
  const ac = loadAutocannon()
  if (ac.error) throw new Error(ac.error)
  const n = bodies.length
  const slice = Math.min(n, Math.max(MIN_SLICE, Math.ceil(n / connections)))
  const headers = { 'content-type': 'application/json' }
  let clientIndex = 0
  const latencies = new Samples()
  const status = {}
  return new Promise((resolve, reject) => {
    const instance = ac.module(
      {
        url,
        connections,
        pipelining: 1,
        duration: seconds,
        timeout: REQUEST_TIMEOUT_SECONDS,
        // A placeholder each connection replaces with its own slice (setupClient).
        requests: [{ method: 'POST', path, headers, body: bodies[0] }],
        setupClient(client) {
          const start = Math.floor((clientIndex++ * n) / connections)
          const requests = new Array(slice)
          for (let i = 0; i < slice; i++) {
            const query = (start + i) % n
            const request = { method: 'POST', path, headers, body: bodies[query] }
            if (check && query % SAMPLE_EVERY === 0) request.onResponse = (code, body) => check(query, code, body)
            requests[i] = request
          }
          client.setRequests(requests)
        },
      },
      (error, result) => (error ? reject(error) : resolve({ result, latencies, status })),
    )
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime)
      status[statusCode] = (status[statusCode] ?? 0) + 1
    })
  })
}

/** Seconds one search takes when nothing else is queued, for the drain test. */
async function probe(address, path, body) {
  const started = performance.now()
  const r = await getJson(`${address}${path}`, { raw: body, headers: { 'content-type': 'application/json' }, timeoutMs: 60_000 })
  if (r.status !== 200) throw new Error(`POST ${path}: HTTP ${r.status}: ${r.text.slice(0, 200)}`)
  return (performance.now() - started) / 1000
}

/**
 * The median time of a few sequential searches on an idle server: the yardstick of `drain`.
 * @param {string} address
 * @param {string} path
 * @param {Buffer[]} bodies
 */
export async function idleLatency(address, path, bodies, count = 20) {
  const times = []
  for (let i = 0; i < count; i++) times.push(await probe(address, path, bodies[i % bodies.length]))
  times.sort((a, b) => a - b)
  return times[times.length >> 1]
}

/**
 * Waits until the server has finished the work a run left behind. When autocannon stops, it
 * closes its connections with requests still queued in the server (up to one per connection);
 * a server that cannot drop them (a LanceDB query already started, a synchronous search already
 * read) still runs them, and they would eat into the next run. Sends one search at a time until
 * one answers within DRAIN_FACTOR × the idle latency (+ 2 ms), or gives up after timeoutSeconds.
 * @returns {Promise<{ seconds: number, drained: boolean }>}
 */
export async function drain(address, path, body, idleSeconds, timeoutSeconds = 60) {
  const started = performance.now()
  const limit = DRAIN_FACTOR * idleSeconds + 0.002
  while ((performance.now() - started) / 1000 < timeoutSeconds) {
    if ((await probe(address, path, body)) <= limit) return { seconds: (performance.now() - started) / 1000, drained: true }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { seconds: (performance.now() - started) / 1000, drained: false }
}

/**
 * One load level: warm-up, then the measured run, with the server's metrics around it.
 * @param {{ address: string, path: string, bodies: Buffer[], connections: number, seconds: number,
 *           warmupSeconds: number, idleSeconds: number, reference?: (query: number) => { ids: number[], recall: number } | undefined,
 *           recallOf?: (query: number, ids: number[]) => number }} opts
 *   idleSeconds: idleLatency() of this server, for drain();
 *   reference: the ids (and their recall) the server gave for a query when asked alone;
 *   recallOf: recall@k of ids for a query, for answers that differ from the reference
 */
export async function runLevel({ address, path, bodies, connections, seconds, warmupSeconds, idleSeconds, reference, recallOf }) {
  const drains = []
  if (warmupSeconds > 0) {
    await runOnce({ url: address, path, bodies, connections, seconds: warmupSeconds })
    drains.push(await drain(address, path, bodies[0], idleSeconds))
  }
  const checks = { sampled: 0, differing: 0, unreadable: 0, recallSum: 0 }
  const check = reference
    ? (query, code, body) => {
        if (code !== 200) return
        const ref = reference(query)
        if (!ref) return
        let ids
        try {
          ids = JSON.parse(body).hits.map((h) => Number(h.id))
        } catch {
          checks.unreadable++
          return
        }
        checks.sampled++
        const same = ids.length === ref.ids.length && ids.every((id, i) => id === ref.ids[i])
        if (same) checks.recallSum += ref.recall
        else {
          checks.differing++
          checks.recallSum += recallOf ? recallOf(query, ids) : 0
        }
      }
    : undefined
  const before = await scrape(address)
  const cpuBefore = process.cpuUsage()
  const wallBefore = performance.now()
  const { result, latencies, status } = await runOnce({ url: address, path, bodies, connections, seconds, check })
  const wall = (performance.now() - wallBefore) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const after = await scrape(address)
  // Leaves the server idle for whatever comes next (the next level, or another server's run).
  drains.push(await drain(address, path, bodies[0], idleSeconds))
  const ok = Object.entries(status).reduce((sum, [code, count]) => (Number(code) >= 200 && Number(code) < 300 ? sum + count : sum), 0)
  const lat = latencies.summary([50, 90, 99, 99.9])
  // autocannon's duration runs from before its connections open to the sample tick after the
  // stop: the measured span of the run.
  const duration = result.duration || seconds
  return {
    connections,
    seconds: duration,
    requests: latencies.length,
    ok,
    qps: ok / duration,
    latencyMs: { p50: lat.p50, p90: lat.p90, p99: lat.p99, p999: lat.p999, mean: lat.mean, max: lat.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    resets: result.resets,
    statusCodes: status,
    // The delay proper: the wake-up interval's excess over the sampling interval.
    eventLoopP99Ms: after.eventLoopP99 !== undefined ? Math.max(0, after.eventLoopP99 * 1000 - EVENT_LOOP_SAMPLING_MS) : undefined,
    eventLoopMaxMs: after.eventLoopMax !== undefined ? Math.max(0, after.eventLoopMax * 1000 - EVENT_LOOP_SAMPLING_MS) : undefined,
    eventLoopRawP99Ms: after.eventLoopP99 !== undefined ? after.eventLoopP99 * 1000 : undefined,
    serverCpuCores: after.cpuSeconds !== undefined && before.cpuSeconds !== undefined ? (after.cpuSeconds - before.cpuSeconds) / wall : undefined,
    clientCpuCores: (cpu.user + cpu.system) / 1e6 / wall,
    drainSeconds: drains.map((d) => +d.seconds.toFixed(3)),
    drained: drains.every((d) => d.drained),
    checks: reference ? { sampled: checks.sampled, differing: checks.differing, unreadable: checks.unreadable, recall: checks.sampled ? checks.recallSum / checks.sampled : undefined } : undefined,
  }
}
