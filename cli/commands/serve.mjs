// vecdex serve: the HTTP server (lib/serve.ts) from the command line. Runs until SIGTERM or
// SIGINT, then shuts down gracefully (finishes requests in flight, saves changed collections)
// and exits 0; a second signal exits at once with 1.

import { createRequire } from 'node:module'
import { CliError } from '../vector-files.mjs'
import { integerOption, parseCommandArgs } from '../main.mjs'

const require = createRequire(import.meta.url)

let settings
/** The server's ranges and defaults (lib/serve.ts SERVE_SETTINGS): the flags check against them
 * and --help shows them. Loading dist/serve.js loads the native module but starts no threads,
 * so --threads still applies. */
function serveSettings() {
  settings ??= require('../../dist/serve.js').SERVE_SETTINGS
  return settings
}

/** A default for --help, numbers with thousands separators unless `plain` (a port); "?" if the
 * build is missing, so --help still works. */
function shown(read, plain = false) {
  try {
    const value = read(serveSettings())
    return plain ? String(value) : value.toLocaleString('en-US')
  } catch {
    return '?'
  }
}

/** An integer flag within the range of the server setting `spec` (absent: the server's default). */
function settingOption(values, flag, spec) {
  return integerOption(values, flag, spec.min, spec.max, undefined)
}

const OPTIONS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  data: { type: 'string', short: 'd' },
  'api-key-env': { type: 'string' },
  'no-batching': { type: 'boolean' },
  'max-batch': { type: 'string' },
  'batch-window-ms': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'autosave-seconds': { type: 'string' },
  'body-limit': { type: 'string' },
  'max-k': { type: 'string' },
  'max-queries': { type: 'string' },
  'max-items': { type: 'string' },
  threads: { type: 'string', short: 't' },
  'log-level': { type: 'string' },
  'log-requests': { type: 'boolean' },
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export function usage() {
  return `Usage: vecdex serve [--port ${shown((s) => s.port.default, true)}] [--host ${shown((s) => s.host.default)}] [--data DIR] [options]

Serves vecdex collections over HTTP (JSON): create, list, drop; upsert, delete, get, count,
search (single and batch, with metadata filters), save, stats. GET /health, GET /metrics
(Prometheus), GET /openapi.json (the API). Logs are JSON lines (pino) on stdout; once listening
it logs "vecdex serve listening" with the address. SIGTERM or SIGINT: stop accepting, finish
requests in flight, save changed collections, exit 0.

Options:
  -p, --port N              TCP port (default ${shown((s) => s.port.default, true)}; 0 picks a free one, see the log line)
      --host ADDR           interface to listen on (default ${shown((s) => s.host.default)}, this machine only; 0.0.0.0
                            for every interface: then set an API key)
  -d, --data DIR            folder of the collections: each <name>.vdx in it is loaded at start;
                            saves and the shutdown write there, atomically. Without it nothing
                            is persisted
      --api-key-env NAME    require the API key held by environment variable NAME (at least 8
                            characters) as "authorization: Bearer <key>" or "x-api-key: <key>"
                            on every route but /health (default: VECDEX_API_KEY if it is set)
      --autosave-seconds N  save changed collections every N seconds (default ${shown((s) => s.autosaveSeconds.default)}: on request
                            and at shutdown only)
      --no-batching         one native search per request (default: concurrent single-query
                            searches with the same options share one native batch)
      --max-batch N         most queries per native batch (default ${shown((s) => s.batching.maxBatch.default)})
      --batch-window-ms N   how long a batch waits for more queries (default ${shown((s) => s.batching.windowMs.default)}: until the event
                            loop has read the requests already arrived)
      --max-in-flight N     native batches running at once (default ${shown((s) => s.batching.maxInFlight.default)})
      --body-limit BYTES    largest request body (default ${shown((s) => s.limits.bodyLimit.default)}); larger ones get 413
      --max-k N             largest k a search may ask for (default ${shown((s) => s.limits.maxK.default)})
      --max-queries N       most queries in one batch search request (default ${shown((s) => s.limits.maxQueries.default)})
      --max-items N         most items in one upsert (default ${shown((s) => s.limits.maxItems.default)})
  -t, --threads N           native worker threads (default: one per core)
      --log-level LEVEL     ${LOG_LEVELS.join(' | ')} (default info)
      --log-requests        log every request and response (default: errors and events only)
  -h, --help                this text`
}

export async function run(args) {
  const { values } = parseCommandArgs(args, OPTIONS)
  if (values.help) {
    console.log(usage())
    return 0
  }
  const level = values['log-level'] ?? 'info'
  if (!LOG_LEVELS.includes(level)) throw new CliError('ERR_USAGE', `--log-level must be ${LOG_LEVELS.join(' | ')}, got "${level}"`)
  const keyVariable = values['api-key-env'] ?? 'VECDEX_API_KEY'
  const apiKey = process.env[keyVariable] || undefined
  if (values['api-key-env'] !== undefined && apiKey === undefined) throw new CliError('ERR_USAGE', `--api-key-env ${keyVariable}: that environment variable is not set`)
  const threads = integerOption(values, 'threads', 1, 1024, undefined)
  if (threads !== undefined) process.env.VECDEX_THREADS = String(threads)
  const batching = values['no-batching']
    ? false
    : {
        maxBatch: settingOption(values, 'max-batch', serveSettings().batching.maxBatch),
        windowMs: settingOption(values, 'batch-window-ms', serveSettings().batching.windowMs),
        maxInFlight: settingOption(values, 'max-in-flight', serveSettings().batching.maxInFlight),
      }
  const limits = {
    bodyLimit: settingOption(values, 'body-limit', serveSettings().limits.bodyLimit),
    maxK: settingOption(values, 'max-k', serveSettings().limits.maxK),
    maxQueries: settingOption(values, 'max-queries', serveSettings().limits.maxQueries),
    maxItems: settingOption(values, 'max-items', serveSettings().limits.maxItems),
  }
  const { createServer } = require('../../dist/serve.js')
  const server = await createServer({
    port: settingOption(values, 'port', serveSettings().port),
    host: values.host,
    dataDir: values.data,
    apiKey,
    batching,
    limits: Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
    autosaveSeconds: settingOption(values, 'autosave-seconds', serveSettings().autosaveSeconds),
    logger: { level },
    logRequests: values['log-requests'] ?? false,
  })
  let stopping
  const stopped = new Promise((resolve) => {
    const stop = (signal) => {
      if (stopping !== undefined) {
        server.app.log.warn({ signal }, 'second signal: exiting without finishing')
        process.exit(1)
      }
      server.app.log.info({ signal }, 'signal received')
      stopping = server.close().then(
        () => resolve(0),
        (error) => {
          server.app.log.error({ err: error }, 'shutdown failed')
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  await server.listen()
  return stopped
}
