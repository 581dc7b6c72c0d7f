// Suite `serve`: `vecdex serve` measured as a service, from a second process (issue 20).
//
// Load test, per dataset (glove-100k, and wordnet-minilm when it is built):
//   1. each engine's index is built here with the ann suite's m / efConstruction / metric and
//      persisted; its server is started as a child process (benchmark/serve/launch.mjs): the real
//      `vecdex serve --data DIR` (with micro-batching, its default, and again with
//      --no-batching), and peer-server.mjs over hnswlib-node, usearch and LanceDB — the same
//      Fastify, route and JSON as vecdex serve;
//   2. the smallest efSearch with recall@k ≥ 0.95 is found through each server (every query over
//      HTTP; benchmark/serve/calibrate.mjs), and that recall is the one reported;
//   3. autocannon in this process loads each server at 1, 8, 32, 128 and 512 connections
//      (benchmark/serve/load.mjs): QPS, latency p50/p99/p99.9, errors, the server's event-loop
//      delay p99 and CPU, and a sample of answers checked against the sequential ones;
//   4. the in-process baseline: Collection.search(array of queries) — the batch API — on the same
//      queries and efSearch, in this process with no server running.
// Then, as asked by --serve-parts, the soak and bad-traffic checks (benchmark/serve/soak.mjs,
// bad-traffic.mjs) against vecdex serve over the first dataset.

import fs from 'node:fs'
import path from 'node:path'
import { DatasetUnavailable, loadDataset, repoRoot } from '../datasets.mjs'
import { groundTruth } from '../groundtruth.mjs'
import { machineInfo } from '../machine.mjs'
import { MINILM_DATASETS, minilmPrepared } from '../minilm-data.mjs'
import { fmt, fmtRatio, machineLine, table } from '../report.mjs'
import { peerNames } from '../adapters/index.mjs'
import { makeTempDir, removeTempDir } from '../adapters/common.mjs'
import { workspace } from '../workspace.mjs'
import { ENGINE_NOTES, SERVE_ENGINES, buildServeIndex, datasetKey } from '../serve/engines.mjs'
import { calibrate, measureAt, queryRecall } from '../serve/calibrate.mjs'
import { REQUEST_TIMEOUT_SECONDS, idleLatency, loadAutocannon, prepareBodies, runLevel } from '../serve/load.mjs'
import { launchServer } from '../serve/launch.mjs'
import { writeLatencyPlot } from '../serve/plot.mjs'
import { EVENT_LOOP_SAMPLING_MS } from '../serve/settings.mjs'

export { SERVE_ENGINES }

export const name = 'serve'
/** GloVe, plus the real MiniLM embeddings once they are built (`--prepare wordnet-minilm`). */
export const defaultDataset = () => (minilmPrepared() ? 'glove-100k,wordnet-minilm' : 'glove-100k')
export const summary = 'vecdex serve under load from a second process (autocannon, loopback) vs the same Fastify server over hnswlib-node, usearch, LanceDB: QPS, p50/p99/p99.9, event-loop p99 at 1–512 connections at recall@10 ≈ 0.95; in-process batch baseline; soak and bad traffic'

export const DEFAULT_CONNECTIONS = [1, 8, 32, 128, 512]
export const DEFAULT_DURATION_SECONDS = 10
export const DEFAULT_WARMUP_SECONDS = 2
export const SERVE_PARTS = ['load', 'soak', 'bad']
export const M = 16
export const EF_CONSTRUCTION = 128
export const TARGET_RECALL = 0.95
/** The goals of issue 20, at GOAL_CONNECTIONS connections. */
export const GOAL_CONNECTIONS = 128
const GOALS = { peerRatio: 3, tailRatio: 3, inProcessShare: 0.8 }
/** In-process baseline: batch sizes, and seconds of repeated batches per size. */
const BASELINE_BATCHES = [128, 1024]
const BASELINE_SECONDS = 3
/** Collection names of the datasets (the route is /collections/<name>/search). */
const COLLECTION_NAMES = { 'glove-100k': 'glove', 'wordnet-minilm': 'wordnet' }

const collectionName = (dataset) => COLLECTION_NAMES[dataset] ?? dataset.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 64)

/** @param {import('../run.mjs').SuiteContext & { connections?: number[], durationSeconds?: number, warmupSeconds?: number, serveParts?: string[], soakSeconds?: number }} ctx */
export async function run(ctx) {
  const { log, k, threads } = ctx
  const parts = ctx.serveParts ?? SERVE_PARTS
  const names = ctx.datasetName.split(',').map((s) => s.trim()).filter(Boolean)
  const settings = {
    connections: ctx.connections ?? DEFAULT_CONNECTIONS,
    durationSeconds: ctx.durationSeconds ?? DEFAULT_DURATION_SECONDS,
    warmupSeconds: ctx.warmupSeconds ?? DEFAULT_WARMUP_SECONDS,
    m: ctx.m ?? M,
    efConstruction: ctx.efConstruction ?? EF_CONSTRUCTION,
    targetRecall: TARGET_RECALL,
    threads,
    k,
    queries: ctx.queries ?? 1000,
    requestTimeoutSeconds: REQUEST_TIMEOUT_SECONDS,
  }
  const machine = await machineInfo()
  const engines = peerNames(ctx.peers, SERVE_ENGINES)
  const unknown = engines.filter((e) => !SERVE_ENGINES.includes(e))
  if (unknown.length) log(`serve: no server for ${unknown.join(', ')} (serve engines: ${SERVE_ENGINES.join(', ')})`)

  const datasets = []
  /** The first dataset that loads: the soak and bad-traffic checks run on it. */
  let first
  for (const datasetName of names) {
    let dataset
    try {
      if (MINILM_DATASETS.includes(datasetName) && !minilmPrepared()) {
        throw new DatasetUnavailable(`${datasetName} is not built yet (npm run bench -- --prepare ${datasetName} builds it)`)
      }
      dataset = loadDataset(datasetName, { queries: settings.queries, limit: ctx.limit, log })
    } catch (error) {
      if (!(error instanceof DatasetUnavailable)) throw error
      log(`serve: ${datasetName} skipped: ${error.message}`)
      datasets.push({ name: datasetName, skipped: error.message })
      continue
    }
    first ??= dataset
    if (parts.includes('load')) datasets.push(await loadTest(dataset, engines.filter((e) => SERVE_ENGINES.includes(e)), settings, log, machine))
  }
  if (!first) throw new DatasetUnavailable(`no dataset of ${names.join(', ')} is available`)

  const checks = {}
  for (const [part, file, fn] of [['soak', 'soak.mjs', 'runSoak'], ['bad', 'bad-traffic.mjs', 'runBadTraffic']]) {
    if (!parts.includes(part)) continue
    const efSearch = datasets.find((d) => d.name === first.name)?.servers?.find((s) => s.name === 'vecdex')?.efSearch
    checks[part] = await runCheck({ part, file, fn, dataset: first, efSearch, settings, ctx, log })
  }

  const label = datasets.filter((d) => !d.skipped).map((d) => d.name).join('+') || first.name
  return {
    datasetName: label,
    markdown: markdown({ datasets, checks, settings, machine, parts }),
    json: {
      dataset: { name: label, datasets: datasets.map((d) => d.dataset ?? { name: d.name, skipped: d.skipped }) },
      k,
      params: { ...settings, parts, engines },
      autocannon: loadAutocannon().version ?? null,
      datasets,
      checks,
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Load test of one dataset.

async function loadTest(dataset, engines, settings, log, machine) {
  const { k, connections, durationSeconds, warmupSeconds, m, efConstruction, threads } = settings
  const { n, q, dim } = dataset
  const collection = collectionName(dataset.name)
  const route = `/collections/${collection}/search`
  const levels = connections.length
  log(`serve: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, ${q} queries, k ${k}; m ${m}, efConstruction ${efConstruction}; ${levels} levels (${connections.join(', ')} connections) × ${durationSeconds} s + ${warmupSeconds} s warm-up per server`)
  const gt = await groundTruth(dataset, k, { log })
  const hash = datasetKey(dataset)
  const bodyCache = new Map()
  const bodiesAt = (ef) => {
    if (!bodyCache.has(ef)) bodyCache.set(ef, prepareBodies(dataset.queries, q, dim, { k, efSearch: ef }))
    return bodyCache.get(ef)
  }
  const recallOf = (qi, ids) => queryRecall(gt, qi, ids, k)
  const result = {
    name: dataset.name,
    dataset: { name: dataset.name, metric: dataset.metric, n, q, dim, source: dataset.source },
    collection,
    groundTruth: gt.source,
    servers: [],
    inProcess: undefined,
  }
  const autocannon = loadAutocannon()
  if (autocannon.error) {
    result.skipped = `the load generator is missing: ${autocannon.error}`
    log(`serve: ${result.skipped}`)
    return result
  }

  /** Runs every level against a started server; fills `record.levels`. */
  const measureLevels = async (server, record, bodies, reference) => {
    record.levels = []
    const idleSeconds = await idleLatency(server.address, route, bodies)
    record.idleLatencyMs = idleSeconds * 1000
    for (const c of connections) {
      const level = await runLevel({ address: server.address, path: route, bodies, connections: c, seconds: durationSeconds, warmupSeconds, idleSeconds, reference: reference && ((qi) => reference[qi]), recallOf })
      if (!level.drained) log(`serve: ${record.name} ${c} connections: still busy ${level.drainSeconds.at(-1)} s after the run (requests left by closed connections)`)
      record.levels.push(level)
      log(`serve: ${record.name} ${c} connections: ${fmt(level.qps)} QPS, p50 ${fmt(level.latencyMs.p50)} ms, p99 ${fmt(level.latencyMs.p99)} ms, p99.9 ${fmt(level.latencyMs.p999)} ms, errors ${level.errors}, timeouts ${level.timeouts}, non-2xx ${level.non2xx}, event loop p99 ${fmt(level.eventLoopP99Ms)} ms, server ${fmt(level.serverCpuCores)} cores, client ${fmt(level.clientCpuCores)} cores${level.checks ? `, checked ${level.checks.sampled} (${level.checks.differing} differ, recall ${fmt(level.checks.recall)})` : ''}`)
      // A server that died under load has nothing more to measure.
      if (server.child.exitCode !== null || server.child.signalCode !== null) {
        record.error = `the server exited during the ${c}-connection level (code ${server.child.exitCode}, signal ${server.child.signalCode}); last output: ${server.logs().slice(-5).join(' | ')}`
        log(`serve: ${record.name}: ${record.error}`)
        break
      }
    }
  }

  for (const engine of engines) {
    let built
    try {
      built = await buildServeIndex(engine, dataset, { m, efConstruction, threads, collection, hash, log })
    } catch (error) {
      const reason = String(error?.message ?? error).split('\n')[0]
      log(`serve: ${engine} skipped: ${reason}`)
      result.servers.push({ name: engine, engine, skipped: reason })
      continue
    }
    const variants =
      engine === 'vecdex'
        ? [
            { name: 'vecdex', args: [], batching: true },
            { name: 'vecdex --no-batching', args: ['--no-batching'], batching: false },
          ]
        : [{ name: engine, args: [] }]
    let calibrated
    try {
      for (const variant of variants) {
        const record = { name: variant.name, engine, version: built.version, batching: variant.batching, notes: ENGINE_NOTES[engine], index: { cached: built.cached, buildSeconds: built.buildSeconds } }
        result.servers.push(record)
        let server
        try {
          server = await launchServer(
            engine === 'vecdex'
              ? { command: 'vecdex', args: ['--data', built.dir, '--log-level', 'warn', ...variant.args], env: { VECDEX_THREADS: String(threads) }, log }
              : { command: 'peer', engine, args: ['--data', built.dir, '--ef', '64', '--workspace-out', workspace().results], env: { LANCE_CPU_THREADS: String(threads) }, log },
          )
        } catch (error) {
          record.error = `server did not start: ${error?.message ?? error}`
          log(`serve: ${record.name}: ${record.error}`)
          continue
        }
        try {
          let reference
          if (!calibrated) {
            const c = await calibrate({ address: server.address, path: route, bodiesAt, gt, k, target: TARGET_RECALL, log, label: record.name })
            calibrated = c
            record.calibration = c.points
            record.efSearch = c.ef
            record.recall = c.recall
            record.recallReached = c.reached
            reference = c.reference
          } else {
            // The same index with another server setting: same efSearch, recall measured again.
            const again = await measureAt({ address: server.address, path: route, bodies: bodiesAt(calibrated.ef), gt, k })
            record.efSearch = calibrated.ef
            record.recall = again.recall
            record.recallReached = again.recall >= TARGET_RECALL
            reference = again.reference
          }
          log(`serve: ${record.name}: efSearch ${record.efSearch}, recall@${k} ${record.recall.toFixed(4)} through the server${record.recallReached ? '' : ` (never reached ${TARGET_RECALL})`}`)
          await measureLevels(server, record, bodiesAt(record.efSearch), reference)
        } catch (error) {
          record.error = String(error?.message ?? error)
          log(`serve: ${record.name} failed: ${record.error}`)
        } finally {
          const stopped = await server.stop('SIGTERM')
          record.stopped = stopped
          if (stopped.forced || (stopped.code !== 0 && stopped.code !== null)) log(`serve: ${record.name} did not stop cleanly: ${JSON.stringify(stopped)}; last output: ${server.logs().slice(-5).join(' | ')}`)
        }
      }
      if (engine === 'vecdex' && built.collection && calibrated) {
        result.inProcess = await inProcessBaseline(built.collection, dataset, k, calibrated.ef, log)
      }
    } finally {
      built.collection?.close()
      if (engine === 'vecdex') removeTempDir(built.dir)
    }
  }

  // The ceiling of this server shape here: the same Fastify, schema and JSON answering a fixed
  // list of k hits without searching (peer-server.mjs --engine fixed).
  const vecdexRecord = result.servers.find((s) => s.name === 'vecdex' && s.levels?.length)
  if (vecdexRecord) {
    const record = { name: 'fastify, no search', engine: 'fixed', notes: 'no index: every answer is the same k hits' }
    const dir = makeTempDir('serve-fixed')
    try {
      fs.writeFileSync(path.join(dir, 'fixed.json'), JSON.stringify({ name: collection, dim, hits: Array.from({ length: k }, (_, i) => ({ id: 1000 + 7919 * i, distance: 0.123456789 + i / 97 })) }))
      const server = await launchServer({ command: 'peer', engine: 'fixed', args: ['--data', dir], log })
      try {
        await measureLevels(server, record, bodiesAt(vecdexRecord.efSearch), undefined)
      } finally {
        await server.stop('SIGTERM')
      }
      result.servers.push(record)
    } catch (error) {
      log(`serve: the no-search reference failed: ${error?.message ?? error}`)
    } finally {
      removeTempDir(dir)
    }
  }

  result.summary = summarise(result)
  const plot = writeLatencyPlot(
    {
      title: `serve — ${dataset.name}: QPS vs p99 latency under load (recall@${k} ≈ ${TARGET_RECALL})`,
      subtitle: `n ${fmt(n)}, dim ${dim}, ${dataset.metric}; m ${m}, efConstruction ${efConstruction}; ${connections.join(', ')} connections × ${durationSeconds} s; autocannon over loopback from a second process; --threads ${threads}`,
      caption: [`One point per number of concurrent connections (the labels), joined in that order; each server at the smallest efSearch with recall@${k} ≥ ${TARGET_RECALL} through it (legend). x: 2xx answers per second; y: p99 over every answer's latency. Closed loop: each connection sends its next request when the answer arrives.`],
      series: result.servers.filter((s) => s.levels?.length).map((s) => ({ legend: `${s.name}${s.version ? ` ${s.version}` : ''} (ef ${s.efSearch}, recall ${s.recall?.toFixed(3)})`, points: s.levels.map((l) => ({ qps: l.qps, p99: l.latencyMs.p99, connections: l.connections })) })),
    },
    { dir: workspace().results, stem: `serve-${dataset.name}-${new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}-latency`, machine },
  )
  result.plot = { svg: plot.svgFile ? path.basename(plot.svgFile) : undefined, png: plot.pngFile ? path.basename(plot.pngFile) : undefined, notes: plot.notes }
  for (const note of plot.notes) log(`serve: plot: ${note}`)
  return result
}

/**
 * Throughput of the batch API in this process: Collection.search(array of queries, { k,
 * efSearch }) over the query set in batches, repeated for BASELINE_SECONDS per batch size.
 */
async function inProcessBaseline(collection, dataset, k, efSearch, log) {
  const { q, dim } = dataset
  const rows = Array.from({ length: q }, (_, i) => dataset.queries.subarray(i * dim, (i + 1) * dim))
  const options = { k, efSearch }
  const points = []
  for (const size of [...new Set(BASELINE_BATCHES.map((b) => Math.min(b, q)))]) {
    const batches = []
    for (let from = 0; from < q; from += size) batches.push(rows.slice(from, Math.min(q, from + size)))
    await collection.search(batches[0], options)
    let done = 0
    const started = performance.now()
    while (performance.now() - started < BASELINE_SECONDS * 1000) {
      for (const batch of batches) {
        await collection.search(batch, options)
        done += batch.length
      }
    }
    const seconds = (performance.now() - started) / 1000
    points.push({ batch: size, queries: done, seconds, qps: done / seconds })
    log(`serve: in-process Collection.search batches of ${size}: ${fmt(done / seconds)} QPS`)
  }
  const best = points.reduce((a, b) => (b.qps > a.qps ? b : a))
  return { efSearch, points, qps: best.qps, batch: best.batch }
}

/** Ratios and goals of one dataset at GOAL_CONNECTIONS connections. */
function summarise(result) {
  const at = (s) => s?.levels?.find((l) => l.connections === GOAL_CONNECTIONS)
  const vecdex = result.servers.find((s) => s.name === 'vecdex')
  const unbatched = result.servers.find((s) => s.name === 'vecdex --no-batching')
  const mine = at(vecdex)
  const peers = result.servers.filter((s) => s.engine !== 'vecdex' && s.engine !== 'fixed' && at(s))
  const best = peers.map((s) => ({ name: s.name, level: at(s), recall: s.recall })).sort((a, b) => b.level.qps - a.level.qps)[0]
  const goals = []
  if (mine) {
    goals.push({
      goal: `QPS ÷ best peer's at ${GOAL_CONNECTIONS} connections`,
      target: `≥ ${GOALS.peerRatio}×`,
      value: best ? mine.qps / best.level.qps : undefined,
      detail: best ? `${fmt(mine.qps)} ÷ ${fmt(best.level.qps)} (${best.name})` : 'no peer measured',
      met: best ? mine.qps / best.level.qps >= GOALS.peerRatio : undefined,
      format: 'ratio',
    })
    goals.push({
      goal: `p99 ÷ p50 at ${GOAL_CONNECTIONS} connections`,
      target: `≤ ${GOALS.tailRatio}`,
      value: mine.latencyMs.p99 / mine.latencyMs.p50,
      detail: `${fmt(mine.latencyMs.p99)} ms ÷ ${fmt(mine.latencyMs.p50)} ms`,
      met: mine.latencyMs.p99 / mine.latencyMs.p50 <= GOALS.tailRatio,
      format: 'ratio',
    })
    goals.push({
      goal: `server QPS ÷ in-process batch QPS at ${GOAL_CONNECTIONS} connections`,
      target: `≥ ${GOALS.inProcessShare * 100}%`,
      value: result.inProcess ? mine.qps / result.inProcess.qps : undefined,
      detail: result.inProcess ? `${fmt(mine.qps)} ÷ ${fmt(result.inProcess.qps)} (batches of ${result.inProcess.batch})` : 'no in-process baseline',
      met: result.inProcess ? mine.qps / result.inProcess.qps >= GOALS.inProcessShare : undefined,
      format: 'percent',
    })
  }
  const u = at(unbatched)
  // vecdex against every peer at the goal level: QPS and p99 ratios at (about) equal recall.
  const versus = mine
    ? result.servers
        .filter((s) => s.engine !== 'vecdex' && s.engine !== 'fixed' && at(s))
        .map((s) => ({ name: s.name, recall: s.recall, qps: at(s).qps, p99: at(s).latencyMs.p99, qpsRatio: mine.qps / at(s).qps, p99Ratio: mine.latencyMs.p99 / at(s).latencyMs.p99 }))
    : []
  return {
    versus,
    connections: GOAL_CONNECTIONS,
    vecdexQps: mine?.qps,
    bestPeer: best?.name,
    bestPeerQps: best?.level.qps,
    peerRatio: mine && best ? mine.qps / best.level.qps : undefined,
    tailRatio: mine ? mine.latencyMs.p99 / mine.latencyMs.p50 : undefined,
    inProcessShare: mine && result.inProcess ? mine.qps / result.inProcess.qps : undefined,
    batchingGain: mine && u ? mine.qps / u.qps : undefined,
    floorQps: at(result.servers.find((s) => s.engine === 'fixed'))?.qps,
    goals,
  }
}

// ---------------------------------------------------------------------------------------------
// Soak and bad traffic (helper modules), against vecdex serve.

async function runCheck({ part, file, fn, dataset, efSearch, settings, ctx, log }) {
  const label = part === 'soak' ? 'soak' : 'bad traffic'
  let mod
  try {
    mod = await import(`../serve/${file}`)
  } catch (error) {
    const reason = `benchmark/serve/${file} does not load: ${String(error?.message ?? error).split('\n')[0]}`
    log(`serve: ${label} skipped: ${reason}`)
    return { skipped: reason }
  }
  if (typeof mod[fn] !== 'function') return { skipped: `benchmark/serve/${file} has no ${fn} export` }
  // A fresh folder the check fills (over HTTP) and kills its servers over.
  const dataDir = makeTempDir(`serve-${part}`)
  try {
    const started = performance.now()
    const out = await mod[fn]({ repoRoot, dataset, log, launch: launchServer, dataDir, collection: collectionName(dataset.name), efSearch, k: settings.k, threads: settings.threads, limit: ctx.limit, durationSeconds: part === 'soak' ? ctx.soakSeconds : undefined })
    return { ok: out.ok, markdown: out.markdown, json: out.json, seconds: (performance.now() - started) / 1000 }
  } catch (error) {
    const reason = String(error?.stack ?? error?.message ?? error)
    log(`serve: ${label} failed: ${reason}`)
    return { ok: false, error: reason.split('\n')[0] }
  } finally {
    removeTempDir(dataDir)
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const fmtMs = (v) => (v === undefined || Number.isNaN(v) ? '–' : fmt(v))
const fmtGoal = (g) => (g.value === undefined ? '–' : g.format === 'percent' ? `${(g.value * 100).toFixed(0)}%` : fmtRatio(g.value))
const metText = (met) => (met === undefined ? 'not measured' : met ? '**met**' : '**missed**')

function markdown({ datasets, checks, settings, machine, parts }) {
  const { k, connections, durationSeconds, warmupSeconds, m, efConstruction, threads } = settings
  const md = []
  for (const d of datasets) {
    if (d.skipped && !d.servers) {
      md.push(`## serve — ${d.name}: skipped`, '', d.skipped, '')
      continue
    }
    const { n, q, dim, metric } = d.dataset
    md.push(`## serve — ${d.name} (${metric}, n ${fmt(n)}, dim ${dim}, ${q} queries, k ${k}; m ${m}, efConstruction ${efConstruction}, --threads ${threads})`)
    md.push('')
    if (d.skipped) {
      md.push(d.skipped, '')
      continue
    }
    const s = d.summary
    md.push(`### Goals at ${GOAL_CONNECTIONS} connections (vecdex serve, micro-batching on)`)
    md.push('')
    if (s.goals.length) {
      md.push(table(['goal', 'target', 'measured', 'detail', 'result'], s.goals.map((g) => [g.goal, g.target, fmtGoal(g), g.detail, metText(g.met)])))
      const missed = s.goals.filter((g) => g.met === false).map((g) => g.goal)
      md.push('')
      md.push(missed.length ? `Missed: ${missed.join('; ')}.` : s.goals.every((g) => g.met) ? 'All three goals met.' : 'Some goals could not be measured (see above).')
      if (s.batchingGain !== undefined) md.push(`Micro-batching: ${fmtRatio(s.batchingGain)} the QPS of vecdex serve --no-batching at ${GOAL_CONNECTIONS} connections.`)
      if (s.floorQps !== undefined && s.vecdexQps !== undefined) md.push(`Ceiling of this server shape: the same Fastify answering fixed hits without searching did ${fmt(s.floorQps)} QPS at ${GOAL_CONNECTIONS} connections; vecdex serve reached ${(100 * s.vecdexQps / s.floorQps).toFixed(0)}% of it${d.inProcess ? `, and the ceiling itself is ${(100 * s.floorQps / d.inProcess.qps).toFixed(0)}% of the in-process batch QPS` : ''}.`)
      if (s.versus.length) {
        const v = d.servers.find((x) => x.name === 'vecdex')
        md.push('')
        md.push(
          table(
            [`at ${GOAL_CONNECTIONS} connections`, `recall@${k}`, 'QPS', 'p99 ms', 'vecdex QPS ÷', 'vecdex p99 ÷'],
            [[`vecdex`, v?.recall?.toFixed(3) ?? '–', fmt(s.vecdexQps), fmtMs(v?.levels?.find((l) => l.connections === GOAL_CONNECTIONS)?.latencyMs.p99), '', ''], ...s.versus.map((p) => [p.name, p.recall?.toFixed(3) ?? '–', fmt(p.qps), fmtMs(p.p99), fmtRatio(p.qpsRatio), fmtRatio(p.p99Ratio)])],
          ),
        )
      }
    } else md.push(`vecdex serve has no ${GOAL_CONNECTIONS}-connection measurement (see below).`)
    md.push('')

    md.push('### Throughput and latency under load')
    md.push('')
    const rows = []
    for (const srv of d.servers) {
      if (!srv.levels?.length) {
        rows.push([srv.name, '', srv.skipped ? 'skipped' : 'failed', '', '', '', '', '', '', ''])
        continue
      }
      for (const l of srv.levels) {
        rows.push([
          srv.name,
          l.connections,
          fmt(l.qps),
          fmtMs(l.latencyMs.p50),
          fmtMs(l.latencyMs.p99),
          fmtMs(l.latencyMs.p999),
          `${l.errors} / ${l.timeouts} / ${l.non2xx}`,
          fmtMs(l.eventLoopP99Ms),
          `${fmt(l.serverCpuCores, 2)} / ${fmt(l.clientCpuCores, 2)}`,
          l.checks ? `${l.checks.sampled}: ${l.checks.differing} differ, recall ${fmt(l.checks.recall)}` : '–',
        ])
      }
    }
    md.push(table(['server', 'connections', 'QPS', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors / timeouts / non-2xx', 'event-loop p99 ms', 'CPU cores server / client', 'answers checked'], rows))
    md.push('')
    if (d.plot?.svg) {
      md.push(`![QPS vs p99 latency: serve on ${d.name}](${encodeURI(d.plot.svg)})`)
      if (d.plot.png) md.push('', `PNG: [${d.plot.png}](${encodeURI(d.plot.png)})`)
      md.push('')
    }

    md.push(`### Recall@${k} through each server, and settings`)
    md.push('')
    md.push(
      table(
        ['server', 'version', 'efSearch', `recall@${k}`, 'calibration (efSearch: recall)'],
        d.servers.map((srv) =>
          srv.skipped
            ? [srv.name, srv.version ?? '', '', '', `skipped: ${srv.skipped}`]
            : [srv.name, srv.version ?? '', srv.efSearch ?? '–', srv.recall !== undefined ? `${srv.recall.toFixed(4)}${srv.recallReached ? '' : ' (below target)'}` : '–', srv.calibration ? srv.calibration.map((p) => `${p.ef}: ${p.recall.toFixed(3)}`).join(', ') : srv.efSearch ? 'same index and efSearch as vecdex' : srv.error ?? ''],
        ),
      ),
    )
    md.push('')
    if (d.inProcess) {
      md.push(`### In-process baseline (Collection.search on an array of queries, efSearch ${d.inProcess.efSearch})`)
      md.push('')
      md.push(table(['batch size', 'QPS'], d.inProcess.points.map((p) => [p.batch, fmt(p.qps)])))
      md.push('')
    }
    const failed = d.servers.filter((srv) => srv.error)
    if (failed.length) {
      md.push('Failures:')
      for (const srv of failed) md.push(`- ${srv.name}: ${srv.error}`)
      md.push('')
    }
  }

  for (const [part, title] of [['soak', 'Soak'], ['bad', 'Bad traffic']]) {
    const c = checks[part]
    if (!c) continue
    md.push(`## ${title}`)
    md.push('')
    if (c.skipped) md.push(`Skipped: ${c.skipped}`)
    else if (c.error) md.push(`**Failed**: ${c.error}`)
    else md.push(c.markdown ?? '', '', `Result: ${c.ok ? '**passed**' : '**failed**'} (${fmt(c.seconds)} s).`)
    md.push('')
  }

  md.push('## Method')
  md.push('')
  md.push(`- Machine: ${machineLine(machine)}. Server and load generator share it: the client's CPU share is in the table (CPU cores server / client, from the server's process_cpu_seconds_total and this process's cpuUsage over the measured run).`)
  md.push(`- Servers run as child processes (benchmark/serve/launch.mjs) on 127.0.0.1; vecdex is the product's own \`vecdex serve --data DIR --log-level warn\` (VECDEX_THREADS=${threads}), measured with micro-batching (its default) and with --no-batching; the peers run in benchmark/serve/peer-server.mjs: the same Fastify, the same route (POST /collections/<name>/search {vector, k, efSearch} → {hits: [{id, distance}]}) with a JSON schema on body and reply.`)
  md.push(`- Indexes: every engine with m ${m}, efConstruction ${efConstruction}, the dataset's metric; built in the bench process and persisted (vecdex: a Collection saved as <name>.vdx; peers: their own files, cached across runs).`)
  md.push(`- Equal recall: the smallest efSearch of a fixed ladder with recall@${k} ≥ ${TARGET_RECALL}, found by bisection, every query sent through the server (4 in flight); the recall shown is that pass's. vecdex --no-batching uses vecdex's efSearch (the same index) and its recall is measured again.`)
  md.push(`- Load: autocannon ${loadAutocannon().version ?? '?'} in the bench process, closed loop (each connection sends its next request when the answer arrives), no pipelining, ${connections.join(', ')} connections, ${warmupSeconds} s warm-up then ${durationSeconds} s measured per level; request bodies serialised beforehand (vector values with 9 significant digits), each connection cycling through its own slice of the ${d0(datasets)?.dataset.q ?? settings.queries} queries from a different start. QPS = 2xx answers ÷ the run's duration. After the warm-up and after each run, the next run waits until the server is idle again (a lone search answers within 3× its idle latency): requests left queued by the connections autocannon closes would otherwise run during the next measurement. Latency percentiles are exact, over every answer's time (autocannon's 'response' event). Errors = connection errors and timeouts (> ${REQUEST_TIMEOUT_SECONDS} s), non-2xx = HTTP errors.`)
  md.push(`- Answers checked: the answers to one request body in 8 are compared with the ids the same server gave that query when asked alone; "differ" counts those that are not identical, and recall is the mean recall@${k} of the checked answers (a server returning answers to the wrong requests would show recall near 0).`)
  md.push(`- Event-loop p99: from the server's GET /metrics (prom-client's nodejs_eventloop_lag_p99_seconds: perf_hooks.monitorEventLoopDelay sampling every ${EVENT_LOOP_SAMPLING_MS} ms in every server, reset by each scrape), read just before and just after the measured run, so it covers that run; shown minus the ${EVENT_LOOP_SAMPLING_MS} ms sampling interval that an idle loop reads (the JSON keeps the raw value).`)
  md.push(`- In-process baseline: Collection.search(array of query vectors, { k, efSearch }) — one native batch call per batch — in the bench process with no server running, batches of ${BASELINE_BATCHES.join(' and ')} over the same queries for ${BASELINE_SECONDS} s each; the better of the two is the baseline.`)
  for (const e of ['vecdex', 'hnswlib', 'usearch', 'lancedb']) md.push(`- ${e}: ${ENGINE_NOTES[e]}.`)
  md.push(`- Parts run: ${parts.join(', ')}.`)
  return md.join('\n')
}

const d0 = (datasets) => datasets.find((d) => d.dataset)
