// Bad-traffic check of `vecdex serve` (issue 20): 1,000 malformed requests of twelve kinds against
// one server. Each must be answered with a 4xx and a JSON body whose `code` is a string; the
// server must stay up (same pid) and answer a fixed set of correct requests byte-identically
// before and after.
//
// Collections: `bt` (the dataset's first rows, metadata {group: number, tag: string} with those
// fields declared, so filters compile) takes most requests; `tiny` (2 dimensions) takes the huge
// batches, so 100,000 queries fit in a body well under any body limit and what is tested is the
// batch limit, not the body limit. Malformed writes use ids that do not exist, so a write that
// is wrongly accepted shows up as a changed count as well as a 2xx.
//
// Bodies are built as text where JSON.stringify cannot express them (1e400, 2^64 as a number,
// `__proto__` keys, truncation); oversized bodies are streamed until the server answers, which
// also measures the body limit the server enforces.
//
// Standalone: node benchmark/serve/bad-traffic.mjs [--dataset glove-100k] [--limit 2000]

import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmtBytes, table } from '../report.mjs'
import { buildCollection, cliArgs, dimsOf, must, request, startServer, stopServer, truncate } from './traffic-common.mjs'

const TOTAL = 1000
const TIMEOUT_MS = 15_000
const CONCURRENCY = 4
/** Codes the contract lists for 4xx answers (others are reported, not failed). */
const CONTRACT_CODES = new Set(['ERR_INVALID_ARGUMENT', 'ERR_DIMENSION_MISMATCH', 'ERR_ZERO_VECTOR', 'ERR_BAD_JSON', 'ERR_UNAUTHORIZED', 'ERR_NOT_FOUND', 'ERR_EXISTS', 'ERR_BODY_TOO_LARGE', 'ERR_UNSUPPORTED_MEDIA_TYPE'])
/** Streamed bodies stop here if the server has not answered yet (it then has no effective limit). */
const STREAM_CAP_BYTES = 256 * 1024 * 1024
/** `vecdex serve --body-limit` default (its --help); opts.bodyLimit when the suite sets another. */
const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024

const BT = 'bt'
const TINY = 'tiny'
const col = (name, action) => `/collections/${name}/${action}`

/**
 * @param {{ repoRoot: string, dataset: any, log?: (m: string) => void, launch?: Function, rows?: number, bodyLimit?: number, threads?: number }} opts
 *   rows: base rows in collection bt (default 2,000);
 *   bodyLimit: the server's --body-limit, if the suite sets one
 * @returns {Promise<{ markdown: string, json: object, ok: boolean }>}
 */
export async function runBadTraffic(opts) {
  const log = opts.log ?? (() => {})
  const dataset = opts.dataset
  const dim = dimsOf(dataset)
  // A small collection is enough to check answers; the suite's --limit is for the load test.
  const rows = Math.min(opts.rows ?? 2000, (dataset.base ?? dataset.vectors).length / dim)
  const failures = []
  const fail = (m) => {
    failures.push(m)
    log(`bad-traffic: FAIL ${truncate(m, 400)}`)
  }
  const server = await startServer({ log, launch: opts.launch, args: opts.threads ? ['--threads', String(opts.threads)] : [] })
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY + 2 })
  const json = { config: { dataset: dataset.name, dim, rows, metric: dataset.metric, total: TOTAL }, kinds: {} }
  try {
    const url = server.url
    await buildCollection(url, { name: BT, dataset, count: rows, fields: { group: 'number', tag: 'string' }, metadataOf: (i) => ({ group: i % 10, tag: i % 2 ? 'a' : 'b' }), agent })
    await must(url, { method: 'POST', path: '/collections', body: { name: TINY, dimensions: 2, metric: 'l2sq', index: 'flat' }, agent })
    await must(url, { method: 'POST', path: col(TINY, 'upsert'), body: { items: Array.from({ length: 10 }, (_, i) => ({ id: i, vector: [1 + i, 1] })) }, agent })

    const correct = correctRequests(dataset, dim)
    const before = await runCorrect(url, correct, agent)
    const stateBefore = await serverState(url, agent)
    for (const r of before) if (r.status !== 200) fail(`correct request ${r.name} → ${r.status || r.error} ${truncate(r.text, 300)} before any bad traffic`)

    const ctx = makeContext(dataset, dim, opts.bodyLimit ?? DEFAULT_BODY_LIMIT)
    const plan = kinds(ctx)
    const planned = plan.reduce((s, k) => s + k.count, 0)
    if (planned !== TOTAL) throw new Error(`bad-traffic plan sends ${planned} requests, not ${TOTAL}`)
    let sent = 0
    for (const kind of plan) {
      const outcomes = []
      const variants = kind.variants
      const jobs = Array.from({ length: kind.count }, (_, i) => ({ i, variant: variants[i % variants.length] }))
      const worker = async () => {
        for (let job = jobs.shift(); job; job = jobs.shift()) {
          const spec = job.variant(job.i)
          const reply = await send(url, spec, agent, ctx)
          outcomes.push(classify(spec, reply))
        }
      }
      await Promise.all(Array.from({ length: kind.heavy ? 1 : CONCURRENCY }, worker))
      sent += outcomes.length
      const alive = server.alive() && (await request(url, { path: '/health', timeoutMs: 5000 })).status === 200
      json.kinds[kind.name] = summarise(kind, outcomes)
      if (!alive) {
        fail(`the server stopped answering after the "${kind.name}" requests (pid ${server.pid} ${server.alive() ? 'still running' : 'exited'})\n${server.output()}`)
        break
      }
      const k = json.kinds[kind.name]
      log(`bad-traffic: ${kind.name}: ${k.sent} sent, ${k.fourxxWithCode} 4xx with a code${k.other ? `, ${k.other} OTHER` : ''}`)
    }
    json.sent = sent
    for (const [name, k] of Object.entries(json.kinds)) {
      for (const ex of k.otherExamples) fail(`${name}: ${ex}`)
      if (k.other > k.otherExamples.length) fail(`${name}: ${k.other - k.otherExamples.length} more requests with other outcomes`)
    }

    if (server.alive()) {
      const after = await runCorrect(url, correct, agent)
      const stateAfter = await serverState(url, agent)
      const diffs = []
      after.forEach((r, i) => {
        if (r.text !== before[i].text || r.status !== before[i].status) diffs.push(`${r.name}: before ${before[i].status} ${truncate(before[i].text, 160)}; after ${r.status || r.error} ${truncate(r.text, 160)}`)
      })
      if (stateAfter !== stateBefore) diffs.push(`collections before ${stateBefore}; after ${stateAfter}`)
      for (const d of diffs) fail(`correct requests differ after the bad traffic: ${d}`)
      json.correct = { requests: correct.length, identical: correct.length - diffs.filter((d) => !d.startsWith('collections')).length, stateBefore, stateAfter }
    } else fail(`the server (pid ${server.pid}) exited: ${JSON.stringify(await server.exited)}\n${server.output()}`)
    json.pid = server.pid
    json.bodyLimit = ctx.bodyLimit
    json.streamedBeforeAnswer = ctx.streamedBeforeAnswer
  } catch (error) {
    fail(`bad-traffic aborted: ${error?.stack ?? error}`)
  } finally {
    agent.destroy()
    if (server.alive()) {
      const exit = await stopServer(server, 'SIGTERM', 60_000)
      if (exit.code !== 0) fail(`SIGTERM after the bad traffic: exit ${JSON.stringify(exit)}`)
    }
  }
  json.failures = failures
  json.ok = failures.length === 0
  return { markdown: render(json, failures), json, ok: json.ok }
}

// ---------------------------------------------------------------------------------------------
// Correct requests, compared byte for byte before and after.

function correctRequests(dataset, dim) {
  const q = (i) => Array.from(dataset.queries.subarray(i * dim, (i + 1) * dim))
  const list = []
  for (let i = 0; i < 6; i++) list.push({ name: `search q${i}`, path: col(BT, 'search'), body: { vector: q(i), k: 10 } })
  list.push({ name: 'search with filter group=3', path: col(BT, 'search'), body: { vector: q(6), k: 10, filter: { group: 3 } } })
  list.push({ name: 'search with filter tag/range', path: col(BT, 'search'), body: { vector: q(7), k: 5, filter: { tag: 'a', group: { $gte: 5 } }, includeVectors: true } })
  list.push({ name: 'batch search ×4', path: col(BT, 'search'), body: { vectors: [q(8), q(9), q(10), q(11)], k: 10 } })
  list.push({ name: 'get', path: col(BT, 'get'), body: { ids: [0, 1, 2, 'missing', 987654321], includeVectors: true } })
  list.push({ name: 'count', path: col(BT, 'count'), body: {} })
  list.push({ name: 'count with filter', path: col(BT, 'count'), body: { filter: { group: { $in: [1, 2] } } } })
  list.push({ name: 'tiny search', path: col(TINY, 'search'), body: { vector: [3, 1], k: 3 } })
  list.push({ name: 'tiny count', path: col(TINY, 'count'), body: {} })
  return list
}

async function runCorrect(url, list, agent) {
  const out = []
  for (const c of list) out.push({ name: c.name, ...(await request(url, { method: 'POST', path: c.path, body: c.body, agent, timeoutMs: TIMEOUT_MS })) })
  return out
}

/** Names and sizes of every collection: a wrongly accepted create, write or drop changes it. */
async function serverState(url, agent) {
  const r = await request(url, { path: '/collections', agent })
  const list = r.json?.collections
  if (!Array.isArray(list)) return `GET /collections → ${r.status} ${truncate(r.text, 200)}`
  return list
    .map((c) => `${c.name}:${c.size}`)
    .sort()
    .join(',')
}

// ---------------------------------------------------------------------------------------------
// The malformed requests.

/**
 * A request spec: { method, path, body?: string | Buffer, contentType?: string | null (null = no
 * header), headers?, stream?: { prefix, unit, contentLength? }, halfClose?: { declared, sent },
 * note }. Bodies are text: the point is to send what JSON.stringify would not produce.
 */
function makeContext(dataset, dim, bodyLimit) {
  const qv = Array.from(dataset.queries.subarray(0, dim))
  const Q = JSON.stringify(qv)
  const vecText = (arr) => `[${arr.join(',')}]`
  return {
    dim,
    metric: dataset.metric,
    qv,
    Q,
    vecText,
    /** A vector of `n` copies of a number written as `lit` (e.g. 1e400). */
    withLiteral: (lit, at = 0) => vecText(qv.map((x, i) => (i === at ? lit : String(x)))),
    bodyLimit,
    streamedBeforeAnswer: undefined,
  }
}

function deep(depth, open, close, leaf = '1') {
  return open.repeat(depth) + leaf + close.repeat(depth)
}

function kinds(ctx) {
  const { Q, dim, qv } = ctx
  const S = (path) => (body, extra = {}) => ({ method: 'POST', path, body: typeof body === 'string' ? body : JSON.stringify(body), ...extra })
  const search = S(col(BT, 'search'))
  const upsert = S(col(BT, 'upsert'))
  const get = S(col(BT, 'get'))
  const del = S(col(BT, 'delete'))
  const count = S(col(BT, 'count'))
  const create = S('/collections')
  const tinySearch = S(col(TINY, 'search'))
  const item = (i, rest = '') => `{"id":"bad-${i}","vector":${Q}${rest}}`
  const ones = (n, v) => `[${Array.from({ length: n }, () => v).join(',')}]`

  const wrongTypes = [
    () => search(`{"vector":${Q},"k":"10"}`),
    () => search({ vector: qv.map(String), k: 10 }),
    () => search({ vector: 'abc', k: 10 }),
    () => search({ vector: { 0: 1 }, k: 10 }),
    () => search(`{"vector":${Q},"k":true}`),
    () => search(`{"vector":${Q},"k":10.5}`),
    () => search(`{"vector":${Q},"k":-1}`),
    () => search(`{"vector":${Q},"k":0}`),
    () => search(`{"vector":${Q},"k":null}`),
    () => search({ vector: null, k: 10 }),
    () => search(`{"vector":${Q},"k":10,"includeMetadata":"yes"}`),
    () => search(`{"vector":${Q},"k":10,"efSearch":"64"}`),
    () => search(`{"vectors":${Q},"k":10}`),
    () => search(`{"vector":${Q},"vectors":[${Q}],"k":10}`),
    () => search({ k: 10 }),
    () => search('[]'),
    () => search('null'),
    () => search('42'),
    () => search('"search"'),
    () => get({ ids: [{ a: 1 }] }),
    () => get({ ids: '1' }),
    () => get({ ids: [true] }),
    () => get({ ids: [null] }),
    () => del({ ids: [[1]] }),
    () => del({ ids: [1.5] }),
    (i) => upsert(`{"items":${item(i)}}`),
    (i) => upsert(`{"items":[{"id":{"x":${i}},"vector":${Q}}]}`),
    (i) => upsert(`{"items":[${item(i, ',"metadata":"text"')}]}`),
    (i) => upsert(`{"items":[${item(i, ',"metadata":[1,2]')}]}`),
    (i) => upsert(`{"items":[${item(i, ',"text":5')}]}`),
    () => upsert(`{"items":[{"id":"","vector":${Q}}]}`),
    () => upsert(`{"items":[{"id":-5,"vector":${Q}}]}`),
    () => upsert(`{"items":[{"id":1.5,"vector":${Q}}]}`),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":"${Q}"}]}`),
    () => count({ filter: 5 }),
    () => create({ name: 5, dimensions: 3 }),
    () => create({ name: 'badtypes1', dimensions: '3' }),
    () => create({ name: 'bad name!', dimensions: 3 }),
    () => create({ name: 'badtypes2', dimensions: 3, metric: 'manhattan' }),
    () => create({ name: 'badtypes3', dimensions: 0 }),
    () => create({ name: 'badtypes4', dimensions: 3, index: 'ivf' }),
  ]

  const wrongDims = [
    () => search({ vector: qv.slice(1), k: 10 }),
    () => search({ vector: [...qv, 0.5], k: 10 }),
    () => search({ vector: [], k: 10 }),
    () => search({ vector: [1], k: 10 }),
    () => search({ vectors: [qv, qv.slice(1)], k: 10 }),
    () => search({ vectors: [[]], k: 10 }),
    () => search({ vector: [qv], k: 10 }),
    () => search({ vectors: qv.map((x) => [x]), k: 10 }),
    () => search({ vector: new Array(65_537).fill(0.5), k: 10 }),
    (i) => upsert({ items: [{ id: `bad-${i}`, vector: qv.slice(1) }] }),
    // The second item is wrong: the first must not be written either.
    (i) => upsert({ items: [{ id: `bad-${i}-a`, vector: qv }, { id: `bad-${i}-b`, vector: [...qv, 1] }] }),
    (i) => upsert({ items: [{ id: `bad-${i}`, vector: [] }] }),
    () => tinySearch({ vector: [1, 2, 3], k: 3 }),
    (i) => S(col(TINY, 'upsert'))({ items: [{ id: `bad-${i}`, vector: [1] }] }),
  ]
  if (ctx.metric === 'cosine') {
    wrongDims.push(
      () => search({ vector: new Array(dim).fill(0), k: 10 }),
      (i) => upsert({ items: [{ id: `bad-${i}`, vector: new Array(dim).fill(0) }] }),
    )
  }

  const hugeNumbers = [
    () => search(`{"vector":${Q},"k":1e12}`),
    () => search(`{"vector":${Q},"k":9007199254740992}`),
    () => search(`{"vector":${Q},"k":9007199254740993}`),
    () => search(`{"vector":${Q},"k":1e300}`),
    () => search(`{"vector":${Q},"k":1e400}`),
    () => search(`{"vector":${Q},"k":-1e12}`),
    () => search(`{"vector":${Q},"k":10,"efSearch":1e300}`),
    () => search(`{"vector":${Q},"k":10,"efSearch":1e12}`),
    () => search(`{"vector":${Q},"k":10,"efSearch":-1}`),
    () => search(`{"vector":${Q},"k":10,"efSearch":4294967296}`),
    () => search(`{"vector":${ctx.withLiteral('1e400')},"k":10}`),
    () => search(`{"vector":${ctx.withLiteral('-1e400', 3)},"k":10}`),
    () => search(`{"vector":${ctx.withLiteral('1e39')},"k":10}`),
    () => search(`{"vector":${ctx.withLiteral('-3.5e38', 1)},"k":10}`),
    () => search(`{"vectors":[${Q},${ctx.withLiteral('1e400', 2)}],"k":10}`),
    () => get('{"ids":[18446744073709551616]}'),
    () => get('{"ids":[9007199254740992]}'),
    () => get('{"ids":[1e400]}'),
    () => get('{"ids":[-1]}'),
    () => del('{"ids":[18446744073709551615]}'),
    () => upsert(`{"items":[{"id":18446744073709551616,"vector":${Q}}]}`),
    () => upsert(`{"items":[{"id":1e300,"vector":${Q}}]}`),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${ctx.withLiteral('1e400')}}]}`),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${ctx.withLiteral('1e39', 5)}}]}`),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${Q},"metadata":{"x":1e400}}]}`),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${Q},"metadata":{"a":[1,-1e400]}}]}`),
    () => search(`{"vector":${Q},"k":10,"filter":{"group":{"$lt":1e400}}}`),
    () => count('{"filter":{"group":-1e400}}'),
    () => create('{"name":"hugenum1","dimensions":1e12}'),
    () => create('{"name":"hugenum2","dimensions":4294967297}'),
    () => create('{"name":"hugenum3","dimensions":8,"m":1e9}'),
    () => create('{"name":"hugenum4","dimensions":8,"efConstruction":1e300}'),
    () => create('{"name":"hugenum5","dimensions":8,"efSearch":1e400}'),
  ]

  const deepJson = [
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${Q},"metadata":{"a":${deep(10_000, '[', ']')}}}]}`),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${Q},"metadata":${deep(10_000, '{"a":', '}')}}]}`),
    () => search(`{"vector":${Q},"k":10,"filter":${deep(10_000, '{"$and":[', ']}', '{"group":1}')}}`),
    () => search(`{"vector":${Q},"k":10,"filter":${deep(10_000, '{"$not":', '}', '{"group":1}')}}`),
    () => search(`{"vector":${Q},"k":10,"filter":${deep(10_000, '{"a":', '}')}}`),
    () => search(`{"vector":${deep(10_000, '[', ']')},"k":10}`),
    () => search(deep(10_000, '[', ']')),
    () => search(deep(10_000, '{"a":', '}')),
    (i) => upsert(`{"items":[{"id":"bad-${i}","vector":${Q},"metadata":{"a":${deep(100_000, '[', ']')}}}]}`),
    () => search(`{"vector":${Q},"k":10,"filter":${deep(100_000, '{"$or":[', ']}', '{"group":1}')}}`),
    () => count(`{"filter":${deep(10_000, '{"$or":[', ']}', '{"group":1}')}}`),
    () => del(`{"filter":${deep(10_000, '{"$and":[', ']}', '{"group":1}')}}`),
  ]

  const proto = [
    () => search(`{"__proto__":{"k":5},"vector":${Q},"k":10}`),
    () => search(`{"constructor":{"prototype":{"k":5}},"vector":${Q},"k":10}`),
    (i) => upsert(`{"items":[${item(i, ',"metadata":{"__proto__":{"polluted":true}}')}]}`),
    (i) => upsert(`{"items":[${item(i, ',"metadata":{"constructor":{"prototype":{"polluted":true}}}')}]}`),
    (i) => upsert(`{"items":[${item(i, ',"metadata":{"a":{"b":{"__proto__":{"x":1}}}}')}]}`),
    (i) => upsert(`{"items":[${item(i, ',"metadata":{"a":[{"__proto__":{"x":1}}]}')}]}`),
    (i) => upsert(`{"items":[{"__proto__":{"vector":${Q}},"id":"bad-${i}","vector":${Q}}]}`),
    (i) => upsert(`{"__proto__":{"items":[]},"items":[${item(i)}]}`),
    () => search(`{"vector":${Q},"k":10,"filter":{"__proto__":{"group":1}}}`),
    () => search(`{"vector":${Q},"k":10,"filter":{"constructor":{"prototype":{"group":1}}}}`),
    () => search(`{"vector":${Q},"k":10,"filter":{"$and":[{"group":1},{"__proto__":{"x":1}}]}}`),
    () => count('{"filter":{"group":{"__proto__":{"$eq":1}}}}'),
    () => get('{"ids":[1],"__proto__":{"includeVectors":true}}'),
    () => create('{"name":"proto1","dimensions":3,"__proto__":{"metric":"dot"}}'),
    () => create('{"name":"proto2","dimensions":3,"fields":{"__proto__":"string"}}'),
    () => create('{"name":"proto3","dimensions":3,"constructor":{"prototype":{"index":"flat"}}}'),
  ]

  const valid = [`{"vector":${Q},"k":10}`, `{"items":[${item(0, ',"text":"t","metadata":{"group":1}')}]}`, `{"vector":${Q},"k":10,"filter":{"tag":"a","group":{"$gte":5}}}`, `{"vectors":[${Q},${Q}],"k":10}`, '{"ids":[1,2,3],"includeVectors":true}']
  const validPaths = [col(BT, 'search'), col(BT, 'upsert'), col(BT, 'search'), col(BT, 'search'), col(BT, 'get')]
  const truncated = [
    (i) => {
      const v = i % valid.length
      const text = valid[v]
      // Cut points spread over the body (never its whole length): inside numbers, strings, keys.
      const cut = 1 + ((i * 7919) % (text.length - 1))
      return { method: 'POST', path: validPaths[v], body: text.slice(0, cut), note: `cut at ${cut}/${text.length}` }
    },
    (i) => ({ method: 'POST', path: validPaths[i % valid.length], body: '' }),
    (i) => ({ method: 'POST', path: validPaths[i % valid.length], body: `${valid[i % valid.length]}}` }),
    (i) => ({ method: 'POST', path: validPaths[i % valid.length], body: `${valid[i % valid.length]} {"k":1}` }),
    () => search(`{"vector":${Q},"k":10,}`),
    () => search(`{vector:${Q},k:10}`),
    () => search(`{"vector":${Q},"k":10`.replace('"k"', "'k'")),
    () => search(`{"vector":${Q.replace(',', ',,')},"k":10}`),
    () => search(`{"vector":${Q},"k":NaN}`),
    () => search('\u0000'),
    // The client stops sending half-way and half-closes: no answer can be required, only no crash.
    (i) => ({ method: 'POST', path: col(BT, 'search'), halfClose: { text: valid[0], sent: 1 + ((i * 31) % (valid[0].length - 1)) } }),
  ]

  const contentTypes = [
    () => search(`{"vector":${Q},"k":10}`, { contentType: 'text/plain' }),
    () => search('vector=1&k=10', { contentType: 'application/x-www-form-urlencoded' }),
    () => search(`{"vector":${Q},"k":10}`, { contentType: null }),
    () => search(`--x\r\nContent-Disposition: form-data; name="k"\r\n\r\n10\r\n--x--\r\n`, { contentType: 'multipart/form-data; boundary=x' }),
    () => search('<search><k>10</k></search>', { contentType: 'application/xml' }),
    () => search(Buffer.from(new Float32Array(qv).buffer), { contentType: 'application/octet-stream' }),
    () => search(`{"vector":${Q},"k":10}`, { contentType: 'image/png' }),
    (i) => upsert(`{"items":[${item(i)}]}`, { contentType: 'text/plain' }),
    (i) => upsert(`{"items":[${item(i)}]}`, { contentType: null }),
    () => create('{"name":"ctype1","dimensions":3}', { contentType: 'text/plain' }),
    () => search(`{"vector":${Q},"k":10}`, { contentType: 'text/html; charset=utf-8' }),
  ]

  const oversized = [
    // Streamed with chunked encoding until the server answers: the first answer measures the limit.
    (i) => ({ method: 'POST', path: col(BT, 'upsert'), stream: { prefix: '{"items":[', unit: `${item(`big-${i}`)},` }, note: 'chunked' }),
    (i) => ({ method: 'POST', path: col(BT, 'upsert'), stream: { prefix: '{"items":[', unit: `${item(`big-${i}`)},`, contentLength: 2 ** 31 }, note: 'content-length 2 GiB' }),
    (i) => ({ method: 'POST', path: col(BT, 'search'), exactOverLimit: true, note: 'limit + 1 KiB, complete JSON', i }),
  ]

  const hugeBatch = [
    () => tinySearch(`{"vectors":${ones(100_000, '[1,0]')},"k":10}`, { note: '100,000 queries' }),
    () => tinySearch(`{"vectors":${ones(20_000, '[1,0]')},"k":1000}`, { note: '20,000 queries, k 1,000' }),
    () => tinySearch(`{"vectors":${ones(100_000, '[1,0]')},"k":1}`, { note: '100,000 queries, k 1' }),
    () => S(col(TINY, 'get'))(`{"ids":[${Array.from({ length: 100_000 }, (_, i) => 1_000_000 + i).join(',')}]}`, { note: '100,000 ids' }),
    () => S(col(TINY, 'delete'))(`{"ids":[${Array.from({ length: 100_000 }, (_, i) => 1_000_000 + i).join(',')}]}`, { note: 'delete 100,000 ids' }),
    () => S(col(TINY, 'upsert'))(`{"items":[${Array.from({ length: 50_000 }, (_, i) => `{"id":${1_000_000 + i},"vector":[1,0]}`).join(',')}]}`, { note: 'upsert 50,000 items' }),
    () => tinySearch(`{"vectors":${ones(1_000_000, '[1,0]')},"k":10}`, { note: '1,000,000 queries' }),
    () => tinySearch(`{"vectors":${ones(10_000, '[1,0]')},"k":100000}`, { note: '10,000 queries, k 100,000' }),
  ]

  const unknownCollection = [
    () => ({ method: 'POST', path: col('nope', 'search'), body: `{"vector":${Q},"k":10}` }),
    (i) => ({ method: 'POST', path: col('nope', 'upsert'), body: `{"items":[${item(i)}]}` }),
    () => ({ method: 'POST', path: col('nope', 'get'), body: '{"ids":[1]}' }),
    () => ({ method: 'POST', path: col('nope', 'delete'), body: '{"ids":[1]}' }),
    () => ({ method: 'POST', path: col('nope', 'count'), body: '{}' }),
    () => ({ method: 'POST', path: col('nope', 'save') }),
    () => ({ method: 'GET', path: '/collections/nope' }),
    () => ({ method: 'DELETE', path: '/collections/nope' }),
    () => ({ method: 'POST', path: col('x'.repeat(65), 'search'), body: `{"vector":${Q},"k":10}` }),
    () => ({ method: 'POST', path: col('..%2F..%2Fetc', 'search'), body: `{"vector":${Q},"k":10}` }),
    () => ({ method: 'DELETE', path: '/collections/..%2Fbt' }),
    () => ({ method: 'POST', path: col('a%20b', 'count'), body: '{}' }),
    () => ({ method: 'POST', path: col('%C3%A9', 'count'), body: '{}' }),
    () => ({ method: 'POST', path: col('bt%00', 'count'), body: '{}' }),
    () => ({ method: 'GET', path: '/nope' }),
    () => ({ method: 'POST', path: col(BT, 'explode'), body: '{}' }),
    () => ({ method: 'PUT', path: col(BT, 'search'), body: `{"vector":${Q},"k":10}` }),
    () => ({ method: 'GET', path: col(BT, 'search') }),
    () => ({ method: 'POST', path: `${col(BT, 'search')}/extra`, body: `{"vector":${Q},"k":10}` }),
  ]

  const unknownFields = [
    () => search(`{"vector":${Q},"k":10,"bogus":1}`),
    () => search(`{"vector":${Q},"k":10,"Filter":{"group":1}}`),
    () => search(`{"vector":${Q},"k":10,"efsearch":10}`),
    () => search(`{"vector":${Q},"k":10,"topK":5}`),
    (i) => upsert(`{"items":[${item(i, ',"extra":1')}]}`),
    (i) => upsert(`{"items":[${item(i, ',"metdata":{"group":1}')}]}`),
    (i) => upsert(`{"items":[${item(i)}],"mode":"replace"}`),
    () => get('{"ids":[1],"includeVector":true}'),
    () => count('{"filter":{},"limit":5}'),
    () => del('{"ids":[123456789],"filter":{"group":1}}'),
    () => del('{}'),
    () => del('{"id":123456789}'),
    () => create('{"name":"unkfield1","dimensions":3,"metrc":"l2sq"}'),
    () => create('{"name":"unkfield2","dimensions":3,"dims":3}'),
  ]

  const badFilters = [
    () => search({ vector: qv, k: 10, filter: { group: { $foo: 1 } } }),
    () => search({ vector: qv, k: 10, filter: { $and: 5 } }),
    () => search({ vector: qv, k: 10, filter: { $or: {} } }),
    () => search({ vector: qv, k: 10, filter: { group: { $in: 5 } } }),
    () => search({ vector: qv, k: 10, filter: { group: { $gt: [1] } } }),
    () => search({ vector: qv, k: 10, filter: { group: { $gt: {} } } }),
    () => search({ vector: qv, k: 10, filter: { $not: [] } }),
    () => search({ vector: qv, k: 10, filter: 'group=1' }),
    () => search({ vector: qv, k: 10, filter: [] }),
    () => search({ vector: qv, k: 10, filter: { group: { $exists: 'yes' } } }),
    () => search({ vector: qv, k: 10, filter: { $and: [5] } }),
    () => search({ vector: qv, k: 10, filter: { group: { $eq: { a: 1 } } } }),
    () => search({ vector: qv, k: 10, filter: { group: { $in: [{}] } } }),
    () => search({ vector: qv, k: 10, filter: { $nor: [{ group: 1 }] } }),
    () => search({ vector: qv, k: 10, filter: { group: { $gte: 1, $foo: 2 } } }),
    () => search({ vector: qv, k: 10, filter: { tag: { $contains: {} } } }),
    () => search({ vectors: [qv], k: 10, filter: { $or: 'x' } }),
    () => count({ filter: { group: { $foo: 1 } } }),
    () => count({ filter: { $and: {} } }),
    () => del({ filter: { $foo: 1 } }),
    () => del({ filter: { group: { $in: 'x' } } }),
    () => del({ filter: 'all' }),
  ]

  return [
    { name: 'wrong types', count: 110, variants: wrongTypes },
    { name: 'wrong dimensions', count: 90, variants: wrongDims },
    { name: 'huge numbers', count: 110, variants: hugeNumbers },
    { name: 'deep JSON', count: 60, variants: deepJson, heavy: true },
    { name: 'prototype keys', count: 100, variants: proto },
    { name: 'truncated / unparseable bodies', count: 100, variants: truncated },
    { name: 'wrong content types', count: 90, variants: contentTypes },
    { name: 'oversized bodies', count: 12, variants: oversized, heavy: true },
    { name: 'huge batches', count: 12, variants: hugeBatch, heavy: true },
    { name: 'unknown collection / route', count: 90, variants: unknownCollection },
    { name: 'unknown fields', count: 90, variants: unknownFields },
    { name: 'bad filters', count: 136, variants: badFilters },
  ]
}

// ---------------------------------------------------------------------------------------------
// Sending.

/** Sends one spec; returns a Reply plus `describe` (the exact request, for the report). */
async function send(url, spec, agent, ctx) {
  const describe = `${spec.method} ${spec.path}${spec.contentType !== undefined ? ` [content-type: ${spec.contentType ?? 'none'}]` : ''}${spec.note ? ` (${spec.note})` : ''}${spec.body !== undefined ? ` ${Buffer.isBuffer(spec.body) ? `<${spec.body.length} bytes>` : clip(spec.body)}` : ''}`
  if (spec.halfClose) return { ...(await halfClosed(url, spec)), describe: `${spec.method} ${spec.path} (content-length ${Buffer.byteLength(spec.halfClose.text)}, ${spec.halfClose.sent} bytes sent, then half-close)` }
  if (spec.stream) {
    const before = await answered413(url)
    const r = await streamed(url, spec)
    // The reply can be lost to the reset of a socket the server closed while we still wrote
    // (see raw()); the server's own counter then says whether it answered 413.
    if (r.status === 0 && Number.isFinite(before) && (await answered413(url)) === before + 1) {
      Object.assign(r, { status: 413, json: { code: 'ERR_BODY_TOO_LARGE' }, headers: { 'x-request-id': '(lost)' }, lostReply: true })
    }
    if (r.status === 413 && !spec.stream.contentLength) ctx.streamedBeforeAnswer = Math.max(ctx.streamedBeforeAnswer ?? 0, r.bytesSent)
    return { ...r, describe: `${spec.method} ${spec.path} (${spec.note}: ${fmtBytes(r.bytesSent)} sent before the answer)` }
  }
  if (spec.exactOverLimit) {
    // A complete, valid search body padded with spaces to just past the server's limit.
    const core = `{"vector":${ctx.Q},"k":10}`
    const body = core.slice(0, -1) + ' '.repeat(Math.max(0, ctx.bodyLimit + 1024 - core.length)) + '}'
    const buf = Buffer.from(body)
    const r = await raw(url, { method: 'POST', path: spec.path, headers: { 'Content-Type': 'application/json', 'Content-Length': String(buf.length), Connection: 'close' }, chunks: slices(buf) })
    return { ...r, describe: `${spec.method} ${spec.path} (${fmtBytes(buf.length)} of valid JSON: the limit + 1 KiB)` }
  }
  const headers = {}
  if (spec.body !== undefined && spec.contentType !== null) headers['content-type'] = spec.contentType ?? 'application/json'
  const r = await request(url, { method: spec.method, path: spec.path, body: spec.body, headers, agent, timeoutMs: spec.body && spec.body.length > 1e6 ? 60_000 : TIMEOUT_MS })
  return { ...r, describe }
}

/**
 * One request over a raw socket, for bodies node:http cannot send faithfully: a body streamed
 * until the server answers (node:http drops a 413 that arrives while it is still writing, as
 * EPIPE), a Content-Length the body never reaches, a half-close. The answer is read while the
 * body is written.
 * @param {{ method: string, path: string, headers: Record<string, string>, chunks: Iterator<Buffer>,
 *   chunked?: boolean, halfClose?: boolean, timeoutMs?: number }} opts
 * @returns {Promise<Reply & { bytesSent: number, closedWithoutAnswer?: boolean }>}
 */
function raw(url, { method, path: p, headers, chunks, chunked = false, halfClose = false, timeoutMs = 120_000 }) {
  const u = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname)
    const received = []
    let bytesSent = 0
    let done = false
    let answer = null
    const finish = (r) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...r, bytesSent })
    }
    const timer = setTimeout(() => finish({ status: 0, headers: {}, text: '', json: undefined, error: `timeout after ${timeoutMs / 1000} s (no answer, connection open)` }), timeoutMs)
    /** Parses what arrived; returns a Reply once a whole response is in. */
    const parse = (final) => {
      const all = Buffer.concat(received)
      const headEnd = all.indexOf('\r\n\r\n')
      if (headEnd < 0) return final && all.length ? { status: 0, headers: {}, text: all.toString('utf8'), json: undefined, error: 'malformed response' } : null
      const head = all.subarray(0, headEnd).toString('latin1').split('\r\n')
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0])?.[1] ?? 0)
      const h = {}
      for (const line of head.slice(1)) {
        const c = line.indexOf(':')
        if (c > 0) h[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim()
      }
      const body = all.subarray(headEnd + 4)
      const length = h['content-length'] === undefined ? undefined : Number(h['content-length'])
      if (length === undefined ? !final : body.length < length) return null
      const text = body.subarray(0, length ?? body.length).toString('utf8')
      let json
      try {
        json = JSON.parse(text)
      } catch {}
      return { status, headers: h, text, json }
    }
    socket.on('data', (c) => {
      received.push(c)
      answer ??= parse(false)
      if (answer) finish(answer)
    })
    const closed = () => {
      const r = parse(true)
      if (r) finish(r)
      else finish({ status: 0, headers: {}, text: '', json: undefined, error: 'closed without an answer', closedWithoutAnswer: true })
    }
    socket.on('end', closed)
    socket.on('close', closed)
    // A write error (EPIPE, ECONNRESET) after the server answered and closed is expected: the
    // answer is what counts, so wait for the close that follows.
    socket.on('error', (e) => setTimeout(() => finish(parse(true) ?? { status: 0, headers: {}, text: '', json: undefined, error: e.code ?? e.message }), 200))
    socket.on('connect', async () => {
      const lines = [`${method} ${p} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
      if (chunked) lines.push('Transfer-Encoding: chunked')
      socket.write(`${lines.join('\r\n')}\r\n\r\n`)
      // A server that refuses on the headers alone (Content-Length over its limit) answers now;
      // sending the body first would race that answer against the reset of a closed socket.
      await new Promise((r) => setTimeout(r, 300))
      let sinceYield = 0
      while (!done && !socket.destroyed) {
        const next = chunks.next()
        if (next.done) {
          if (chunked) socket.write('0\r\n\r\n')
          if (halfClose) socket.end()
          return
        }
        bytesSent += next.value.length
        const frame = chunked ? Buffer.concat([Buffer.from(`${next.value.length.toString(16)}\r\n`), next.value, Buffer.from('\r\n')]) : next.value
        const ok = socket.write(frame)
        sinceYield += frame.length
        // Yield to the event loop often, so an answer is read before a write to a socket the
        // server has closed fails (Node then destroys the socket and the unread answer is lost).
        if (!ok) await new Promise((r) => socket.once('drain', r))
        else if (sinceYield > 256 * 1024) {
          sinceYield = 0
          await new Promise((r) => setImmediate(r))
        }
      }
    })
  })
}

/** `prefix`, then `unit` repeated up to STREAM_CAP_BYTES, then a closing `]}`: a valid upsert body if nothing stops it. */
function* repeated(prefix, unit) {
  yield Buffer.from(prefix)
  const chunk = Buffer.from(unit.repeat(Math.max(1, Math.floor(65536 / unit.length))))
  for (let sent = 0; sent < STREAM_CAP_BYTES; sent += chunk.length) yield chunk
  yield Buffer.from(`${unit.slice(0, -1)}]}`)
}

function* slices(buffer, size = 65536) {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size)
}

/** Sum of vecdex_http_requests_total{status="413"} from GET /metrics (NaN if unreadable). */
async function answered413(url) {
  const r = await request(url, { path: '/metrics', timeoutMs: TIMEOUT_MS })
  if (r.status !== 200) return NaN
  let sum = 0
  for (const line of r.text.split('\n')) if (line.startsWith('vecdex_http_requests_total{') && line.includes('status="413"')) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  return sum
}

/** A body for the report: whole if short, else its head and tail (where the malformed part often is). */
function clip(text) {
  return text.length <= 400 ? text : `${text.slice(0, 160)} …(${text.length} chars)… ${text.slice(-160)}`
}

/** Streams a body until the server answers; with `contentLength`, declares that length. */
function streamed(url, spec) {
  const headers = { 'Content-Type': 'application/json', Connection: 'close' }
  if (spec.stream.contentLength) headers['Content-Length'] = String(spec.stream.contentLength)
  return raw(url, { method: spec.method, path: spec.path, headers, chunks: repeated(spec.stream.prefix, spec.stream.unit), chunked: !spec.stream.contentLength })
}

/** Declares the whole body, sends part of it, half-closes; reads whatever comes back. */
function halfClosed(url, spec) {
  const body = Buffer.from(spec.halfClose.text)
  const headers = { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }
  return raw(url, { method: spec.method, path: spec.path, headers, chunks: slices(body.subarray(0, spec.halfClose.sent)), halfClose: true, timeoutMs: TIMEOUT_MS })
}

// ---------------------------------------------------------------------------------------------
// Outcomes.

function classify(spec, r) {
  if (r.skipped) return { outcome: 'skipped', detail: r.skipped, describe: r.describe }
  const code = typeof r.json?.code === 'string' ? r.json.code : undefined
  if (r.status >= 400 && r.status < 500 && code) {
    const gaps = []
    if (!CONTRACT_CODES.has(code)) gaps.push(`code ${code} not in the contract`)
    if (r.json.statusCode !== r.status) gaps.push('statusCode field ≠ status')
    for (const f of ['error', 'message', 'requestId']) if (typeof r.json[f] !== 'string') gaps.push(`no ${f}`)
    if (r.lostReply) return { outcome: 'ok', key: `${r.status} (reply lost to a reset; counted by the server's metrics)`, gaps: [], describe: r.describe }
    if (!spec.halfClose && !r.headers['x-request-id']) gaps.push('no x-request-id header')
    return { outcome: 'ok', key: `${r.status} ${code}`, gaps, describe: r.describe }
  }
  if (spec.halfClose && r.closedWithoutAnswer) return { outcome: 'ok', key: 'closed (client half-closed)', gaps: [], describe: r.describe }
  const what = r.status >= 200 && r.status < 300 ? `accepted: ${r.status}` : r.status >= 500 ? `${r.status} server error` : r.status >= 400 ? `${r.status} without a code` : r.status === 0 ? r.error : `status ${r.status}`
  return { outcome: 'other', key: what, detail: `${r.describe} → ${r.status || r.error} ${truncate(r.text, 300)}`, describe: r.describe }
}

function summarise(kind, outcomes) {
  const byKey = {}
  const gapCounts = {}
  let ok = 0
  let other = 0
  let skipped = 0
  const otherExamples = []
  const seen = new Set()
  for (const o of outcomes) {
    if (o.outcome === 'skipped') {
      skipped++
      continue
    }
    byKey[o.key] = (byKey[o.key] ?? 0) + 1
    if (o.outcome === 'ok') {
      ok++
      for (const g of o.gaps) gapCounts[g] = (gapCounts[g] ?? 0) + 1
    } else {
      other++
      // One example per distinct request shape is enough to reproduce it.
      const shape = `${o.key}|${o.describe.replace(/\d+/g, '#')}`
      if (!seen.has(shape) && otherExamples.length < 8) {
        seen.add(shape)
        otherExamples.push(o.detail)
      }
    }
  }
  return { sent: outcomes.length - skipped, skipped, fourxxWithCode: ok, other, byStatusCode: byKey, contractGaps: gapCounts, otherExamples }
}

function render(json, failures) {
  const lines = [`### Bad traffic (${json.sent ?? 0} malformed requests; ${json.config.rows.toLocaleString('en-US')} × ${json.config.dim} ${json.config.dataset} + a 2-d collection)`, '']
  const rows = Object.entries(json.kinds).map(([name, k]) => [
    name,
    k.sent,
    k.fourxxWithCode,
    Object.entries(k.byStatusCode)
      .sort((a, b) => b[1] - a[1])
      .map(([key, n]) => `${key} ×${n}`)
      .join(', '),
    k.other ? `**${k.other}**` : 0,
    Object.entries(k.contractGaps)
      .map(([g, n]) => `${g} ×${n}`)
      .join(', ') || '–',
  ])
  lines.push(table(['kind', 'sent', '4xx with code', 'status/code', 'other outcomes', 'contract notes'], rows), '')
  if (json.streamedBeforeAnswer) lines.push(`Body limit ${fmtBytes(json.bodyLimit)}: a streamed body got its 413 after ${fmtBytes(json.streamedBeforeAnswer)} were sent (socket buffers included).`, '')
  if (json.correct) lines.push(`Correct requests before/after: ${json.correct.identical} of ${json.correct.requests} byte-identical; collections ${json.correct.stateBefore === json.correct.stateAfter ? 'unchanged' : 'CHANGED'} (${json.correct.stateAfter}). Server pid ${json.pid} up throughout.`, '')
  lines.push(failures.length ? `**Bad traffic: FAILED**\n\n${failures.map((f) => `- ${truncate(f, 800).replace(/\n/g, ' ')}`).join('\n')}` : '**Bad traffic: passed** (every request a 4xx with a code; the server stayed up and answered identically).', '')
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------
// Standalone runner.

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = cliArgs(process.argv.slice(2))
  const { loadDataset, repoRoot } = await import('../datasets.mjs')
  const log = (m) => console.error(`[bad-traffic] ${m}`)
  const dataset = loadDataset(args.dataset ?? 'glove-100k', { limit: Number(args.limit ?? 2000), queries: 100, log })
  const result = await runBadTraffic({ repoRoot, dataset, log, rows: Number(args.limit ?? 2000) })
  console.log(result.markdown)
  if (args.json) fs.writeFileSync(String(args.json), JSON.stringify(result.json, null, 2))
  process.exitCode = result.ok ? 0 : 1
}
