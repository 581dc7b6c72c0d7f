// `vecdex serve` as a user runs it: a real server on a loopback port, spoken to over HTTP with
// fetch (no injection), and the command line started as a child process. The load test, the
// soak and the 1,000 bad requests are in the benchmark (npm run bench -- --suite serve).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { connect } from 'node:net'
import { join, resolve } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Collection } from '../dist/index.js'
import { createServer, SERVE_SETTINGS, type VecdexServer } from '../dist/serve.js'
import { randomMatrix } from './helpers'

const DIM = 16
const root = resolve(__dirname, '..')
const dirs: string[] = []
const servers: VecdexServer[] = []

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vecdex-serve-'))
  dirs.push(dir)
  return dir
}

async function start(options: Parameters<typeof createServer>[0] = {}): Promise<{ server: VecdexServer; url: string }> {
  const server = await createServer({ port: 0, logger: false, ...options })
  servers.push(server)
  return { server, url: await server.listen() }
}

async function call(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
  }
  const response = await fetch(url + path, init)
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  return { status: response.status, body: type.includes('json') ? JSON.parse(text) : text, headers: response.headers }
}

const vectors = randomMatrix(300, DIM, 20)
const vectorOf = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM))
const items = Array.from({ length: 300 }, (_, i) => ({ id: i % 3 === 0 ? `doc-${i}` : i, vector: vectorOf(i), text: `text ${i}`, metadata: { group: i % 5, tag: i % 2 ? 'odd' : 'even' } }))

afterEach(async () => {
  await Promise.allSettled(servers.splice(0).map((s) => s.close()))
})
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('vecdex serve over HTTP', () => {
  it('creates, upserts, searches (single, batch, filtered), gets, counts, deletes, describes and drops', async () => {
    const { url } = await start()
    expect((await call(url, 'GET', '/health')).body.status).toBe('ok')
    const created = await call(url, 'POST', '/collections', { name: 'docs', dimensions: DIM, metric: 'l2sq', fields: { group: 'number', tag: 'string' } })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ name: 'docs', dimensions: DIM, metric: 'l2sq', index: 'hnsw', size: 0 })
    expect((await call(url, 'POST', '/collections/docs/upsert', { items })).body).toEqual({ upserted: 300 })

    // The same items in-process answer the same: the server adds nothing to the hits.
    using local = new Collection({ dimensions: DIM, metric: 'l2sq', fields: { group: 'number', tag: 'string' } })
    await local.upsert(items)
    const query = vectorOf(7)
    const single = await call(url, 'POST', '/collections/docs/search', { vector: query, k: 5 })
    expect(single.status).toBe(200)
    expect(single.body.hits.map((h: { id: unknown }) => h.id)).toEqual((await local.search(query, { k: 5 })).map((h) => h.id))
    expect(single.body.hits[0]).toMatchObject({ id: 7, text: 'text 7', metadata: { group: 2, tag: 'odd' } })
    expect(single.body.hits[0].distance).toBeCloseTo(0, 5)

    const filter = { group: { $gte: 3 }, tag: 'even' }
    const batch = await call(url, 'POST', '/collections/docs/search', { vectors: [vectorOf(1), vectorOf(2)], k: 4, filter, includeMetadata: false })
    const expected = await local.search([vectorOf(1), vectorOf(2)], { k: 4, filter, includeMetadata: false })
    expect(batch.body.results.map((r: { id: unknown }[]) => r.map((h) => h.id))).toEqual(expected.map((r) => r.map((h) => h.id)))
    for (const hit of batch.body.results.flat()) expect(hit.metadata).toBeUndefined()

    const got = await call(url, 'POST', '/collections/docs/get', { ids: ['doc-3', 4, 'missing'] })
    expect(got.body.items[0]).toMatchObject({ id: 'doc-3', text: 'text 3', metadata: { group: 3, tag: 'odd' } })
    expect(got.body.items[0].vector).toHaveLength(DIM)
    expect(got.body.items[0].vector[0]).toBeCloseTo(vectorOf(3)[0]!, 6)
    expect(got.body.items[2]).toBeNull()
    expect((await call(url, 'POST', '/collections/docs/count', { filter: { tag: 'odd' } })).body).toEqual({ count: 150 })
    expect((await call(url, 'POST', '/collections/docs/delete', { filter: { group: 0 } })).body).toEqual({ deleted: 60 })
    expect((await call(url, 'POST', '/collections/docs/delete', { ids: ['doc-3', 4, 'missing'] })).body).toEqual({ deleted: 2 })
    const described = await call(url, 'GET', '/collections/docs')
    expect(described.body).toMatchObject({ name: 'docs', size: 238, dirty: true, stats: { size: 238 } })
    expect(described.body.stats.memoryBytes).toBeGreaterThan(238 * DIM * 4)
    expect(described.body.stats.index.vectors + described.body.stats.index.codes + described.body.stats.index.graph + described.body.stats.index.ids).toBe(described.body.stats.indexBytes)
    expect((await call(url, 'GET', '/collections')).body.collections.map((c: { name: string }) => c.name)).toEqual(['docs'])
    expect((await call(url, 'POST', '/collections/docs/save')).body).toMatchObject({ statusCode: 409, code: 'ERR_NO_DATA_DIR' })
    expect((await call(url, 'DELETE', '/collections/docs')).body).toEqual({ dropped: true })
    expect((await call(url, 'POST', '/collections/docs/search', { vector: query, k: 1 })).status).toBe(404)
  })

  it('answers bad requests with a 4xx and a code, and stays correct', async () => {
    const { url } = await start({ limits: { bodyLimit: 64 * 1024, maxK: 100 } })
    await call(url, 'POST', '/collections', { name: 'c', dimensions: DIM })
    await call(url, 'POST', '/collections/c/upsert', { items: items.slice(0, 50) })
    const good = () => call(url, 'POST', '/collections/c/search', { vector: vectorOf(9), k: 3 })
    const before = (await good()).body
    const deep = '{"items":[{"id":1,"vector":[1],"metadata":' + '{"a":'.repeat(200) + '1' + '}'.repeat(200) + '}]}'
    const cases: [string, unknown, number, string, Record<string, string>?][] = [
      ['k as a string', { vector: vectorOf(1), k: '3' }, 400, 'ERR_INVALID_ARGUMENT'],
      ['k beyond maxK', { vector: vectorOf(1), k: 1e12 }, 400, 'ERR_INVALID_ARGUMENT'],
      ['k of 1e400 (Infinity)', `{"vector":${JSON.stringify(vectorOf(1))},"k":1e400}`, 400, 'ERR_INVALID_ARGUMENT'],
      ['vector of strings', { vector: vectorOf(1).map(String), k: 3 }, 400, 'ERR_INVALID_ARGUMENT'],
      ['wrong dimensions', { vector: [1, 2, 3], k: 3 }, 400, 'ERR_DIMENSION_MISMATCH'],
      ['a float32 overflow', { vector: [1e39, ...vectorOf(1).slice(1)], k: 3 }, 400, 'ERR_INVALID_ARGUMENT'],
      ['a zero vector under cosine', { vector: new Array(DIM).fill(0), k: 3 }, 400, 'ERR_ZERO_VECTOR'],
      ['vector and vectors', { vector: vectorOf(1), vectors: [vectorOf(1)], k: 3 }, 400, 'ERR_INVALID_ARGUMENT'],
      ['an unknown field', { vector: vectorOf(1), k: 3, topK: 3 }, 400, 'ERR_INVALID_ARGUMENT'],
      ['a bad filter', { vector: vectorOf(1), k: 3, filter: { group: { $foo: 1 } } }, 400, 'ERR_INVALID_ARGUMENT'],
      ['truncated JSON', '{"vector":[1,2', 400, 'ERR_BAD_JSON'],
      ['an empty body', '', 400, 'ERR_BAD_JSON'],
      ['a __proto__ key', '{"vector":[1],"k":1,"filter":{"__proto__":{"polluted":true}}}', 400, 'ERR_INVALID_ARGUMENT'],
      ['constructor.prototype', '{"vector":[1],"k":1,"filter":{"constructor":{"prototype":{"polluted":true}}}}', 400, 'ERR_INVALID_ARGUMENT'],
      ['text/plain', 'k=1', 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' }],
      ['a form', 'k=1', 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['a body over the limit', { vector: new Array(40_000).fill(1), k: 1 }, 413, 'ERR_BODY_TOO_LARGE'],
    ]
    for (const [what, body, status, code, headers] of cases) {
      const response = await call(url, 'POST', '/collections/c/search', body, headers)
      expect({ what, status: response.status, code: response.body.code }).toEqual({ what, status, code })
      expect(response.body.requestId).toBe(response.headers.get('x-request-id'))
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    // 1e400 parses as Infinity, which JSON cannot store: refused, not saved as null.
    const overflow = await call(url, 'POST', '/collections/c/upsert', `{"items":[{"id":"big","vector":${JSON.stringify(vectorOf(1))},"metadata":{"x":[1,-1e400]}}]}`)
    expect([overflow.status, overflow.body.code]).toEqual([400, 'ERR_INVALID_ARGUMENT'])
    const upsertDeep = await call(url, 'POST', '/collections/c/upsert', deep)
    expect([upsertDeep.status, upsertDeep.body.code]).toEqual([400, 'ERR_INVALID_ARGUMENT'])
    const bigId = await call(url, 'POST', '/collections/c/upsert', `{"items":[{"id":18446744073709551615,"vector":${JSON.stringify(vectorOf(1))}}]}`)
    expect([bigId.status, bigId.body.code]).toEqual([400, 'ERR_INVALID_ARGUMENT'])
    expect(bigId.body.message).toMatch(/must be sent as strings/)
    const asString = await call(url, 'POST', '/collections/c/upsert', { items: [{ id: '18446744073709551615', vector: vectorOf(60) }] })
    expect(asString.body).toEqual({ upserted: 1 })
    expect((await call(url, 'POST', '/collections/c/get', { ids: ['18446744073709551615'], includeVectors: false })).body.items[0].id).toBe('18446744073709551615')
    expect((await call(url, 'POST', '/collections/nope/search', { vector: vectorOf(1), k: 1 })).body.code).toBe('ERR_NOT_FOUND')
    expect((await call(url, 'POST', '/collections', { name: 'c', dimensions: DIM })).body.code).toBe('ERR_EXISTS')
    expect((await call(url, 'POST', '/collections', { name: '../etc', dimensions: DIM })).body.code).toBe('ERR_INVALID_ARGUMENT')
    expect((await call(url, 'POST', '/collections', { name: 'x', dimensions: DIM, efSerch: 5 })).body.code).toBe('ERR_INVALID_ARGUMENT')
    expect((await call(url, 'GET', '/nowhere')).body.code).toBe('ERR_NOT_FOUND')
    // A body cut short by the client (it half-closes before Content-Length bytes): a JSON 400 with a code.
    const { port } = new URL(url)
    const truncated = await new Promise<string>((resolveReply, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end('POST /collections/c/search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"vector":[1,')
      })
      let reply = ''
      socket.on('data', (d) => (reply += d))
      socket.on('close', () => resolveReply(reply))
      socket.on('error', reject)
    })
    expect(truncated).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(truncated.slice(truncated.indexOf('\r\n\r\n') + 4))).toMatchObject({ statusCode: 400, code: 'ERR_BAD_JSON' })
    expect((await good()).body).toEqual(before)
  })

  it('micro-batches concurrent searches into fewer native calls, with the answers of unbatched ones', async () => {
    const batched = await start({ batching: { maxBatch: 64 } })
    const plainServer = await start({ batching: false })
    for (const { url } of [batched, plainServer]) {
      await call(url, 'POST', '/collections', { name: 'c', dimensions: DIM, index: 'flat' })
      await call(url, 'POST', '/collections/c/upsert', { items })
    }
    const queries = Array.from({ length: 200 }, (_, i) => ({ vector: vectorOf(i), k: 5, ...(i % 4 === 0 ? { filter: { tag: 'odd' } } : {}) }))
    // A zero vector rides along: refused before it could join (and spoil) a batch.
    const zero = { vector: new Array(DIM).fill(0), k: 5 }
    const [withBatching, zeroAnswer] = await Promise.all([Promise.all(queries.map((q) => call(batched.url, 'POST', '/collections/c/search', q))), call(batched.url, 'POST', '/collections/c/search', zero)])
    const without = await Promise.all(queries.map((q) => call(plainServer.url, 'POST', '/collections/c/search', q)))
    expect(zeroAnswer.body.code).toBe('ERR_ZERO_VECTOR')
    expect(withBatching.map((r) => r.body)).toEqual(without.map((r) => r.body))
    const metrics = (await call(batched.url, 'GET', '/metrics')).body as string
    const count = Number(/^vecdex_search_batch_size_count (\d+)/m.exec(metrics)?.[1])
    const sum = Number(/^vecdex_search_batch_size_sum (\d+)/m.exec(metrics)?.[1])
    expect(sum).toBe(200)
    expect(count).toBeLessThan(200)
    expect(metrics).toMatch(/^nodejs_eventloop_lag_p99_seconds /m)
    expect(metrics).toMatch(/^vecdex_collection_items\{collection="c"\} 300$/m)
    expect(metrics).toMatch(/^vecdex_http_request_duration_seconds_count\{method="POST",route="\/collections\/:name\/search"\} 201$/m)
  })

  it('requires the API key when set (constant-time check), except on /health', async () => {
    const { url } = await start({ apiKey: 'correct horse battery' })
    expect((await call(url, 'GET', '/health')).status).toBe(200)
    expect((await call(url, 'GET', '/collections')).body.code).toBe('ERR_UNAUTHORIZED')
    expect((await call(url, 'GET', '/collections', undefined, { authorization: 'Bearer wrong' })).status).toBe(401)
    expect((await call(url, 'GET', '/collections', undefined, { authorization: 'Bearer correct horse battery' })).status).toBe(200)
    expect((await call(url, 'GET', '/metrics', undefined, { 'x-api-key': 'correct horse battery' })).status).toBe(200)
    const document = (await call(url, 'GET', '/openapi.json', undefined, { 'x-api-key': 'correct horse battery' })).body
    expect(document.components.securitySchemes.bearer.scheme).toBe('bearer')
  })

  it('documents its defaults and its API from the schemas it validates with', async () => {
    const server = await createServer({ logger: false })
    servers.push(server)
    expect(server.settings).toMatchObject({ host: '127.0.0.1', port: 7700, batching: { maxBatch: 256, windowMs: 0, maxInFlight: 2 }, autosaveSeconds: 0, apiKey: false })
    expect(server.settings.limits).toEqual({ bodyLimit: 16 * 1024 * 1024, maxK: 1000, maxEfSearch: 4096, maxQueries: 1024, maxItems: 10_000, maxIds: 10_000, maxTextLength: 1_000_000, maxDepth: 32 })
    const { url } = await start()
    const document = (await call(url, 'GET', '/openapi.json')).body
    expect(document.openapi).toBe('3.1.0')
    const search = document.paths['/collections/{name}/search'].post
    expect(search.requestBody.content['application/json'].schema.properties.k).toEqual({ type: 'integer', minimum: 1, maximum: 1000 })
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/health', '/metrics', '/collections', '/collections/{name}', '/collections/{name}/upsert', '/collections/{name}/save']))
    await expect(createServer({ prot: 80 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(createServer({ batching: { maxBatch: 0 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('finishes writes in flight at shutdown, saves changed collections, and serves them after a restart', async () => {
    const dataDir = tempDir()
    const first = await start({ dataDir })
    await call(first.url, 'POST', '/collections', { name: 'kept', dimensions: DIM, fields: { tag: 'string' } })
    await call(first.url, 'POST', '/collections/kept/upsert', { items: items.slice(0, 100) })
    // A write still running when the shutdown starts is finished and saved, not lost.
    const late = call(first.url, 'POST', '/collections/kept/upsert', { items: items.slice(100, 300) })
    await new Promise((r) => setTimeout(r, 5))
    await first.server.close()
    expect((await late).body).toEqual({ upserted: 200 })
    expect(existsSync(join(dataDir, 'kept.vdx'))).toBe(true)

    const second = await start({ dataDir })
    const listed = (await call(second.url, 'GET', '/collections')).body.collections
    expect(listed).toEqual([expect.objectContaining({ name: 'kept', size: 300, dirty: false, fields: { tag: 'string' } })])
    expect((await call(second.url, 'POST', '/collections/kept/get', { ids: [items[299]!.id], includeVectors: false })).body.items[0].metadata).toEqual(items[299]!.metadata)
    // A file that is not a collection stops the start, naming it.
    writeFileSync(join(dataDir, 'broken.vdx'), 'not a collection')
    await expect(createServer({ dataDir, logger: false })).rejects.toMatchObject({ code: 'ERR_CORRUPT_FILE', message: expect.stringContaining('broken.vdx') })
  })

  it('runs from the command line: --help, the listening line, /health, /metrics, SIGTERM saves and exits 0', async () => {
    const help = spawn(process.execPath, [join(root, 'bin/vecdex.mjs'), 'serve', '--help'])
    let helpText = ''
    help.stdout.on('data', (d) => (helpText += d))
    expect(await new Promise((r) => help.on('exit', r))).toBe(0)
    expect(helpText).toMatch(/--port N/)
    // The defaults --help shows are the library's (SERVE_SETTINGS), not copies.
    expect(helpText).toContain(`(default ${SERVE_SETTINGS.port.default};`)
    expect(helpText).toContain(`(default ${SERVE_SETTINGS.limits.bodyLimit.default.toLocaleString('en-US')})`)
    expect(helpText).toContain(`most queries per native batch (default ${SERVE_SETTINGS.batching.maxBatch.default})`)

    const dataDir = tempDir()
    const child = spawn(process.execPath, [join(root, 'bin/vecdex.mjs'), 'serve', '--port', '0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line in:\n${out}`)), 15_000)
      child.stdout.on('data', () => {
        const line = out.split('\n').find((l) => l.includes('"vecdex serve listening"'))
        if (line) {
          clearTimeout(timer)
          resolveUrl(JSON.parse(line).address)
        }
      })
    })
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await call(url, 'GET', '/health')).status).toBe(200)
    expect((await call(url, 'GET', '/metrics')).body).toMatch(/# TYPE vecdex_http_requests_total counter/)
    await call(url, 'POST', '/collections', { name: 'cli', dimensions: DIM })
    await call(url, 'POST', '/collections/cli/upsert', { items: items.slice(0, 10) })
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(out).toMatch(/"msg":"collection saved"/)
    using reloaded = await Collection.load(join(dataDir, 'cli.vdx'))
    expect(reloaded.size).toBe(10)
  })
})
