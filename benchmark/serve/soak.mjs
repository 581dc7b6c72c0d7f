// Soak check of `vecdex serve` (issue 20): mixed traffic for minutes against one server, then
// crash and restart checks on the files it saved.
//
//   1. Build: collection `soak` from the dataset's base vectors (ids = row numbers), then save.
//   2. Soak (durationSeconds, default 600): `connections` client loops send 90% search, 9% upsert
//      (1–3 items: overwrites of live ids, and about one in twelve a new id — fresh or a deleted
//      one again, so the size stays about level), 1% delete (1–2 live ids); POST save every
//      `saveEverySeconds`; the server's VmRSS sampled every 2 s. Checks: no error response and no
//      transport error; no search hit that was deleted before the search was sent; RSS growth
//      from the end of the first minute to the end < 5%.
//   3. Crashes (`kills` times): traffic, a save, SIGKILL at a random moment within the save's
//      expected duration; restart on the same --data dir; the loaded collection must equal the
//      state at one completed save (the last acknowledged one, or one in flight at the kill).
//   4. Graceful restart: SIGTERM under traffic; exit code 0; restart; every acknowledged upsert
//      present with the exact metadata/text and vector sent, every acknowledged delete absent.
//
// How states are known exactly under 32 concurrent connections: an id is never in two requests
// at once (a client takes a lock on each id it writes), so each id's writes form one sequence.
// Every send and acknowledgement gets a number from one counter; a save acknowledged at event B
// and sent at event A holds, for each id, the state after some prefix of its writes that includes
// every write acknowledged before A and no write sent after B. A write without an answer (the
// server was killed) may or may not have happened: that id takes no more writes until the next
// restart settles it.
//
// Upserted items carry metadata {seq, tag, nested} and text `soak item <seq>`, and a vector
// derived from seq, so the loaded item names the write it came from and its content is checked.
// Base row i carries the same shape with seq = −1 − i.
//
// Standalone: node benchmark/serve/soak.mjs [--seconds 60] [--dataset glove-100k] [--limit 20000]
//             [--connections 32] [--kills 3] [--save-every 10] [--keep-data] [--json FILE]
//             [--server-args "--no-batching"] [--server-env MALLOC_ARENA_MAX=2]

import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { fileURLToPath } from 'node:url'
import { mulberry32 } from '../datasets.mjs'
import { fmt, fmtBytes, fmtPercent, percentile, table } from '../report.mjs'
import { baseOf, buildCollection, cliArgs, dimsOf, must, request, row, rssBytes, startServer, stopServer, truncate } from './traffic-common.mjs'

const NAME = 'soak'
const RSS_LIMIT = 0.05
const RSS_SAMPLE_MS = 2000
const REQUEST_TIMEOUT_MS = 30_000
/** Probability that an upserted item takes a new id (fresh or deleted before). With 1–3 items per
 * upsert (9% of requests) and 1–2 ids per delete (1%), about as many ids arrive as leave. */
const NEW_ITEM_P = 1 / 12

/**
 * @param {{ repoRoot: string, dataset: any, log?: (m: string) => void, launch?: Function, dataDir?: string,
 *   durationSeconds?: number, connections?: number, kills?: number, saveEverySeconds?: number, limit?: number,
 *   maxRequests?: number, seed?: number, keepData?: boolean, serverArgs?: string[], serverEnv?: Record<string, string>,
 *   k?: number, efSearch?: number, threads?: number }} opts
 *   dataDir: the soak works in dataDir/soak (else a temporary folder), removed at the end unless keepData;
 *   limit: base rows of the dataset to load (default all); launch: launch.mjs launchServer or a stand-in;
 *   k, efSearch: of the searches (default 10, the collection's); threads: the server's --threads
 * @returns {Promise<{ markdown: string, json: object, ok: boolean }>}
 */
export async function runSoak(opts) {
  const log = opts.log ?? (() => {})
  const dataset = opts.dataset
  const dim = dimsOf(dataset)
  const base = baseOf(dataset)
  const nBase = Math.min(opts.limit ?? Infinity, base.length / dim)
  const cfg = {
    durationSeconds: opts.durationSeconds ?? 600,
    connections: opts.connections ?? 32,
    kills: opts.kills ?? 3,
    saveEverySeconds: opts.saveEverySeconds ?? 30,
    maxRequests: opts.maxRequests ?? 50_000_000,
    seed: opts.seed ?? 20,
    k: opts.k ?? 10,
    efSearch: opts.efSearch,
  }
  cfg.rssBaselineSeconds = cfg.durationSeconds >= 120 ? 60 : cfg.durationSeconds / 3
  const dataDir = opts.dataDir ? path.join(opts.dataDir, 'soak') : fs.mkdtempSync(path.join(os.tmpdir(), 'vecdex-soak-'))
  fs.rmSync(dataDir, { recursive: true, force: true })
  fs.mkdirSync(dataDir, { recursive: true })

  const failures = []
  const fail = (msg) => {
    failures.push(msg)
    log(`soak: FAIL ${msg}`)
  }
  const model = new Model({ nBase, dim, base, metric: dataset.metric, seed: cfg.seed })
  const queries = dataset.queries
  const nQueries = queries.length / dim
  const rand = mulberry32(cfg.seed)
  const agentOpts = { keepAlive: true, maxSockets: cfg.connections + 4 }
  let agent = new http.Agent(agentOpts)
  const serverArgs = [...(opts.threads ? ['--threads', String(opts.threads)] : []), ...(opts.serverArgs ?? [])]
  const launchOpts = { dataDir, log, launch: opts.launch, args: serverArgs, env: opts.serverEnv ?? {} }
  const json = { config: { ...cfg, dataset: dataset.name, nBase, dim, metric: dataset.metric, dataDir }, phases: {} }

  // ---- 1. build ------------------------------------------------------------------------------
  let server = null
  const pids = []
  try {
    server = await startServer(launchOpts)
    pids.push(server.pid)
    log(`soak: building ${NAME} from ${nBase.toLocaleString('en-US')} × ${dim} vectors of ${dataset.name} over HTTP`)
    const built = await buildCollection(server.url, { name: NAME, dataset, count: nBase, log, agent, metadataOf: (i) => model.metadataOf(-1 - i), textOf: (i) => model.textOf(-1 - i) })
    const saved = await must(server.url, { method: 'POST', path: `/collections/${NAME}/save`, agent, timeoutMs: 300_000 })
    json.phases.build = { seconds: built.seconds, savedBytes: saved.bytes }
    log(`soak: built in ${fmt(built.seconds)} s, saved ${fmtBytes(saved.bytes)}`)
    model.rebase(new Map(), model.ev)

    // ---- 2. soak with RSS samples ------------------------------------------------------------
    const rss = []
    const t0 = performance.now()
    const sampler = setInterval(() => rss.push({ t: (performance.now() - t0) / 1e3, bytes: rssBytes(server.pid) }), RSS_SAMPLE_MS)
    rss.push({ t: 0, bytes: rssBytes(server.pid) })
    // Where memory goes, to tell index growth from JS heap growth when RSS grows.
    const memory = [await memorySample(server.url, agent, 0)]
    const memorySampler = setInterval(async () => memory.push(await memorySample(server.url, agent, (performance.now() - t0) / 1e3)), 10_000)
    log(`soak: ${cfg.durationSeconds} s of traffic over ${cfg.connections} connections, save every ${cfg.saveEverySeconds} s`)
    const main = await traffic({ server, model, agent, cfg, rand, queries, nQueries, dim, seconds: cfg.durationSeconds, saveEverySeconds: cfg.saveEverySeconds, log })
    clearInterval(sampler)
    clearInterval(memorySampler)
    rss.push({ t: (performance.now() - t0) / 1e3, bytes: rssBytes(server.pid) })
    memory.push(await memorySample(server.url, agent, (performance.now() - t0) / 1e3))
    if (!server.alive()) fail(`the server (pid ${server.pid}) exited during the soak: ${JSON.stringify(await server.exited)}\n${server.output()}`)
    for (const e of main.unexpected) fail(`soak traffic: ${e}`)
    const baseline = rss.find((s) => s.t >= cfg.rssBaselineSeconds) ?? rss[rss.length - 1]
    const last = rss[rss.length - 1]
    const growth = (last.bytes - baseline.bytes) / baseline.bytes
    if (!(growth < RSS_LIMIT)) fail(`server RSS grew ${fmtPercent(growth)} from ${fmtBytes(baseline.bytes)} at ${fmt(baseline.t)} s to ${fmtBytes(last.bytes)} at ${fmt(last.t)} s (limit ${fmtPercent(RSS_LIMIT, 0)})`)
    json.phases.soak = { ...main.summary, rss: { baselineSeconds: baseline.t, baselineBytes: baseline.bytes, endBytes: last.bytes, maxBytes: Math.max(...rss.map((s) => s.bytes)), growth, samples: rss }, memory }

    // ---- 3. SIGKILL around saves -------------------------------------------------------------
    json.phases.kills = []
    for (let k = 0; k < cfg.kills; k++) {
      const cycle = await killCycle({ server, model, agent, cfg, rand, queries, nQueries, dim, log, index: k })
      for (const e of cycle.unexpected) fail(`kill ${k + 1} traffic: ${e}`)
      agent.destroy()
      agent = new http.Agent(agentOpts)
      server = await restart(launchOpts, fail, `after SIGKILL ${k + 1}`)
      if (!server) break
      pids.push(server.pid)
      const verdict = await verifyAgainstSaves({ url: server.url, model, agent, candidates: cycle.candidates, log })
      if (!verdict.ok) fail(`after SIGKILL ${k + 1}: the loaded collection matches no completed save: ${verdict.reasons.join('; ')}`)
      json.phases.kills.push({ ...cycle.summary, restartSeconds: server.startSeconds, verdict: verdict.summary })
      log(`soak: SIGKILL ${k + 1}: ${verdict.ok ? `restart serves ${verdict.summary.matched}` : 'MISMATCH'} (${verdict.summary.size.toLocaleString('en-US')} items)`)
      model.rebase(verdict.observed, model.ev)
    }

    // ---- 4. graceful restart under traffic ---------------------------------------------------
    if (server) {
      const graceful = await gracefulCycle({ server, model, agent, cfg, rand, queries, nQueries, dim, log })
      for (const e of graceful.unexpected) fail(`graceful shutdown traffic: ${e}`)
      if (graceful.exit.code !== 0 || graceful.exit.timedOut) fail(`SIGTERM: the server exited with ${JSON.stringify(graceful.exit)} (expected code 0 within 120 s)\n${server.output()}`)
      agent.destroy()
      agent = new http.Agent(agentOpts)
      server = await restart(launchOpts, fail, 'after SIGTERM')
      if (server) {
        pids.push(server.pid)
        const verdict = await verifyAgainstSaves({ url: server.url, model, agent, candidates: [{ label: 'shutdown', sendEv: Infinity, ackEv: Infinity }], log })
        if (!verdict.ok) fail(`after SIGTERM: acknowledged writes missing or wrong: ${verdict.reasons.join('; ')}`)
        const listed = await request(server.url, { path: '/collections', agent })
        const entry = listed.json?.collections?.find((c) => c.name === NAME)
        if (entry?.dirty) fail('after SIGTERM and restart the collection is listed as dirty')
        json.phases.graceful = { ...graceful.summary, exit: graceful.exit, restartSeconds: server.startSeconds, verdict: verdict.summary }
        log(`soak: graceful restart: ${verdict.ok ? 'every acknowledged write present' : 'MISMATCH'} (${verdict.summary.size.toLocaleString('en-US')} items; ${graceful.summary.shutdownSeconds.toFixed(2)} s to exit)`)
      }
    }
  } catch (error) {
    fail(`soak aborted: ${error?.stack ?? error}`)
  } finally {
    agent.destroy()
    if (server?.alive()) await stopServer(server, 'SIGTERM', 60_000)
    if (!opts.keepData) fs.rmSync(dataDir, { recursive: true, force: true })
  }
  json.pids = pids
  json.failures = failures
  const ok = failures.length === 0
  json.ok = ok
  return { markdown: render(json, cfg, failures), json, ok }
}

/** The collection's own memory estimate, its size, and the server's V8 heap and external memory. */
async function memorySample(url, agent, t) {
  const [c, m] = await Promise.all([request(url, { path: `/collections/${NAME}`, agent }), request(url, { path: '/metrics', agent })])
  const metric = (name) => {
    const line = m.text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN
  }
  return { t, size: c.json?.stats?.size ?? c.json?.size, collectionBytes: c.json?.stats?.memoryBytes, heapUsedBytes: metric('nodejs_heap_size_used_bytes'), heapTotalBytes: metric('nodejs_heap_size_total_bytes'), externalBytes: metric('nodejs_external_memory_bytes') }
}

/** Starts the server again on the same data; records how long that took. */
async function restart(launchOpts, fail, when) {
  const t = performance.now()
  try {
    const s = await startServer(launchOpts)
    s.startSeconds = (performance.now() - t) / 1e3
    return s
  } catch (error) {
    fail(`${when}: the server did not start again: ${error?.message ?? error}`)
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// The client's model of what the server holds.

/**
 * State of one id: null = absent, -1 = the dataset's base row (ids < nBase), seq ≥ 0 = written by
 * upsert number seq. Only ids that were written since the last restart have an Entry.
 */
class Entry {
  constructor(state) {
    /** State at the last rebase (the loaded collection). */
    this.base = state
    /** State after every acknowledged write. */
    this.state = state
    /** Writes since the rebase: { sendEv, ackEv (null: no answer), after }. */
    this.ops = []
    this.busy = false
    /** A write without an answer: no more writes until a restart settles the state. */
    this.frozen = false
    /** Event of the last acknowledged change. */
    this.changedEv = 0
  }
}

class Model {
  constructor({ nBase, dim, base, metric, seed }) {
    Object.assign(this, { nBase, dim, base, metric, seed })
    this.ev = 0
    this.seq = 0
    this.freshCounter = 0
    /** @type {Map<number | string, Entry>} */
    this.entries = new Map()
    this.present = new IdPool()
    this.absent = new IdPool()
    for (let i = 0; i < nBase; i++) this.present.add(i)
  }

  entry(id) {
    let e = this.entries.get(id)
    if (!e) {
      e = new Entry(typeof id === 'number' && id < this.nBase ? -1 : null)
      this.entries.set(id, e)
    }
    return e
  }

  /** After a verified restart: `observed` holds each touched id's loaded state. */
  rebase(observed, ev) {
    this.entries.clear()
    this.present = new IdPool()
    this.absent = new IdPool()
    for (let i = 0; i < this.nBase; i++) if (!observed.has(i)) this.present.add(i)
    for (const [id, state] of observed) {
      const e = new Entry(state)
      e.changedEv = ev
      this.entries.set(id, e)
      if (state === null) this.absent.add(id)
      else this.present.add(id)
    }
  }

  nextFreshId() {
    const n = this.freshCounter++
    // Half integer ids above the base rows, half string ids: both kinds must survive a save.
    return n % 2 ? `n${n}` : this.nBase + n
  }

  /** Metadata of upsert `seq`; base row i carries that of seq −1 − i, so overwrites replace
   * metadata of the same size and the collection's bytes stay level (RSS growth is then not data). */
  metadataOf(seq) {
    return { seq, tag: seq % 2 ? 'odd' : 'even', nested: { k: Math.abs(seq) % 13, list: [Math.abs(seq) % 3, 'x', true, null] } }
  }

  textOf(seq) {
    return `soak item ${seq}`
  }

  /** The vector sent by upsert `seq`: a base row plus seeded noise (never all zeros). */
  vectorOf(seq) {
    const src = (seq * 7919) % this.nBase
    const r = mulberry32(this.seed * 1_000_003 + seq)
    const out = new Array(this.dim)
    for (let j = 0; j < this.dim; j++) out[j] = Math.fround(this.base[src * this.dim + j] + (r() - 0.5) * 0.2)
    return out
  }

  /** What the server should store for `state` (cosine vectors are normalised on insert). */
  expectedVector(state, id) {
    const v = state === -1 ? row(this.base, this.dim, id) : this.vectorOf(state)
    if (this.metric !== 'cosine') return v
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0))
    return v.map((x) => x / norm)
  }

  /** Checks a loaded item against `state`; returns a reason, or '' when it matches. */
  contentProblem(id, state, item) {
    const seq = state === -1 ? -1 - id : state
    if (!isDeepStrictEqual(item.metadata, this.metadataOf(seq))) return `item ${JSON.stringify(id)} metadata ${truncate(JSON.stringify(item.metadata), 160)} ≠ sent ${JSON.stringify(this.metadataOf(seq))}`
    if (item.text !== this.textOf(seq)) return `item ${JSON.stringify(id)} text ${JSON.stringify(item.text)} ≠ sent ${JSON.stringify(this.textOf(seq))}`
    const want = this.expectedVector(state, id)
    const got = item.vector
    if (!Array.isArray(got) || got.length !== want.length) return `item ${JSON.stringify(id)} vector has ${Array.isArray(got) ? got.length : typeof got} values, expected ${want.length}`
    let worst = 0
    for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(got[j] - want[j]))
    // f32 storage of the exact f32 values sent; cosine adds one normalisation's rounding.
    if (!(worst <= 1e-5)) return `item ${JSON.stringify(id)} vector differs from the one sent (max |Δ| ${worst.toExponential(2)})`
    return ''
  }
}

/** A set with O(1) random pick and removal. */
class IdPool {
  constructor() {
    this.items = []
    this.pos = new Map()
  }
  get size() {
    return this.items.length
  }
  add(id) {
    if (this.pos.has(id)) return
    this.pos.set(id, this.items.length)
    this.items.push(id)
  }
  delete(id) {
    const i = this.pos.get(id)
    if (i === undefined) return
    const lastId = this.items.pop()
    if (i < this.items.length) {
      this.items[i] = lastId
      this.pos.set(lastId, i)
    }
    this.pos.delete(id)
  }
  /** A random member whose entry is free to write, or undefined after a few tries. */
  pick(rand, model) {
    for (let tries = 0; tries < 8 && this.items.length; tries++) {
      const id = this.items[Math.floor(rand() * this.items.length)]
      const e = model.entries.get(id)
      if (!e || (!e.busy && !e.frozen)) return id
    }
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Traffic.

/**
 * Runs `cfg.connections` client loops until `seconds` pass, `stop.requested` is set, or the
 * request budget is spent; saves every `saveEverySeconds` (0 = never) on a side loop.
 * `expected()` says whether a failure now is one the test caused (a kill or a shutdown).
 */
async function traffic({ server, model, agent, cfg, rand, queries, nQueries, dim, seconds, saveEverySeconds = 0, stop = { requested: false }, expected = () => false, saves = [], log }) {
  const stats = {
    search: { sent: 0, ok: 0, ms: [] },
    upsert: { sent: 0, ok: 0, ms: [], items: 0, newIds: 0 },
    delete: { sent: 0, ok: 0, ms: [], ids: 0 },
    save: { sent: 0, ok: 0, ms: [], bytes: 0 },
    expectedFailures: 0,
    staleHits: 0,
  }
  const unexpected = []
  const problem = (msg) => {
    if (unexpected.length < 20) unexpected.push(msg)
    else if (unexpected.length === 20) unexpected.push('… (more problems not listed)')
  }
  const deadline = performance.now() + seconds * 1e3
  const running = () => !stop.requested && performance.now() < deadline && model.requests < cfg.maxRequests
  model.requests ??= 0
  const url = server.url
  const started = performance.now()

  const describe = (path, body) => `POST ${path} ${truncate(JSON.stringify(body), 240)}`
  /** A failed request: expected during a kill/shutdown, else a problem. Returns whether the write may have happened. */
  const failed = (r, path, body) => {
    const refused = r.status === 503 && r.json?.code === 'ERR_SHUTTING_DOWN'
    if (expected() && (refused || r.status === 0)) {
      stats.expectedFailures++
      return r.error === 'ECONNREFUSED' || refused ? 'no' : 'maybe'
    }
    problem(`${describe(path, body)} → ${r.status ? `${r.status} ${truncate(r.text, 300)}` : r.error}`)
    return r.status >= 400 && r.status < 500 ? 'no' : 'maybe'
  }

  async function search() {
    const q = Math.floor(rand() * nQueries)
    const body = { vector: Array.from(queries.subarray(q * dim, (q + 1) * dim)), k: cfg.k, includeMetadata: rand() < 0.5 }
    if (cfg.efSearch) body.efSearch = cfg.efSearch
    const path = `/collections/${NAME}/search`
    const sendEv = ++model.ev
    stats.search.sent++
    const r = await request(url, { method: 'POST', path, body, agent, timeoutMs: REQUEST_TIMEOUT_MS })
    if (r.status !== 200) return void failed(r, path, body)
    stats.search.ok++
    stats.search.ms.push(r.ms)
    const hits = r.json?.hits
    if (!Array.isArray(hits) || hits.length > cfg.k) return void problem(`${describe(path, body)} → 200 without a hits array of ≤ ${cfg.k}: ${truncate(r.text, 200)}`)
    for (const h of hits) {
      const e = model.entries.get(h.id)
      const known = e !== undefined || (typeof h.id === 'number' && Number.isInteger(h.id) && h.id >= 0 && h.id < model.nBase)
      if (!known) problem(`${describe(path, body)} → a hit with id ${JSON.stringify(h.id)}, which was never written`)
      else if (e && e.state === null && !e.busy && !e.frozen && e.changedEv < sendEv) {
        stats.staleHits++
        problem(`${describe(path, body)} → hit ${JSON.stringify(h.id)}, deleted (acknowledged) before the search was sent`)
      }
    }
  }

  async function upsert() {
    const count = 1 + Math.floor(rand() * 3)
    const ids = []
    for (let i = 0; i < count; i++) {
      let id
      if (rand() < NEW_ITEM_P) id = rand() < 0.5 && model.absent.size ? model.absent.pick(rand, model) : model.nextFreshId()
      else id = model.present.pick(rand, model)
      if (id === undefined || ids.includes(id)) continue
      ids.push(id)
    }
    if (!ids.length) return
    const writes = ids.map((id) => {
      const seq = model.seq++
      const e = model.entry(id)
      e.busy = true
      return { id, seq, e, isNew: e.state === null }
    })
    const body = { items: writes.map((w) => ({ id: w.id, vector: model.vectorOf(w.seq), text: model.textOf(w.seq), metadata: model.metadataOf(w.seq) })) }
    const path = `/collections/${NAME}/upsert`
    const sendEv = ++model.ev
    const ops = writes.map((w) => {
      const op = { sendEv, ackEv: null, after: w.seq }
      w.e.ops.push(op)
      return op
    })
    stats.upsert.sent++
    model.requests++
    const r = await request(url, { method: 'POST', path, body, agent, timeoutMs: REQUEST_TIMEOUT_MS })
    const ackEv = ++model.ev
    if (r.status === 200 && r.json?.upserted === writes.length) {
      stats.upsert.ok++
      stats.upsert.ms.push(r.ms)
      stats.upsert.items += writes.length
      writes.forEach((w, i) => {
        ops[i].ackEv = ackEv
        w.e.state = w.seq
        w.e.changedEv = ackEv
        w.e.busy = false
        if (w.isNew) stats.upsert.newIds++
        model.absent.delete(w.id)
        model.present.add(w.id)
      })
      return
    }
    const may = r.status === 200 ? (problem(`${describe(path, body)} → 200 ${truncate(r.text, 200)} (expected upserted ${writes.length})`), 'maybe') : failed(r, path, body)
    settleFailed(model, writes, may)
  }

  async function del() {
    const count = 1 + Math.floor(rand() * 2)
    const ids = []
    for (let i = 0; i < count; i++) {
      const id = model.present.pick(rand, model)
      if (id !== undefined && !ids.includes(id)) ids.push(id)
    }
    if (!ids.length) return
    const writes = ids.map((id) => {
      const e = model.entry(id)
      e.busy = true
      return { id, e }
    })
    const body = { ids }
    const path = `/collections/${NAME}/delete`
    const sendEv = ++model.ev
    const ops = writes.map((w) => {
      const op = { sendEv, ackEv: null, after: null }
      w.e.ops.push(op)
      return op
    })
    stats.delete.sent++
    model.requests++
    const r = await request(url, { method: 'POST', path, body, agent, timeoutMs: REQUEST_TIMEOUT_MS })
    const ackEv = ++model.ev
    if (r.status === 200 && r.json?.deleted === writes.length) {
      stats.delete.ok++
      stats.delete.ms.push(r.ms)
      stats.delete.ids += writes.length
      writes.forEach((w, i) => {
        ops[i].ackEv = ackEv
        w.e.state = null
        w.e.changedEv = ackEv
        w.e.busy = false
        model.present.delete(w.id)
        model.absent.add(w.id)
      })
      return
    }
    const may = r.status === 200 ? (problem(`${describe(path, body)} → 200 ${truncate(r.text, 200)} (expected deleted ${writes.length}: every id was live and locked)`), 'maybe') : failed(r, path, body)
    settleFailed(model, writes, may)
  }

  async function client() {
    while (running()) {
      const x = rand()
      if (x < 0.9) {
        model.requests++
        await search()
      } else if (x < 0.99) await upsert()
      else await del()
    }
  }

  async function saver() {
    if (!saveEverySeconds) return
    while (running()) {
      const wait = Math.min(saveEverySeconds * 1e3, deadline - performance.now())
      await new Promise((r) => setTimeout(r, Math.max(0, wait)))
      if (!running()) return
      await saveNow({ url, model, agent, stats, saves, problem, expected })
    }
  }

  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1e3
    log(`soak: ${fmt(s)} s: ${stats.search.ok} searches, ${stats.upsert.ok} upserts, ${stats.delete.ok} deletes, ${stats.save.ok} saves${unexpected.length ? `, ${unexpected.length} problems` : ''}`)
  }, 30_000)
  await Promise.all([...Array.from({ length: cfg.connections }, client), saver()])
  clearInterval(progress)
  const elapsed = (performance.now() - started) / 1e3
  const lat = (s) => ({ p50Ms: percentile(s.ms, 50), p99Ms: percentile(s.ms, 99), maxMs: s.ms.reduce((a, b) => Math.max(a, b), 0) })
  const summary = {
    seconds: elapsed,
    requests: stats.search.sent + stats.upsert.sent + stats.delete.sent + stats.save.sent,
    search: { sent: stats.search.sent, ok: stats.search.ok, qps: stats.search.ok / elapsed, ...lat(stats.search) },
    upsert: { sent: stats.upsert.sent, ok: stats.upsert.ok, items: stats.upsert.items, newIds: stats.upsert.newIds, ...lat(stats.upsert) },
    delete: { sent: stats.delete.sent, ok: stats.delete.ok, ids: stats.delete.ids, ...lat(stats.delete) },
    save: { sent: stats.save.sent, ok: stats.save.ok, lastBytes: stats.save.bytes, ...lat(stats.save) },
    expectedFailures: stats.expectedFailures,
    staleHits: stats.staleHits,
    size: model.present.size,
    problems: unexpected.length,
  }
  return { summary, unexpected, stats }
}

/** Records a write that failed: 'no' = not applied, 'maybe' = no answer (the id is frozen). */
function settleFailed(model, writes, may) {
  for (const w of writes) {
    w.e.busy = false
    if (may === 'no') w.e.ops.pop()
    else w.e.frozen = true
    if (may !== 'no') {
      model.present.delete(w.id)
      model.absent.delete(w.id)
    }
  }
}

/** POST save; appends { label, sendEv, ackEv } to `saves` (ackEv Infinity until acknowledged). */
async function saveNow({ url, model, agent, stats, saves, problem, expected }) {
  const rec = { label: `save ${saves.length + 1}`, sendEv: ++model.ev, ackEv: Infinity, ms: NaN }
  saves.push(rec)
  stats.save.sent++
  const r = await request(url, { method: 'POST', path: `/collections/${NAME}/save`, agent, timeoutMs: 300_000 })
  if (r.status === 200 && r.json?.saved === true) {
    rec.ackEv = ++model.ev
    rec.ms = r.ms
    stats.save.ok++
    stats.save.ms.push(r.ms)
    stats.save.bytes = r.json.bytes
    return rec
  }
  rec.failed = true
  if (expected() && (r.status === 0 || r.status === 503)) stats.expectedFailures++
  else problem(`POST /collections/${NAME}/save → ${r.status ? `${r.status} ${truncate(r.text, 300)}` : r.error}`)
  return rec
}

/**
 * Traffic, then a save and a SIGKILL at a random moment within that save's expected duration.
 * Returns the saves that the loaded file may equal: the last acknowledged one and any in flight.
 */
async function killCycle({ server, model, agent, cfg, rand, queries, nQueries, dim, log, index }) {
  const stop = { requested: false }
  let killing = false
  const saves = [{ label: 'the state loaded at the last start', sendEv: model.ev, ackEv: model.ev }]
  const running = traffic({ server, model, agent, cfg, rand, queries, nQueries, dim, seconds: 3600, stop, expected: () => killing, saves, log })
  await sleep(3000)
  // One acknowledged save under traffic measures how long a save takes now.
  const stats = { save: { sent: 0, ok: 0, ms: [], bytes: 0 } }
  const problems = []
  const first = await saveNow({ url: server.url, model, agent, stats, saves, problem: (m) => problems.push(m), expected: () => killing })
  first.label = 'the acknowledged save'
  await sleep(500 + rand() * 1000)
  const delay = rand() * Math.max(5, (first.ms || 50) * 1.2)
  const inFlight = saveNow({ url: server.url, model, agent, stats, saves, problem: (m) => problems.push(m), expected: () => killing })
  const second = saves[saves.length - 1]
  await sleep(delay)
  killing = true
  server.kill('SIGKILL')
  const completedBeforeKill = second.ackEv !== Infinity
  second.label = completedBeforeKill ? 'the second save (acknowledged before the kill)' : 'the save in flight at the kill'
  const exit = await server.exited
  stop.requested = true
  await inFlight
  const done = await running
  const lastAcked = saves.reduce((best, s, i) => (s.ackEv !== Infinity && !s.failed ? i : best), 0)
  // A save that failed without an answer may still have renamed its file: it stays a candidate.
  const candidates = saves.slice(lastAcked)
  log(`soak: SIGKILL ${index + 1} ${fmt(delay)} ms into a save (previous save took ${fmt(first.ms)} ms); candidates: ${candidates.map((c) => c.label).join(', ')}`)
  return {
    unexpected: [...done.unexpected, ...problems],
    candidates,
    summary: { killDelayMs: delay, saveMs: first.ms, secondSaveCompletedBeforeKill: completedBeforeKill, exit, traffic: done.summary, candidates: candidates.map((c) => c.label), savedDuringCycle: saves.filter((s) => s.ackEv !== Infinity).length - 1 },
  }
}

/** Traffic, then SIGTERM while it runs; waits for the exit. */
async function gracefulCycle({ server, model, agent, cfg, rand, queries, nQueries, dim, log }) {
  const stop = { requested: false }
  let terminating = false
  const running = traffic({ server, model, agent, cfg, rand, queries, nQueries, dim, seconds: 3600, stop, expected: () => terminating, log })
  await sleep(3000)
  terminating = true
  const t = performance.now()
  const exit = await stopServer(server, 'SIGTERM', 120_000)
  const shutdownSeconds = (performance.now() - t) / 1e3
  stop.requested = true
  const done = await running
  return { unexpected: done.unexpected, exit, summary: { shutdownSeconds, traffic: done.summary } }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------
// Verification after a restart.

/**
 * Reads every id written since the last rebase (and a sample of untouched base rows) from the
 * restarted server and finds a candidate save whose allowed states contain what was loaded.
 */
async function verifyAgainstSaves({ url, model, agent, candidates, log }) {
  const reasons = []
  const ids = [...model.entries.keys()]
  /** @type {Map<number | string, number | null>} */
  const observed = new Map()
  const contentProblems = []
  for (let from = 0; from < ids.length; from += 500) {
    const chunk = ids.slice(from, from + 500)
    const got = await must(url, { method: 'POST', path: `/collections/${NAME}/get`, body: { ids: chunk, includeVectors: true }, agent, timeoutMs: 120_000 })
    if (!Array.isArray(got?.items) || got.items.length !== chunk.length) {
      reasons.push(`get returned ${Array.isArray(got?.items) ? got.items.length : 'no'} items for ${chunk.length} ids`)
      return { ok: false, reasons, observed, summary: { size: NaN } }
    }
    chunk.forEach((id, i) => {
      const item = got.items[i]
      let state = null
      if (item !== null && item !== undefined) {
        if (item.id !== id) contentProblems.push(`get(${JSON.stringify(id)}) returned id ${JSON.stringify(item.id)}`)
        const seq = item.metadata?.seq
        // seq ≥ 0: written by that upsert; −1 − id: the base row as built.
        state = typeof seq === 'number' && seq >= 0 ? seq : -1
        if (state === -1 && !(typeof id === 'number' && id < model.nBase && seq === -1 - id)) contentProblems.push(`item ${JSON.stringify(id)} is neither a base row nor an upsert: ${truncate(JSON.stringify(item), 200)}`)
        else {
          const p = model.contentProblem(id, state, item)
          if (p) contentProblems.push(p)
        }
      }
      observed.set(id, state)
    })
  }
  // A sample of rows no write touched must be there, unchanged.
  const untouched = []
  for (let i = 0; untouched.length < 200 && i < model.nBase; i += Math.max(1, Math.floor(model.nBase / 400))) if (!model.entries.has(i)) untouched.push(i)
  const got = await must(url, { method: 'POST', path: `/collections/${NAME}/get`, body: { ids: untouched, includeVectors: true }, agent, timeoutMs: 120_000 })
  untouched.forEach((id, i) => {
    const item = got.items?.[i]
    if (!item) contentProblems.push(`untouched base item ${id} is missing`)
    else {
      const p = model.contentProblem(id, -1, item)
      if (p) contentProblems.push(p)
    }
  })
  reasons.push(...contentProblems.slice(0, 10))

  // The loaded size must equal the untouched base rows plus the touched ids found.
  let touchedBase = 0
  let touchedPresent = 0
  for (const [id, state] of observed) {
    if (typeof id === 'number' && id < model.nBase) touchedBase++
    if (state !== null) touchedPresent++
  }
  const expectedSize = model.nBase - touchedBase + touchedPresent
  const count = await must(url, { method: 'POST', path: `/collections/${NAME}/count`, body: {}, agent })
  if (count?.count !== expectedSize) reasons.push(`count is ${count?.count}; the ids read imply ${expectedSize} (extra or missing items)`)

  let matched = null
  let best = null
  for (const c of [...candidates].reverse()) {
    const misses = []
    for (const [id, e] of model.entries) {
      const states = [e.base, ...e.ops.map((o) => o.after)]
      let lo = 0
      while (lo < e.ops.length && e.ops[lo].ackEv !== null && e.ops[lo].ackEv < c.sendEv) lo++
      let hi = 0
      while (hi < e.ops.length && e.ops[hi].sendEv < c.ackEv) hi++
      const allowed = states.slice(lo, Math.max(lo, hi) + 1)
      const s = observed.get(id)
      if (!allowed.includes(s)) misses.push(`${JSON.stringify(id)}: loaded ${label(s)}, allowed ${allowed.map(label).join('/')}`)
    }
    if (!misses.length) {
      matched = c.label
      break
    }
    if (!best || misses.length < best.misses.length) best = { label: c.label, misses }
  }
  if (matched === null) reasons.push(`closest: ${best?.label} with ${best?.misses.length} ids off (${best?.misses.slice(0, 5).join('; ')})`)
  const ok = matched !== null && reasons.length === 0
  log(`soak: verified ${ids.length.toLocaleString('en-US')} written ids + ${untouched.length} untouched rows; size ${count?.count}`)
  return { ok, reasons, observed, summary: { matched, size: count?.count, idsChecked: ids.length + untouched.length, problems: reasons } }
}

const label = (s) => (s === null ? 'absent' : s === -1 ? 'base row' : s === undefined ? 'unread' : `upsert #${s}`)

// ---------------------------------------------------------------------------------------------
// Report.

function render(json, cfg, failures) {
  const s = json.phases.soak
  const lines = [`### Soak (${fmt(cfg.durationSeconds)} s, ${cfg.connections} connections, ${json.config.nBase.toLocaleString('en-US')} × ${json.config.dim} ${json.config.dataset}, ${cfg.kills} SIGKILLs)`, '']
  if (json.phases.build) lines.push(`Built over HTTP in ${fmt(json.phases.build.seconds)} s; saved ${fmtBytes(json.phases.build.savedBytes)}.`, '')
  if (s) {
    lines.push(
      table(
        ['requests', 'sent', 'ok', 'p50 ms', 'p99 ms', 'max ms', 'notes'],
        [
          ['search', s.search.sent, s.search.ok, fmt(s.search.p50Ms), fmt(s.search.p99Ms), fmt(s.search.maxMs), `${fmt(s.search.qps)} QPS; ${s.staleHits} deleted ids in hits`],
          ['upsert', s.upsert.sent, s.upsert.ok, fmt(s.upsert.p50Ms), fmt(s.upsert.p99Ms), fmt(s.upsert.maxMs), `${s.upsert.items} items, ${s.upsert.newIds} new ids`],
          ['delete', s.delete.sent, s.delete.ok, fmt(s.delete.p50Ms), fmt(s.delete.p99Ms), fmt(s.delete.maxMs), `${s.delete.ids} ids`],
          ['save', s.save.sent, s.save.ok, fmt(s.save.p50Ms), fmt(s.save.p99Ms), fmt(s.save.maxMs), fmtBytes(s.save.lastBytes)],
        ],
      ),
      '',
      memoryLine(s.memory),
      '',
      `Server RSS: ${fmtBytes(s.rss.baselineBytes)} at ${fmt(s.rss.baselineSeconds)} s → ${fmtBytes(s.rss.endBytes)} at the end (${s.rss.growth >= 0 ? '+' : ''}${fmtPercent(s.rss.growth, 2)}; limit +${fmtPercent(RSS_LIMIT, 0)}; max ${fmtBytes(s.rss.maxBytes)}). Collection size at the end: ${s.size.toLocaleString('en-US')}.`,
      '',
    )
  }
  const checks = []
  for (const [i, k] of (json.phases.kills ?? []).entries()) {
    checks.push([`SIGKILL ${i + 1} (${fmt(k.killDelayMs)} ms into a save of ~${fmt(k.saveMs)} ms)`, k.verdict.matched ? `serves ${k.verdict.matched}` : 'no save matches', `${fmt(k.restartSeconds)} s`, k.verdict.size, k.verdict.problems.length ? k.verdict.problems.slice(0, 2).join('; ') : 'ok'])
  }
  const g = json.phases.graceful
  if (g) checks.push([`SIGTERM under traffic (exit ${g.exit.code}, ${fmt(g.shutdownSeconds)} s)`, g.verdict.matched ? 'all acknowledged writes' : 'writes missing', `${fmt(g.restartSeconds)} s`, g.verdict.size, g.verdict.problems.length ? g.verdict.problems.slice(0, 2).join('; ') : 'ok'])
  if (checks.length) lines.push(table(['restart', 'loaded state', 'restart time', 'items', 'result'], checks), '')
  lines.push(failures.length ? `**Soak: FAILED**\n\n${failures.map((f) => `- ${truncate(f, 1200).replace(/\n/g, ' ')}`).join('\n')}` : '**Soak: passed** (no unexpected error response, RSS within bounds, every restart served a completed save).', '')
  return lines.join('\n')
}

function memoryLine(memory) {
  if (!memory?.length) return ''
  const a = memory[0]
  const b = memory[memory.length - 1]
  const pair = (k) => `${fmtBytes(a[k])} → ${fmtBytes(b[k])}`
  return `Memory from ${fmt(a.t)} s to ${fmt(b.t)} s: collection (its memoryBytes) ${pair('collectionBytes')} at ${a.size?.toLocaleString('en-US')} → ${b.size?.toLocaleString('en-US')} items; V8 heap used ${pair('heapUsedBytes')} (total ${pair('heapTotalBytes')}); external ${pair('externalBytes')}.`
}

// ---------------------------------------------------------------------------------------------
// Standalone runner.

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = cliArgs(process.argv.slice(2))
  const { loadDataset, repoRoot } = await import('../datasets.mjs')
  const log = (m) => console.error(`[soak] ${m}`)
  const limit = Number(args.limit ?? 20000)
  const dataset = loadDataset(args.dataset ?? 'glove-100k', { limit, queries: 1000, log })
  const result = await runSoak({
    repoRoot,
    dataset,
    log,
    durationSeconds: Number(args.seconds ?? 60),
    connections: Number(args.connections ?? 32),
    kills: Number(args.kills ?? 3),
    saveEverySeconds: Number(args['save-every'] ?? 10),
    keepData: Boolean(args['keep-data']),
    serverArgs: args['server-args'] ? String(args['server-args']).split(' ') : [],
    serverEnv: args['server-env'] ? Object.fromEntries(String(args['server-env']).split(',').map((kv) => kv.split('='))) : {},
  })
  console.log(result.markdown)
  if (args.json) fs.writeFileSync(String(args.json), JSON.stringify(result.json, null, 2))
  process.exitCode = result.ok ? 0 : 1
}
