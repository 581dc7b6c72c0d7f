// vecdex serve: the HTTP server (lib/serve.ts) from the command line. Runs until SIGTERM or
// SIGINT, then shuts down gracefully (finishes requests in flight, saves changed collections)
// and exits 0; a second signal exits at once with 1.

import { CliError } from '../vector-files.mjs'
import { integerOption, parseCommandArgs } from '../main.mjs'

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
  return `Usage: vecdex serve [--port 7700] [--host 127.0.0.1] [--data DIR] [options]

Serves vecdex collections over HTTP (JSON): create, list, drop; upsert, delete, get, count,
search (single and batch, with metadata filters), save, stats. GET /health, GET /metrics
(Prometheus), GET /openapi.json (the API). Logs are JSON lines (pino) on stdout; once listening
it logs "vecdex serve listening" with the address. SIGTERM or SIGINT: stop accepting, finish
requests in flight, save changed collections, exit 0.

Options:
  -p, --port N              TCP port (default 7700; 0 picks a free one, see the log line)
      --host ADDR           interface to listen on (default 127.0.0.1, this machine only; 0.0.0.0
                            for every interface: then set an API key)
  -d, --data DIR            folder of the collections: each <name>.vdx in it is loaded at start;
                            saves and the shutdown write there, atomically. Without it nothing
                            is persisted
      --api-key-env NAME    require the API key held by environment variable NAME (at least 8
                            characters) as "authorization: Bearer <key>" or "x-api-key: <key>"
                            on every route but /health (default: VECDEX_API_KEY if it is set)
      --autosave-seconds N  save changed collections every N seconds (default 0: on request
                            and at shutdown only)
      --no-batching         one native search per request (default: concurrent single-query
                            searches with the same options share one native batch)
      --max-batch N         most queries per native batch (default 256)
      --batch-window-ms N   how long a batch waits for more queries (default 0: until the event
                            loop has read the requests already arrived)
      --max-in-flight N     native batches running at once (default 2)
      --body-limit BYTES    largest request body (default 16,777,216); larger ones get 413
      --max-k N             largest k a search may ask for (default 1,000)
      --max-queries N       most queries in one batch search request (default 1,024)
      --max-items N         most items in one upsert (default 10,000)
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
        maxBatch: integerOption(values, 'max-batch', 1, 4096, undefined),
        windowMs: integerOption(values, 'batch-window-ms', 0, 100, undefined),
        maxInFlight: integerOption(values, 'max-in-flight', 1, 64, undefined),
      }
  const limits = {
    bodyLimit: integerOption(values, 'body-limit', 1024, 2 ** 31 - 1, undefined),
    maxK: integerOption(values, 'max-k', 1, 65536, undefined),
    maxQueries: integerOption(values, 'max-queries', 1, 65536, undefined),
    maxItems: integerOption(values, 'max-items', 1, 1_000_000, undefined),
  }
  const { createServer } = await import('../../dist/serve.js')
  const server = await createServer({
    port: integerOption(values, 'port', 0, 65535, 7700),
    host: values.host,
    dataDir: values.data,
    apiKey,
    batching,
    limits: Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
    autosaveSeconds: integerOption(values, 'autosave-seconds', 0, 86_400, 0),
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
