// `vecdex <command>`: build, query, info, serve and bench. Exit codes: 0 done, 1 the work failed (the
// error's code is printed, e.g. ERR_CORRUPT_FILE, ERR_INPUT_FORMAT, ERR_IO), 2 a usage error.
// With --json, results (and errors, as {"error": {code, message}}) go to stdout as JSON.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
import { CliError } from './vector-files.mjs'

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const COMMANDS = {
  build: { summary: 'build an index from a .fvecs, .bvecs, .npy, JSON-lines or HDF5 file and save it', load: () => import('./commands/build.mjs') },
  query: { summary: 'search a saved index with query vectors from a file or the command line', load: () => import('./commands/query.mjs') },
  info: { summary: "describe a saved index file: header, sizes, sections, settings (--verify loads it)", load: () => import('./commands/info.mjs') },
  serve: { summary: 'serve collections over HTTP (JSON API, micro-batched search, /metrics, /openapi.json) until SIGTERM', load: () => import('./commands/serve.mjs') },
  bench: { summary: 'run the benchmark suites against peer libraries; writes JSON, markdown and a recall–QPS plot to ./vecdex-results (or --out), never into the package', load: () => import('./commands/bench.mjs') },
}

function version() {
  return JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version
}

function usage() {
  return `vecdex ${version()}: vector search for Node.js with a Rust core

Usage: vecdex <command> [options]        vecdex <command> --help for its options

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(7)} ${c.summary}`)
  .join('\n')}

Options:
  -h, --help      this text
  -v, --version   the version

Exit codes: 0 done, 1 failed (the error code is printed, e.g. ERR_CORRUPT_FILE, ERR_INPUT_FORMAT),
2 wrong usage. With --json, a command prints its result (or {"error": {"code", "message"}}) as JSON.`
}

/** Parses a command's options; a usage error is a CliError('ERR_USAGE'). */
export function parseCommandArgs(args, options, { positionals = 0 } = {}) {
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } }, strict: true, allowPositionals: true })
  } catch (error) {
    const flag = error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'--?([^']+)'/.exec(error.message)?.[1] : undefined
    const near = flag === undefined ? undefined : closestFlag(flag, Object.keys(options))
    throw new CliError('ERR_USAGE', near ? `${error.message}: did you mean --${near}?` : error.message)
  }
  if (!parsed.values.help && parsed.positionals.length !== positionals) {
    throw new CliError('ERR_USAGE', positionals === 1 ? `expected one file, got ${parsed.positionals.length ? parsed.positionals.join(' ') : 'none'}` : `unexpected arguments: ${parsed.positionals.join(' ')}`)
  }
  return parsed
}

let tables

/**
 * The library's option table (Rust `vecdex::options`): the limits, choices and defaults of
 * every flag that sets a library option come from it, never from literals here. Loading the
 * native module starts no threads, so `--threads` still applies afterwards.
 */
export function optionTables() {
  tables ??= JSON.parse(require('../index.js').optionTablesJson())
  return tables
}

/** The spec of option `name` of set `set` (or of a set it includes). */
export function optionSpec(set, name) {
  const table = optionTables()[set]
  if (table === undefined) throw new Error(`no option set ${set}`)
  if (table.options[name]) return table.options[name]
  for (const included of table.includes) {
    const spec = optionSpec(included, name)
    if (spec) return spec
  }
  return undefined
}

/** The default of a library option, for --help texts ("?" when the native module is missing,
 * so --help still works). */
export function optionDefault(set, name) {
  try {
    const spec = optionSpec(set, name)
    return spec.default !== undefined ? String(spec.default) : spec.derived ?? 'none'
  } catch {
    return '?'
  }
}

/**
 * A flag that sets the library option `set.name`: its range or choices come from the core's
 * table. Returns undefined when the flag is absent (the library's default then applies).
 */
export function tableOption(values, flag, set, name) {
  const raw = values[flag]
  if (raw === undefined) return undefined
  const spec = optionSpec(set, name)
  if (spec.kind === 'integer') return integerOption(values, flag, spec.min, spec.max, undefined)
  if (spec.kind === 'key') return integerOption(values, flag, 0n, BigInt(spec.max), undefined)
  if (spec.kind === 'text') {
    if (raw === '') throw new CliError('ERR_USAGE', `--${flag} must not be empty`)
    return raw
  }
  const choices = spec.choices ?? []
  if (!choices.includes(raw)) throw new CliError('ERR_USAGE', `--${flag} must be ${choices.join(' | ')}, got "${raw}"`)
  return raw
}

/** The flag closest to a mistyped one (the core's edit-distance rule), if any. */
function closestFlag(flag, flags) {
  try {
    return require('../index.js').closestName(flag, flags) ?? undefined
  } catch {
    return undefined
  }
}

/**
 * An integer option from `min` to `max`, or `fallback` when absent. Only decimal digits are an
 * integer ("1e3", "0x10", "2.0", " 7", "" and "-1" are usage errors, not what Number() makes of
 * them). Returns a number, or a bigint when `max` is beyond 2^53 − 1.
 * @param {Record<string, string | undefined>} values
 * @param {string} name
 * @param {number | bigint} min
 * @param {number | bigint} max
 * @param {*} fallback
 */
export function integerOption(values, name, min, max, fallback) {
  const raw = values[name]
  if (raw === undefined) return fallback
  const value = /^\d{1,30}$/.test(raw) ? BigInt(raw) : undefined
  if (value === undefined || value < BigInt(min) || value > BigInt(max)) {
    throw new CliError('ERR_USAGE', `--${name} must be an integer from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}, got "${raw}"`)
  }
  return typeof max === 'bigint' ? value : Number(value)
}

/** A string option that must be one of `allowed` (when given). */
export function oneOf(values, name, allowed) {
  const value = values[name]
  if (value !== undefined && !allowed.includes(value)) throw new CliError('ERR_USAGE', `--${name} must be ${allowed.join(' | ')}, got "${value}"`)
}

/** vecdex itself, loaded after --threads has set the pool size (the pool reads it once). */
export async function loadVecdex(threads) {
  if (threads !== undefined) process.env.VECDEX_THREADS = String(threads)
  return import('../dist/esm.mjs')
}

/** JSON with bigints as numbers when exact, else decimal strings. */
export function toJson(value) {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v), 2)
}

/**
 * @param {string[]} argv  arguments after `vecdex`
 * @returns {Promise<number>} the exit code
 */
export async function main(argv) {
  const [name, ...rest] = argv
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    console.log(usage())
    return name === undefined ? 2 : 0
  }
  if (name === '-v' || name === '--version') {
    console.log(version())
    return 0
  }
  const command = COMMANDS[name]
  const json = rest.includes('--json')
  if (!command) return report(new CliError('ERR_USAGE', `unknown command "${name}": use ${Object.keys(COMMANDS).join(', ')} (vecdex --help)`), name, json)
  const module = await command.load()
  try {
    return (await module.run(rest)) ?? 0
  } catch (error) {
    return report(error, name, json, module.usage)
  }
}

function report(error, name, json, commandUsage) {
  // Codes of vecdex's own errors and the CLI's; a failed system call (open, read) is ERR_IO;
  // anything else (Node's own ERR_* codes included) is a bug: ERR_INTERNAL, with its stack.
  const typed = error instanceof CliError || error?.name === 'VecdexError'
  const code = typed ? error.code : typeof error?.syscall === 'string' ? 'ERR_IO' : 'ERR_INTERNAL'
  const message = error?.message ?? String(error)
  if (json) console.log(toJson({ error: { code, message } }))
  else {
    console.error(`vecdex ${name}: ${code}: ${message}`)
    if (code === 'ERR_USAGE') console.error(commandUsage ? `\n${commandUsage()}` : '\nvecdex --help lists the commands')
    else if (code === 'ERR_INTERNAL' && error?.stack) console.error(error.stack)
  }
  return code === 'ERR_USAGE' ? 2 : 1
}
