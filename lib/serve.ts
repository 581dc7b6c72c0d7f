/**
 * `vecdex/serve`: vecdex collections over HTTP (Fastify), the server `vecdex serve` runs.
 *
 * ```ts
 * const { createServer } = require('vecdex/serve')
 * const server = await createServer({ dataDir: './data', port: 7700 })
 * console.log(await server.listen())          // http://127.0.0.1:7700
 * process.on('SIGTERM', () => server.close()) // finishes requests, saves changed collections
 * ```
 *
 * The API (JSON bodies, validated; every error `{ statusCode, code, error, message, requestId }`):
 * collections are created, listed, described and dropped under `/collections`; items are
 * upserted, deleted, fetched, counted and searched under `/collections/:name/…`; `/health`,
 * `/metrics` (Prometheus) and `/openapi.json` describe the server. See the README's "HTTP
 * server" section or GET /openapi.json.
 */
import { randomUUID, createHash, timingSafeEqual } from 'node:crypto'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { STATUS_CODES } from 'node:http'
import { join, resolve } from 'node:path'
import { fastify, LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { Collection, type CollectionHit, type CollectionOptions, type CollectionSearchOptions, type Filter } from './collection'
import { invalidArgument, VecdexError } from './errors'
import { type BatchingOptions, DEFAULT_BATCHING, SearchBatcher } from './serve-batcher'
import { ServeMetrics } from './serve-metrics'
import { COLLECTION_NAME, DEFAULT_LIMITS, openApiDocument, routeSpecs, type RouteSpec, type ServeLimits } from './serve-schemas'
import { describe } from './validate'

export type { BatchingOptions } from './serve-batcher'
export type { ServeLimits } from './serve-schemas'

/** Options of {@link createServer}. */
export interface ServeOptions {
  /** Interface to listen on (default '127.0.0.1': this machine only; '0.0.0.0' for every interface). */
  host?: string
  /** TCP port (0 to 65,535, default 7700; 0 picks a free one, see {@link VecdexServer.address}). */
  port?: number
  /**
   * Folder of the collections: each `<name>.vdx` in it is loaded at start, and saves and the
   * shutdown write there (atomically: after a crash each file holds its last completed save).
   * Without one, nothing is persisted.
   */
  dataDir?: string
  /**
   * Requests must carry it (`authorization: Bearer <key>` or `x-api-key: <key>`), except GET
   * /health; compared in constant time. Default: no key.
   */
  apiKey?: string
  /** Micro-batching of concurrent single-query searches: true (default), false, or its settings. */
  batching?: boolean | BatchingOptions
  /** Caps on what one request may ask for (see {@link ServeLimits} for the defaults). */
  limits?: Partial<ServeLimits>
  /** Saves changed collections every this many seconds (0 to 86,400, default 0: only on request and at shutdown). */
  autosaveSeconds?: number
  /** How long a graceful shutdown waits for requests in flight before closing their connections (default 30,000 ms). */
  shutdownTimeoutMs?: number
  /**
   * Logging (pino, as Fastify logs): true (default; level 'info', JSON lines on stdout), false,
   * pino options such as `{ level: 'warn' }`, or a pino logger of your own.
   */
  logger?: boolean | { level?: string } | FastifyBaseLogger
  /** Log every request and response (default false: only errors, saves and lifecycle events). */
  logRequests?: boolean
}

const SERVE_OPTION_NAMES = ['host', 'port', 'dataDir', 'apiKey', 'batching', 'limits', 'autosaveSeconds', 'shutdownTimeoutMs', 'logger', 'logRequests']
const BATCHING_NAMES = Object.keys(DEFAULT_BATCHING)
/**
 * Every numeric setting's range and default, in one place: createServer checks against them and
 * `vecdex serve` takes its flags' limits and its --help defaults from them.
 */
export const SERVE_SETTINGS = {
  host: { default: '127.0.0.1' },
  port: { min: 0, max: 65535, default: 7700 },
  autosaveSeconds: { min: 0, max: 86_400, default: 0 },
  shutdownTimeoutMs: { min: 0, max: 3_600_000, default: 30_000 },
  batching: {
    maxBatch: { min: 1, max: 4096, default: DEFAULT_BATCHING.maxBatch },
    windowMs: { min: 0, max: 100, default: DEFAULT_BATCHING.windowMs },
    maxInFlight: { min: 1, max: 64, default: DEFAULT_BATCHING.maxInFlight },
  },
  limits: {
    bodyLimit: { min: 1024, max: 2 ** 31 - 1, default: DEFAULT_LIMITS.bodyLimit },
    maxK: { min: 1, max: 65536, default: DEFAULT_LIMITS.maxK },
    maxEfSearch: { min: 1, max: 65536, default: DEFAULT_LIMITS.maxEfSearch },
    maxQueries: { min: 1, max: 65536, default: DEFAULT_LIMITS.maxQueries },
    maxItems: { min: 1, max: 1_000_000, default: DEFAULT_LIMITS.maxItems },
    maxIds: { min: 1, max: 1_000_000, default: DEFAULT_LIMITS.maxIds },
    maxTextLength: { min: 0, max: 2 ** 29, default: DEFAULT_LIMITS.maxTextLength },
    maxDepth: { min: 2, max: 1000, default: DEFAULT_LIMITS.maxDepth },
  },
} as const

type Range = { min: number; max: number; default: number }

/** The server's settings once checked. */
export interface Settings {
  host: string
  port: number
  dataDir: string | undefined
  apiKey: string | undefined
  batching: Required<BatchingOptions> | undefined
  limits: ServeLimits
  autosaveSeconds: number
  shutdownTimeoutMs: number
  logger: ServeOptions['logger']
  logRequests: boolean
}

function checkUnknown(value: object, names: string[], what: string): void {
  for (const key of Object.keys(value)) {
    if (!names.includes(key)) throw invalidArgument(`${what}: unknown option "${key}" (expected one of ${names.join(', ')})`)
  }
}

function checkRange(value: unknown, name: string, { min, max, default: fallback }: Range): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}, got ${describe(value)}`)
  }
  return value
}

function checkSettings(options: ServeOptions): Settings {
  if (options === null || typeof options !== 'object') throw invalidArgument(`serve options must be an object, got ${describe(options)}`)
  checkUnknown(options, SERVE_OPTION_NAMES, 'createServer')
  const { host = SERVE_SETTINGS.host.default, dataDir, apiKey, batching = true, limits = {}, logger = true, logRequests = false } = options
  if (typeof host !== 'string' || host.length === 0) throw invalidArgument(`host must be a non-empty string, got ${describe(host)}`)
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir.length === 0)) throw invalidArgument(`dataDir must be a folder path, got ${describe(dataDir)}`)
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.length < 8)) throw invalidArgument('apiKey must be a string of at least 8 characters')
  if (typeof logRequests !== 'boolean') throw invalidArgument(`logRequests must be a boolean, got ${describe(logRequests)}`)
  let batchSettings: Required<BatchingOptions> | undefined
  if (batching === true) batchSettings = { ...DEFAULT_BATCHING }
  else if (batching !== false) {
    if (batching === null || typeof batching !== 'object') throw invalidArgument(`batching must be a boolean or an object, got ${describe(batching)}`)
    checkUnknown(batching, BATCHING_NAMES, 'batching')
    batchSettings = { ...DEFAULT_BATCHING }
    for (const name of BATCHING_NAMES as (keyof BatchingOptions)[]) {
      batchSettings[name] = checkRange(batching[name], `batching.${name}`, SERVE_SETTINGS.batching[name])
    }
  }
  if (limits === null || typeof limits !== 'object') throw invalidArgument(`limits must be an object, got ${describe(limits)}`)
  checkUnknown(limits, Object.keys(DEFAULT_LIMITS), 'limits')
  const checkedLimits = { ...DEFAULT_LIMITS }
  for (const name of Object.keys(DEFAULT_LIMITS) as (keyof ServeLimits)[]) {
    checkedLimits[name] = checkRange(limits[name], `limits.${name}`, SERVE_SETTINGS.limits[name])
  }
  return {
    host,
    port: checkRange(options.port, 'port', SERVE_SETTINGS.port),
    dataDir: dataDir === undefined ? undefined : resolve(dataDir),
    apiKey,
    batching: batchSettings,
    limits: checkedLimits,
    autosaveSeconds: checkRange(options.autosaveSeconds, 'autosaveSeconds', SERVE_SETTINGS.autosaveSeconds),
    shutdownTimeoutMs: checkRange(options.shutdownTimeoutMs, 'shutdownTimeoutMs', SERVE_SETTINGS.shutdownTimeoutMs),
    logger,
    logRequests,
  }
}

/** An HTTP error with a stable code, sent as `{ statusCode, code, error, message, requestId }`. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** HTTP status of each vecdex error code; anything unlisted is a 500. */
const STATUS_OF_CODE: Record<string, number> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_DIMENSION_MISMATCH: 400,
  ERR_ZERO_VECTOR: 400,
  ERR_NOT_TRAINED: 409,
  ERR_READ_ONLY: 409,
  ERR_CLOSED: 410,
  ERR_OUT_OF_MEMORY: 507,
  ERR_ABORTED: 503,
}

/** Fastify's own errors, as the codes of this API. */
const FASTIFY_ERRORS: Record<string, [number, string]> = {
  FST_ERR_VALIDATION: [400, 'ERR_INVALID_ARGUMENT'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'ERR_BODY_TOO_LARGE'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'ERR_BAD_JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'ERR_BAD_JSON'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'ERR_BAD_JSON'],
}

/** JSON.parse reads a number beyond the float64 range (1e400) as Infinity, which JSON cannot
 * write back: stored, it would silently become null. */
const OVERFLOW = 'the body holds a number beyond the range of a 64-bit float (such as 1e400)'

/**
 * Refuses what JSON.parse accepts but the server must not: numbers that overflow to Infinity, keys that could reach an object's
 * prototype when a value is merged into another object (`__proto__`, and `prototype` under
 * `constructor`), and nesting deeper than `maxDepth` (later recursive walks of it, in JSON
 * writers and the native parser, must stay shallow). An explicit stack: deep input cannot
 * overflow the walk itself.
 */
function checkStructure(value: unknown, maxDepth: number): string | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const stack: [object, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (depth > maxDepth) return `the body is nested deeper than ${maxDepth} levels`
    if (Array.isArray(node)) {
      for (const element of node) {
        if (typeof element === 'number') {
          if (!Number.isFinite(element)) return OVERFLOW
        } else if (element !== null && typeof element === 'object') stack.push([element, depth + 1])
      }
      continue
    }
    for (const key of Object.keys(node)) {
      const child = (node as Record<string, unknown>)[key]
      if (key === '__proto__') return 'the body holds a "__proto__" key, which is refused (it could change an object\'s prototype)'
      if (key === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype')) return 'the body holds a "constructor.prototype" key, which is refused'
      if (typeof child === 'number') {
        if (!Number.isFinite(child)) return OVERFLOW
      } else if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return undefined
}

/** A request's vector as float32, checked as the native core would check it, so one bad query
 * never reaches a shared batch. */
function toQuery(values: number[], collection: Collection, what: string): Float32Array {
  if (values.length !== collection.dimensions) throw new VecdexError('ERR_DIMENSION_MISMATCH', `${what} has ${values.length} numbers; the collection has ${collection.dimensions} dimensions`)
  const query = Float32Array.from(values)
  let norm = 0
  for (let i = 0; i < query.length; i++) {
    const x = query[i]!
    if (!Number.isFinite(x)) throw invalidArgument(`${what}[${i}] is ${values[i]}, which is not a finite 32-bit float`)
    norm += x * x
  }
  if (collection.metric === 'cosine' && norm === 0) throw new VecdexError('ERR_ZERO_VECTOR', `${what} is a zero vector, which has no direction under the cosine metric`)
  return query
}

/** A hit or record as JSON: vectors as arrays of numbers. */
function plain<T extends { vector?: Float32Array }>(item: T): Omit<T, 'vector'> & { vector?: number[] } {
  if (item.vector === undefined) return item as Omit<T, 'vector'>
  return { ...item, vector: Array.from(item.vector) }
}

/** One served collection and what the server knows about its persistence. */
interface Entry {
  name: string
  collection: Collection
  /** Distinguishes a collection from a later one of the same name (batch keys). */
  serial: number
  /** Writes acknowledged so far; `savedVersion` is the count the last save included. */
  version: number
  savedVersion: number
  /** The save in progress, if any: saves of one collection run one at a time. */
  saving: Promise<unknown>
  dropped: boolean
}

/** A running `vecdex serve`: see {@link createServer}. */
export class VecdexServer {
  /** The Fastify instance: `inject()` for tests, or register routes and plugins of your own before {@link listen}. */
  readonly app: FastifyInstance
  readonly #settings: Settings
  readonly #entries = new Map<string, Entry>()
  readonly #batcher: SearchBatcher | undefined
  readonly #metrics: ServeMetrics
  readonly #started = Date.now()
  readonly #apiKeyDigest: Buffer | undefined
  #serial = 0
  #writesInFlight = 0
  #writesDone: (() => void)[] = []
  #autosave: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined
  #address: string | undefined

  /** @internal use {@link createServer} */
  constructor(settings: Settings, loaded: Map<string, Collection>, version: string) {
    this.#settings = settings
    this.#apiKeyDigest = settings.apiKey === undefined ? undefined : digest(settings.apiKey)
    for (const [name, collection] of loaded) this.#entries.set(name, this.#entry(name, collection, true))
    this.#metrics = new ServeMetrics({
      collections: () => [...this.#entries.values()].map((e) => ({ name: e.name, size: e.collection.size, memoryBytes: e.collection.memoryBytes, dirty: this.#dirty(e) })),
      queueDepth: () => this.#batcher?.queueDepth ?? 0,
      batchesInFlight: () => this.#batcher?.inFlight ?? 0,
    })
    this.#batcher = settings.batching === undefined ? undefined : new SearchBatcher(settings.batching, (size) => this.#metrics.batchSize.observe(size))
    this.app = this.#build(version)
  }

  /** The settings in force, defaults filled in (the API key is only said to be set or not). */
  get settings(): Readonly<Omit<Settings, 'apiKey' | 'logger'> & { apiKey: boolean }> {
    const { apiKey, logger: _logger, ...rest } = this.#settings
    return Object.freeze({ ...rest, apiKey: apiKey !== undefined, limits: { ...rest.limits }, batching: rest.batching && { ...rest.batching } })
  }

  /** `http://host:port` once listening. */
  get address(): string | undefined {
    return this.#address
  }

  /** The collections served, by name (use them in-process as any {@link Collection}; writes made this way are not tracked for saving). */
  get collections(): ReadonlyMap<string, Collection> {
    return new Map([...this.#entries].map(([name, e]) => [name, e.collection]))
  }

  /** Starts listening; resolves with the address (`http://127.0.0.1:7700`). */
  async listen(): Promise<string> {
    await this.app.listen({ host: this.#settings.host, port: this.#settings.port })
    const address = this.app.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : this.#settings.port
    const host = this.#settings.host.includes(':') ? `[${this.#settings.host}]` : this.#settings.host
    this.#address = `http://${host}:${port}`
    if (this.#settings.autosaveSeconds > 0) {
      let running = false
      // A round still saving when the next is due is not doubled: the next round starts after it.
      this.#autosave = setInterval(() => {
        if (running) return
        running = true
        void this.#saveDirty('autosave').finally(() => (running = false))
      }, this.#settings.autosaveSeconds * 1000)
      this.#autosave.unref()
    }
    if (this.#apiKeyDigest === undefined && !['127.0.0.1', '::1', 'localhost'].includes(this.#settings.host)) {
      this.app.log.warn({ host: this.#settings.host }, 'listening beyond this machine without an API key: anyone who can reach the port can read and change every collection')
    }
    this.app.log.info(
      { address: this.#address, port, dataDir: this.#settings.dataDir ?? null, collections: this.#entries.size, batching: this.#settings.batching ?? false, apiKey: this.#apiKeyDigest !== undefined },
      'vecdex serve listening',
    )
    return this.#address
  }

  /**
   * Graceful shutdown: stops accepting connections (requests on open ones get 503
   * ERR_SHUTTING_DOWN), lets requests in flight finish (up to `shutdownTimeoutMs`, then closes
   * their connections), saves every collection changed since its last save, and frees them.
   * Idempotent. Rejects if a save fails (the previous file is then left whole).
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#autosave)
    this.app.log.info('vecdex serve stopping: finishing requests in flight')
    const force = setTimeout(() => this.app.server.closeAllConnections?.(), this.#settings.shutdownTimeoutMs)
    force.unref()
    try {
      await this.app.close()
    } finally {
      clearTimeout(force)
    }
    await this.#writesSettled()
    await this.#batcher?.drained()
    const failures = await this.#saveDirty('shutdown')
    for (const entry of this.#entries.values()) entry.collection.close()
    this.app.log.info({ saveFailures: failures.length }, 'vecdex serve stopped')
    if (failures.length > 0) throw failures[0]
  }

  #entry(name: string, collection: Collection, saved: boolean): Entry {
    return { name, collection, serial: ++this.#serial, version: saved ? 0 : 1, savedVersion: 0, saving: Promise.resolve(), dropped: false }
  }

  #dirty(entry: Entry): boolean {
    return entry.version !== entry.savedVersion
  }

  #file(name: string): string {
    return join(this.#settings.dataDir!, `${name}.vdx`)
  }

  /** Saves one collection after any save of it in progress; resolves with the file's size. */
  #save(entry: Entry): Promise<number> {
    const run = entry.saving.then(async () => {
      if (entry.dropped) throw new HttpError(404, 'ERR_NOT_FOUND', `no collection "${entry.name}"`)
      const version = entry.version
      const file = this.#file(entry.name)
      try {
        await entry.collection.save(file)
      } catch (error) {
        this.#metrics.saves.inc({ outcome: 'failed' })
        throw error
      }
      this.#metrics.saves.inc({ outcome: 'saved' })
      entry.savedVersion = Math.max(entry.savedVersion, version)
      return (await stat(file)).size
    })
    entry.saving = run.catch(() => undefined)
    return run
  }

  /** Saves every changed collection; returns the errors of those that failed (each logged). */
  async #saveDirty(reason: string): Promise<unknown[]> {
    if (this.#settings.dataDir === undefined) return []
    const failures: unknown[] = []
    for (const entry of [...this.#entries.values()].filter((e) => this.#dirty(e))) {
      try {
        const bytes = await this.#save(entry)
        this.app.log.info({ collection: entry.name, bytes, reason }, 'collection saved')
      } catch (error) {
        failures.push(error)
        this.app.log.error({ collection: entry.name, reason, err: error }, 'collection save failed')
      }
    }
    return failures
  }

  /** Runs a write and counts it: the shutdown waits for writes in flight before saving. */
  async #write<T>(entry: Entry, work: () => Promise<T>): Promise<T> {
    this.#writesInFlight++
    try {
      const result = await work()
      entry.version++
      return result
    } finally {
      if (--this.#writesInFlight === 0) for (const done of this.#writesDone.splice(0)) done()
    }
  }

  #writesSettled(): Promise<void> {
    if (this.#writesInFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#writesDone.push(resolve))
  }

  #lookup(name: string): Entry {
    const entry = this.#entries.get(name)
    if (entry === undefined) throw new HttpError(404, 'ERR_NOT_FOUND', `no collection "${name}"`)
    return entry
  }

  #info(entry: Entry) {
    const c = entry.collection
    return { name: entry.name, size: c.size, dimensions: c.dimensions, metric: c.metric, index: c.index, fields: c.fields, dirty: this.#dirty(entry) }
  }

  #authorized(request: FastifyRequest): boolean {
    const header = request.headers.authorization
    const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : request.headers['x-api-key']
    if (typeof given !== 'string') return false
    // Digests of equal length: the comparison takes the same time whatever the key's length or content.
    return timingSafeEqual(digest(given), this.#apiKeyDigest!)
  }

  #build(version: string): FastifyInstance {
    const { limits, logRequests } = this.#settings
    const loggerOption = this.#settings.logger
    const isLogger = typeof loggerOption === 'object' && loggerOption !== null && typeof (loggerOption as FastifyBaseLogger).child === 'function'
    const app = fastify({
      ...(isLogger ? { loggerInstance: loggerOption as FastifyBaseLogger } : { logger: loggerOption === true ? { level: 'info' } : (loggerOption as false | { level?: string }) }),
      logController: new LogController({ disableRequestLogging: !logRequests }),
      bodyLimit: limits.bodyLimit,
      // A request whose body never finishes arriving (a truncated upload) is cut off, not waited on.
      requestTimeout: 60_000,
      return503OnClosing: false,
      requestIdHeader: false,
      genReqId: (request) => {
        const given = request.headers['x-request-id']
        return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID()
      },
      // Malformed HTTP, or a body that ends before its Content-Length: answered in this API's
      // error shape (Fastify's default has no code), then the connection is closed.
      clientErrorHandler: (error: NodeJS.ErrnoException, socket: import('node:net').Socket) => {
        const [status, code, message] = clientError(error)
        const body = JSON.stringify({ statusCode: status, code, error: STATUS_CODES[status] ?? 'Error', message, requestId: randomUUID() })
        if (socket.writable) {
          socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
        } else socket.destroy(error)
      },
      // Strict: no type coercion ("10" is not a number), unknown fields refused rather than dropped.
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
    }) as unknown as FastifyInstance

    app.removeContentTypeParser(['application/json', 'text/plain'])
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      const text = body as string
      if (text.length === 0) return done(new HttpError(400, 'ERR_BAD_JSON', 'the body is empty; send a JSON object'), undefined)
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch (error) {
        return done(new HttpError(400, 'ERR_BAD_JSON', `the body is not valid JSON (${(error as Error).message})`), undefined)
      }
      const problem = checkStructure(value, limits.maxDepth)
      if (problem !== undefined) return done(new HttpError(400, 'ERR_INVALID_ARGUMENT', problem), undefined)
      done(null, value)
    })

    app.addHook('onRequest', async (request, reply) => {
      reply.header('x-request-id', request.id)
      if (this.#closing !== undefined) {
        reply.header('connection', 'close')
        throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'the server is shutting down')
      }
      if (this.#apiKeyDigest !== undefined && request.url !== '/health' && !this.#authorized(request)) {
        throw new HttpError(401, 'ERR_UNAUTHORIZED', 'a valid API key is needed: send "authorization: Bearer <key>" or "x-api-key: <key>"')
      }
    })
    // During a shutdown, connections end with the response they carry: a keep-alive connection
    // would otherwise hold the shutdown open until its idle timeout.
    app.addHook('onSend', async (_request, reply, payload) => {
      if (this.#closing !== undefined) reply.header('connection', 'close')
      return payload
    })
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched'
      this.#metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) })
      this.#metrics.latency.observe({ method: request.method, route }, reply.elapsedTime / 1000)
    })

    app.setErrorHandler((error: FastifyError | HttpError | VecdexError, request, reply) => {
      let status: number
      let code: string
      let message = error.message
      if (error instanceof HttpError) {
        ;[status, code] = [error.statusCode, error.code]
      } else if (error instanceof VecdexError) {
        ;[status, code] = [STATUS_OF_CODE[error.code] ?? 500, error.code]
      } else if ((error as FastifyError).code !== undefined && FASTIFY_ERRORS[(error as FastifyError).code] !== undefined) {
        ;[status, code] = FASTIFY_ERRORS[(error as FastifyError).code]!
        if ((error as FastifyError).validation !== undefined) message = validationMessage(error as FastifyError)
      } else {
        ;[status, code] = [500, 'ERR_INTERNAL']
      }
      if (status >= 500) request.log.error({ err: error }, 'request failed')
      reply.code(status).send({ statusCode: status, code, error: STATUS_CODES[status] ?? 'Error', message, requestId: String(request.id) })
    })
    app.setNotFoundHandler((request) => {
      throw new HttpError(404, 'ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)
    })

    const specs = routeSpecs(limits)
    const document = openApiDocument(specs, version, this.#apiKeyDigest !== undefined)
    const route = <B, P = { name: string }>(spec: RouteSpec, handler: (request: FastifyRequest<{ Body: B; Params: P }>, reply: FastifyReply) => Promise<unknown>) =>
      app.route({ method: spec.method, url: spec.url, schema: spec.schema, handler: handler as never })

    route(specs.health!, async () => ({ status: 'ok', collections: this.#entries.size, uptimeSeconds: (Date.now() - this.#started) / 1000 }))
    route(specs.metrics!, async (_request, reply) => {
      reply.type(this.#metrics.registry.contentType)
      return this.#metrics.registry.metrics()
    })
    route(specs.openapi!, async () => document)
    route(specs.listCollections!, async () => ({ collections: [...this.#entries.values()].map((e) => this.#info(e)) }))
    route<CollectionOptions & { name: string }>(specs.createCollection!, async (request, reply) => {
      const { name, ...options } = request.body
      if (this.#entries.has(name)) throw new HttpError(409, 'ERR_EXISTS', `a collection "${name}" exists`)
      const entry = this.#entry(name, new Collection(options), false)
      this.#entries.set(name, entry)
      // Its file exists from the start, so a crash cannot lose a collection that was acknowledged.
      if (this.#settings.dataDir !== undefined) {
        try {
          await this.#save(entry)
        } catch (error) {
          this.#entries.delete(name)
          entry.collection.close()
          throw error
        }
      }
      reply.code(201)
      return this.#info(entry)
    })
    route(specs.describeCollection!, async (request) => {
      const entry = this.#lookup(request.params.name)
      return { ...this.#info(entry), stats: entry.collection.stats() }
    })
    route(specs.dropCollection!, async (request) => {
      const entry = this.#lookup(request.params.name)
      this.#entries.delete(entry.name)
      entry.dropped = true
      await entry.saving
      entry.collection.close()
      if (this.#settings.dataDir !== undefined) await rm(this.#file(entry.name), { force: true })
      return { dropped: true }
    })
    route<{ items: { id: string | number; vector: number[]; text?: string; metadata?: Record<string, never> }[] }>(specs.upsert!, async (request) => {
      const entry = this.#lookup(request.params.name)
      const { items } = request.body
      await this.#write(entry, () => entry.collection.upsert(items))
      return { upserted: items.length }
    })
    route<{ ids?: (string | number)[]; filter?: Filter }>(specs.delete!, async (request) => {
      const entry = this.#lookup(request.params.name)
      const { ids, filter } = request.body
      if ((ids === undefined) === (filter === undefined)) throw invalidArgument('give one of "ids" (the items to delete) and "filter" (delete every item it admits)')
      const deleted = await this.#write(entry, () => entry.collection.delete(ids ?? { filter: filter! }))
      return { deleted }
    })
    route<{ ids: (string | number)[]; includeVectors?: boolean }>(specs.get!, async (request) => {
      const entry = this.#lookup(request.params.name)
      const { ids, ...options } = request.body
      const records = await entry.collection.get(ids, options)
      return { items: records.map((record) => (record === undefined ? null : plain(record))) }
    })
    route<{ filter?: Filter }>(specs.count!, async (request) => {
      const entry = this.#lookup(request.params.name)
      return { count: await entry.collection.count(request.body) }
    })
    route<{ vector?: number[]; vectors?: number[][] } & Omit<CollectionSearchOptions, 'signal'>>(specs.search!, async (request) => {
      const entry = this.#lookup(request.params.name)
      const { vector, vectors, ...options } = request.body
      if ((vector === undefined) === (vectors === undefined)) throw invalidArgument('give one of "vector" (one query) and "vectors" (a batch of queries)')
      const collection = entry.collection
      if (vectors !== undefined) {
        const queries = vectors.map((v, i) => toQuery(v, collection, `vectors[${i}]`))
        const rows = await collection.search(queries, options)
        return { results: rows.map((hits) => (options.includeVectors ? hits.map(plain) : hits)) }
      }
      const query = toQuery(vector!, collection, 'vector')
      let hits: CollectionHit[]
      if (this.#batcher === undefined) hits = await collection.search(query, options)
      else {
        const key = `${entry.serial}|${options.k}|${options.efSearch ?? ''}|${options.oversample ?? ''}|${options.rescore ?? ''}|${options.includeMetadata ?? ''}|${options.includeVectors ?? ''}|${options.filter === undefined ? '' : JSON.stringify(options.filter)}`
        hits = await this.#batcher.search(collection, key, query, options)
      }
      return { hits: options.includeVectors ? hits.map(plain) : hits }
    })
    route(specs.save!, async (request) => {
      const entry = this.#lookup(request.params.name)
      if (this.#settings.dataDir === undefined) throw new HttpError(409, 'ERR_NO_DATA_DIR', 'the server has no data folder (start it with --data DIR)')
      return { saved: true, bytes: await this.#save(entry) }
    })
    return app
  }
}

/** The status, code and message of a connection-level error (Node's HTTP parser or timeouts). */
function clientError(error: NodeJS.ErrnoException): [number, string, string] {
  switch (error.code) {
    case 'HPE_INVALID_EOF_STATE':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return [400, 'ERR_BAD_JSON', 'the body ended before its Content-Length (a truncated request)']
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'ERR_HEADERS_TOO_LARGE', 'the request headers are too large']
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'ERR_TIMEOUT', 'the request did not arrive in time']
    default:
      return [400, 'ERR_BAD_REQUEST', `malformed HTTP request (${error.code ?? error.message})`]
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Ajv's first complaint, with the field's path and, for an id out of range, what to do. */
function validationMessage(error: FastifyError): string {
  const first = error.validation?.[0]
  if (first === undefined) return error.message
  const path = `${error.validationContext ?? 'body'}${first.instancePath.replace(/\//g, '.').replace(/\.(\d+)(?=\.|$)/g, '[$1]')}`
  let message = `${path} ${first.message ?? 'is invalid'}`
  if (first.keyword === 'additionalProperties') message += `: "${(first.params as { additionalProperty?: string }).additionalProperty}"`
  if (first.keyword === 'enum') message += `: ${((first.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`
  if (/\.ids?(\[\d+\])?$|\.id$/.test(path) && first.keyword === 'maximum') message += ' (ids beyond 2^53 − 1, such as 64-bit keys, must be sent as strings)'
  return message
}

/**
 * A server over the collections of `options.dataDir` (each `<name>.vdx` is loaded first; a file
 * that does not load stops the start with its error, ERR_CORRUPT_FILE naming it). Call
 * {@link VecdexServer.listen} to accept connections and {@link VecdexServer.close} to stop.
 */
export async function createServer(options: ServeOptions = {}): Promise<VecdexServer> {
  const settings = checkSettings(options)
  const loaded = new Map<string, Collection>()
  if (settings.dataDir !== undefined) {
    await mkdir(settings.dataDir, { recursive: true })
    const names = (await readdir(settings.dataDir)).filter((file) => file.endsWith('.vdx') && COLLECTION_NAME.test(file.slice(0, -4))).sort()
    try {
      for (const file of names) {
        try {
          loaded.set(file.slice(0, -4), await Collection.load(join(settings.dataDir, file)))
        } catch (error) {
          if (error instanceof VecdexError) throw new VecdexError(error.code, `${join(settings.dataDir, file)}: ${error.message}`, { cause: error })
          throw error
        }
      }
    } catch (error) {
      for (const collection of loaded.values()) collection.close()
      throw error
    }
  }
  return new VecdexServer(settings, loaded, packageVersion())
}

function packageVersion(): string {
  // dist/serve.js sits one folder below package.json, as lib/serve.ts does.
  return (require('../package.json') as { version: string }).version
}
