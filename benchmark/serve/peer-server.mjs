#!/usr/bin/env node
// An HTTP search server over a peer library (hnswlib-node, usearch, LanceDB), for the serve
// suite's load test: the same Fastify as `vecdex serve` (the repository's own dependency), the
// same route and JSON shape for search — POST /collections/:name/search {vector, k, efSearch?} →
// {hits: [{id, distance}]} — with a JSON schema on the body and the reply, as vecdex serve has.
// One query per request, each peer called the way its documentation serves one query:
//   hnswlib  HierarchicalNSW.searchKnn(number[], k): synchronous, blocks the event loop
//   usearch  Index.search(Float32Array, k, 1): synchronous (its JS binding has no async search),
//            threads = 1 runs inline instead of starting threads for one query
//   lancedb  table.vectorSearch(q)…toArrow(): async, runs on LanceDB's own threads
// GET /health, and GET /metrics (prom-client default metrics: event-loop delay percentiles,
// reset at each scrape, CPU seconds, memory) so the load test reads the same figures from every
// server.
//
// Usage: node benchmark/serve/peer-server.mjs --engine hnswlib|usearch|lancedb --data DIR
//          [--host 127.0.0.1] [--port 0] [--ef N] [--log-level warn] [--workspace-out DIR]
// DIR holds <engine>.json (written by engines.mjs: collection name, metric, dims, index file)
// and the index itself. Logs are JSON lines on stdout; once listening, one line with
// "msg":"peer serve listening" and "address" (what launch.mjs waits for).

import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import promClient from 'prom-client'
import { loadPeer, useWorkspace } from '../workspace.mjs'
import { EVENT_LOOP_SAMPLING_MS, LANCEDB_REFINE_FACTOR } from './settings.mjs'

/** Upper bounds of the request schema, as vecdex serve refuses oversized k and efSearch. */
const MAX_K = 1000
const MAX_EF = 10_000
/** usearch fixes efSearch when an Index is made: Index objects kept per efSearch value. */
const USEARCH_EF_CACHE = 4

const log = (level, msg, extra = {}) => process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, msg, ...extra })}\n`)

function fail(message) {
  log(50, message)
  process.exit(1)
}

/** Reads the engine's manifest and opens its index; returns its search function. */
async function openEngine(engine, dir, defaultEf) {
  if (!['hnswlib', 'usearch', 'lancedb', 'fixed'].includes(engine)) fail(`unknown engine "${engine}": hnswlib, usearch, lancedb or fixed`)
  const manifestFile = path.join(dir, `${engine}.json`)
  if (!fs.existsSync(manifestFile)) fail(`no ${manifestFile}: build the index first (benchmark/serve/engines.mjs)`)
  if (engine === 'fixed') {
    // No index: every search answers the manifest's hits. The same Fastify, schema and JSON as
    // the other servers, so its throughput is the ceiling of any server of this shape here.
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'))
    const version = createRequire(import.meta.url)('fastify/package.json').version
    return { manifest, version: `fastify ${version}`, size: () => 0, search: async (_vector, k) => manifest.hits.slice(0, k) }
  }
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'))
  const { dim, metric } = manifest
  const loaded = loadPeer(engine === 'hnswlib' ? 'hnswlib-node' : engine === 'lancedb' ? '@lancedb/lancedb' : engine)
  if (loaded.error) fail(loaded.error)
  const lib = loaded.module

  if (engine === 'hnswlib') {
    const spaces = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }
    const index = new lib.HierarchicalNSW(spaces[metric], dim)
    index.readIndexSync(path.join(dir, manifest.file))
    let current = defaultEf
    index.setEf(current)
    return {
      manifest,
      version: loaded.version,
      size: () => index.getCurrentCount(),
      search(vector, k, ef) {
        if (ef !== current) {
          index.setEf(ef)
          current = ef
        }
        const r = index.searchKnn(vector, k)
        const hits = new Array(r.neighbors.length)
        for (let i = 0; i < hits.length; i++) hits[i] = { id: r.neighbors[i], distance: r.distances[i] }
        return hits
      },
    }
  }

  if (engine === 'usearch') {
    // Cosine is indexed as 'ip' on unit-length vectors (adapters/ann/usearch.mjs says why):
    // each query is normalised here, inside the request.
    const cosine = metric === 'cosine'
    const file = path.join(dir, manifest.file)
    const indexes = new Map()
    const indexFor = (ef) => {
      let index = indexes.get(ef)
      if (index) return index
      index = new lib.Index({ ...manifest.config, expansion_search: ef })
      index.load(file)
      if (indexes.size >= USEARCH_EF_CACHE) {
        const oldest = [...indexes.keys()].find((e) => e !== defaultEf)
        indexes.delete(oldest)
      }
      indexes.set(ef, index)
      return index
    }
    indexFor(defaultEf)
    const query = new Float32Array(dim)
    return {
      manifest,
      version: loaded.version,
      size: () => indexFor(defaultEf).size(),
      search(vector, k, ef) {
        let s = 0
        for (let j = 0; j < dim; j++) s += vector[j] * vector[j]
        const scale = cosine && s > 0 ? 1 / Math.sqrt(s) : 1
        for (let j = 0; j < dim; j++) query[j] = vector[j] * scale
        const r = indexFor(ef).search(query, k, 1)
        const hits = new Array(r.keys.length)
        for (let i = 0; i < hits.length; i++) hits[i] = { id: Number(r.keys[i]), distance: r.distances[i] }
        return hits
      },
    }
  }

  if (engine === 'lancedb') {
    const db = await lib.connect(path.join(dir, manifest.file))
    const table = await db.openTable(manifest.table)
    const [index] = await table.listIndices()
    if (index) await table.prewarmIndex(index.name)
    const distanceType = { cosine: 'cosine', l2sq: 'l2', dot: 'dot' }[metric]
    const rows = await table.countRows()
    return {
      manifest,
      version: loaded.version,
      size: () => rows,
      async search(vector, k, ef) {
        // LanceDB rejects ef < limit × refineFactor.
        const result = await table
          .vectorSearch(Float32Array.from(vector))
          .column('vector')
          .distanceType(distanceType)
          .nprobes(1)
          .ef(Math.max(ef, k * LANCEDB_REFINE_FACTOR))
          .refineFactor(LANCEDB_REFINE_FACTOR)
          .limit(k)
          .select(['id', '_distance'])
          .toArrow()
        const ids = result.getChild('id').toArray()
        const distances = result.getChild('_distance').toArray()
        const hits = new Array(ids.length)
        for (let i = 0; i < hits.length; i++) hits[i] = { id: Number(ids[i]), distance: distances[i] }
        return hits
      },
    }
  }
  throw new Error(`unreachable: engine ${engine}`)
}

async function main() {
  const { values: v } = parseArgs({
    options: {
      engine: { type: 'string' },
      data: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      ef: { type: 'string', default: '64' },
      'log-level': { type: 'string', default: 'warn' },
      'workspace-out': { type: 'string' },
    },
    strict: true,
  })
  if (!v.engine || !v.data) fail('usage: peer-server.mjs --engine hnswlib|usearch|lancedb --data DIR [--host H] [--port N] [--ef N]')
  const port = Number(v.port)
  const defaultEf = Number(v.ef)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got ${v.port}`)
  if (!Number.isInteger(defaultEf) || defaultEf < 1 || defaultEf > MAX_EF) fail(`--ef must be 1..${MAX_EF}, got ${v.ef}`)
  // The bench's --out, so an installed package finds the peers where the bench installed them.
  if (v['workspace-out']) useWorkspace(v['workspace-out'])

  const engine = await openEngine(v.engine, path.resolve(v.data), defaultEf)
  const { name, dim } = engine.manifest

  const registry = new promClient.Registry()
  // The sampling interval vecdex serve uses too (lib/serve-metrics.ts): the same figures.
  promClient.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLING_MS })
  const app = Fastify({ logger: { level: v['log-level'] }, bodyLimit: 1 << 20 })

  const hit = { type: 'object', properties: { id: { type: 'integer' }, distance: { type: 'number' } }, required: ['id', 'distance'] }
  const error = { type: 'object', properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } } }
  app.get('/health', async () => ({ status: 'ok', collections: 1, engine: v.engine, size: engine.size() }))
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType)
    return registry.metrics()
  })
  app.post(
    '/collections/:name/search',
    {
      schema: {
        params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
        body: {
          type: 'object',
          properties: {
            vector: { type: 'array', items: { type: 'number' }, minItems: dim, maxItems: dim },
            k: { type: 'integer', minimum: 1, maximum: MAX_K },
            efSearch: { type: 'integer', minimum: 1, maximum: MAX_EF },
          },
          required: ['vector', 'k'],
        },
        response: { 200: { type: 'object', properties: { hits: { type: 'array', items: hit } }, required: ['hits'] }, '4xx': error },
      },
    },
    async (req, reply) => {
      if (req.params.name !== name) {
        reply.code(404)
        return { statusCode: 404, code: 'ERR_NOT_FOUND', error: 'Not Found', message: `no collection "${req.params.name}"` }
      }
      const { vector, k, efSearch } = /** @type {{ vector: number[], k: number, efSearch?: number }} */ (req.body)
      return { hits: await engine.search(vector, k, efSearch ?? defaultEf) }
    },
  )
  app.setErrorHandler((err, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    reply.code(status).send({ statusCode: status, code: status === 400 ? 'ERR_INVALID_ARGUMENT' : status >= 500 ? 'ERR_INTERNAL' : String(err.code ?? 'ERR'), error: status >= 500 ? 'Internal Server Error' : 'Bad Request', message: err.message })
  })

  const address = await app.listen({ host: v.host, port })
  const bound = /** @type {import('node:net').AddressInfo} */ (app.server.address())
  log(30, 'peer serve listening', { address: `http://${v.host}:${bound.port}`, port: bound.port, engine: v.engine, version: engine.version, collection: name, size: engine.size(), listen: address })

  let closing = false
  const shutdown = async (signal) => {
    if (closing) return
    closing = true
    log(30, 'peer serve stopping', { signal })
    await app.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
}

main().catch((error) => fail(`peer serve failed: ${error?.stack ?? error}`))
