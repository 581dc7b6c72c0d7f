import native = require('./native')
import { invalidArgument } from './errors'
import { checkKey } from './keys'
import { describe } from './validate'

/**
 * Option checking against the core's option table (Rust `vecdex::options`, exported by the
 * native module): every option name, kind, limit and default of the public API is defined
 * there once. This module only applies it: an unknown key is ERR_INVALID_ARGUMENT naming the
 * closest valid one ("did you mean efSearch?"), a value of the wrong type or out of range is
 * ERR_INVALID_ARGUMENT naming the limits.
 */

/** The option sets of the public API, named as their TS interfaces. */
export type OptionSetName =
  | 'FlatIndexOptions'
  | 'HnswIndexOptions'
  | 'MultiVectorIndexOptions'
  | 'CompressionOptions'
  | 'QuantizationOptions'
  | 'MultiVectorFdeOptions'
  | 'FdeEncoderOptions'
  | 'SearchOptions'
  | 'HnswSearchOptions'
  | 'MultiVectorSearchOptions'
  | 'ExactSearchOptions'
  | 'SignalOptions'
  | 'TrainSyncOptions'
  | 'TrainOptions'
  | 'AddStreamOptions'
  | 'DocumentStreamOptions'
  | 'SearchStreamOptions'
  | 'DistanceOptions'
  | 'DistanceArguments'
  | 'DistanceMatrixOptions'
  | 'ConfigureOptions'
  | 'CollectionOptions'
  | 'CollectionSearchOptions'
  | 'CollectionGetOptions'
  | 'CollectionCountOptions'
  | 'UpsertStreamOptions'
  | 'FullVectorsOptions'

/** One option as the core's table describes it. */
export interface OptionSpec {
  kind: 'integer' | 'number' | 'boolean' | 'choice' | 'object' | 'nameOrObject' | 'key' | 'keys' | 'signal' | 'function' | 'filter' | 'fields' | 'vectors' | 'text'
  min?: number
  /** A string for the key bound (2^64 − 2), which a number cannot hold exactly. */
  max?: number | string
  maxExclusive?: boolean
  choices?: string[]
  /** The option set of a nested object. */
  set?: OptionSetName
  /** The default, when it is a value. */
  default?: number | string | boolean
  /** The default in words, when it depends on other settings. */
  derived?: string
  /** Absent means the feature is off. */
  off?: true
  required?: true
}

/** The table of one option set, as the core exports it. */
export interface OptionTable {
  includes: OptionSetName[]
  options: Record<string, OptionSpec>
}

/** Every option set, straight from the core. */
export const OPTION_TABLES: Readonly<Record<OptionSetName, OptionTable>> = JSON.parse(native.optionTablesJson())

interface CompiledSet {
  name: OptionSetName
  specs: Map<string, OptionSpec>
  required: string[]
}

const compiled = new Map<OptionSetName, CompiledSet>()

function compile(name: OptionSetName): CompiledSet {
  let set = compiled.get(name)
  if (set) return set
  const table = OPTION_TABLES[name]
  if (table === undefined) throw new Error(`vecdex: no option set ${name} in the native table`)
  const specs = new Map<string, OptionSpec>()
  for (const included of table.includes) for (const [key, spec] of compile(included).specs) specs.set(key, spec)
  for (const [key, spec] of Object.entries(table.options)) specs.set(key, spec)
  const required = [...specs].filter(([, spec]) => spec.required).map(([key]) => key)
  set = { name, specs, required }
  compiled.set(name, set)
  return set
}

/** Every option of a set (its included sets' too), by name. */
export function optionsOf(name: OptionSetName): ReadonlyMap<string, OptionSpec> {
  return compile(name).specs
}

/** The spec of one option; throws if the table lacks it (a bug, not a user error). */
export function specOf(set: OptionSetName, name: string): OptionSpec {
  const spec = compile(set).specs.get(name)
  if (spec === undefined) throw new Error(`vecdex: no option ${set}.${name} in the native table`)
  return spec
}

/** The default value of an option whose default is a value. */
export function defaultOf<T extends number | string | boolean>(set: OptionSetName, name: string): T {
  const value = specOf(set, name).default
  if (value === undefined) throw new Error(`vecdex: ${set}.${name} has no value default`)
  return value as T
}

/**
 * Checks an options object against a set: an object, no unknown key, every given value of its
 * option's kind and within its limits, every required option present. `undefined` values
 * count as absent. Returns the object, typed.
 */
export function checkOptions<T extends object>(value: unknown, setName: OptionSetName, what = 'options'): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument(`${what} must be an object, got ${describe(value)}`)
  }
  const set = compile(setName)
  const record = value as Record<string, unknown>
  for (const key in record) {
    const spec = set.specs.get(key)
    if (spec === undefined) {
      if (!Object.prototype.hasOwnProperty.call(record, key)) continue
      throw invalidArgument(native.unknownOptionMessage(setName, key))
    }
    const v = record[key]
    if (v !== undefined) checkSpec(v, spec, key)
  }
  for (const key of set.required) {
    if (record[key] === undefined) throw invalidArgument(`${what}.${key} is required`)
  }
  return value as T
}

/** Checks one value given outside an options object (e.g. a positional argument) against the
 * spec of `set.name`. */
export function checkValue<T>(set: OptionSetName, name: string, value: unknown): T {
  const spec = specOf(set, name)
  if (value === undefined && spec.required) throw invalidArgument(`${name} is required`)
  checkSpec(value, spec, name)
  return value as T
}

function checkSpec(value: unknown, spec: OptionSpec, name: string): void {
  switch (spec.kind) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < spec.min! || value > (spec.max as number)) {
        throw invalidArgument(`${name} must be an integer from ${spec.min} to ${spec.max}, got ${describe(value)}`)
      }
      return
    case 'number': {
      const { min, max, maxExclusive } = spec
      const inRange =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (min === undefined || value >= min) &&
        (max === undefined || (maxExclusive ? value < (max as number) : value <= (max as number)))
      if (!inRange) throw invalidArgument(`${name} must be ${rangeText(spec)}, got ${describe(value)}`)
      return
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw invalidArgument(`${name} must be a boolean, got ${describe(value)}`)
      return
    case 'choice':
      if (typeof value !== 'string' || !spec.choices!.includes(value)) throw invalidArgument(`${name} must be one of ${choicesText(spec)}, got ${describe(value)}`)
      return
    case 'object':
      checkOptions(value, spec.set!, name)
      return
    case 'nameOrObject':
      if (typeof value === 'string') {
        if (!spec.choices!.includes(value)) throw invalidArgument(`${name} must be one of ${choicesText(spec)}, got ${describe(value)}`)
        return
      }
      if (value === null || typeof value !== 'object') {
        throw invalidArgument(`${name} must be one of ${choicesText(spec)} or an object (${spec.set}), got ${describe(value)}`)
      }
      checkOptions(value, spec.set!, name)
      return
    case 'key':
      checkKey(value, name)
      return
    case 'keys':
      // The elements are checked where the keys are converted (toKeyArray / KeyFilter).
      if (value === null || typeof value !== 'object') throw invalidArgument(`${name} must be keys (an array, Set, typed array or KeyFilter), got ${describe(value)}`)
      return
    case 'signal':
      if (!(value instanceof AbortSignal)) throw invalidArgument(`${name} must be an AbortSignal, got ${describe(value)}`)
      return
    case 'function':
      if (typeof value !== 'function') throw invalidArgument(`${name} must be a function, got ${describe(value)}`)
      return
    case 'filter':
      // The filter itself is parsed and checked natively (operators, operands, paths).
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`${name} must be a filter object, got ${describe(value)}`)
      return
    case 'vectors':
      // Rows and lengths are checked where the vectors are converted (toMatrix).
      if (value === null || typeof value !== 'object') throw invalidArgument(`${name} must be vectors (an array of rows or a Float32Array), got ${describe(value)}`)
      return
    case 'text':
      if (typeof value !== 'string' || value.length === 0) throw invalidArgument(`${name} must be a non-empty string, got ${describe(value)}`)
      return
    case 'fields':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`${name} must be an object of field types, got ${describe(value)}`)
      for (const [field, type] of Object.entries(value)) {
        if (typeof type !== 'string' || !spec.choices!.includes(type)) throw invalidArgument(`${name}.${field} must be one of ${choicesText(spec)}, got ${describe(type)}`)
      }
      return
  }
}

function choicesText(spec: OptionSpec): string {
  return spec.choices!.map((c) => `'${c}'`).join(', ')
}

function rangeText({ min, max, maxExclusive }: OptionSpec): string {
  if (min === undefined && max === undefined) return 'a finite number'
  if (max === undefined) return `a number of at least ${min}`
  if (min === undefined) return `a number of at most ${max}`
  return `a number in [${min}, ${max}${maxExclusive ? ')' : ']'}`
}
