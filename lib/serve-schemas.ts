import { OPTION_TABLES, type OptionSetName, type OptionSpec } from './options'

/** Schema properties of whole numbers, by name. */
const integers = (names: string[]) => Object.fromEntries(names.map((name) => [name, { type: 'integer' }]))

/**
 * The JSON schemas of `vecdex serve`'s routes. Request bodies are validated with them (Fastify's
 * Ajv, no coercion, unknown fields refused) and the OpenAPI document is built from the same
 * objects. Option fields come from the core's option table (their kinds, ranges, choices and
 * defaults), with the server's own caps on what one request may ask for.
 */

type Schema = Record<string, unknown>

/** What one request may ask for. Every cap refuses the request (400) before anything is sized by it. */
export interface ServeLimits {
  /** Largest request body in bytes (default 16 MiB); a larger one is 413. */
  bodyLimit: number
  /** Largest `k` of a search (default 1,000). */
  maxK: number
  /** Largest `efSearch` of a search (default 4,096). */
  maxEfSearch: number
  /** Most queries in one batch search request (default 1,024). */
  maxQueries: number
  /** Most items in one upsert (default 10,000). */
  maxItems: number
  /** Most ids in one get or delete (default 10,000). */
  maxIds: number
  /** Longest item text in characters (default 1,000,000). */
  maxTextLength: number
  /** Deepest nesting of a metadata object or filter (default 32). */
  maxDepth: number
}

export const DEFAULT_LIMITS: ServeLimits = {
  bodyLimit: 16 * 1024 * 1024,
  maxK: 1000,
  maxEfSearch: 4096,
  maxQueries: 1024,
  maxItems: 10_000,
  maxIds: 10_000,
  maxTextLength: 1_000_000,
  maxDepth: 32,
}

/** A collection's name: its file in the data folder is `<name>.vdx`. */
export const COLLECTION_NAME = /^[A-Za-z0-9_-]{1,64}$/

const MAX_SAFE = Number.MAX_SAFE_INTEGER

function describeSpec(spec: OptionSpec): string | undefined {
  if (spec.default !== undefined) return `default ${JSON.stringify(spec.default)}`
  if (spec.derived !== undefined) return `default: ${spec.derived}`
  if (spec.off) return 'off when absent'
  return undefined
}

/** The JSON schema of one option of the core's table, or undefined for options HTTP cannot carry (signals, callbacks). */
function specSchema(spec: OptionSpec, cap?: number): Schema | undefined {
  let schema: Schema
  switch (spec.kind) {
    case 'integer':
      schema = { type: 'integer', minimum: spec.min, maximum: Math.min(Number(spec.max), cap ?? Infinity) }
      break
    case 'number':
      schema = { type: 'number', minimum: spec.min, ...(spec.maxExclusive ? { exclusiveMaximum: spec.max } : { maximum: spec.max }) }
      break
    case 'boolean':
      schema = { type: 'boolean' }
      break
    case 'choice':
      schema = { type: 'string', enum: spec.choices }
      break
    case 'fields':
      schema = { type: 'object', maxProperties: 256, additionalProperties: { type: 'string', enum: spec.choices } }
      break
    case 'nameOrObject':
      schema = { anyOf: [{ type: 'string', enum: spec.choices }, setSchema(spec.set!)] }
      break
    case 'filter':
      schema = { type: 'object', description: 'a metadata filter ($eq $ne $gt $gte $lt $lte $in $nin $exists $contains $and $or $not)' }
      break
    default:
      return undefined
  }
  const description = describeSpec(spec)
  if (description !== undefined && schema.description === undefined) schema.description = description
  return schema
}

/** The properties of an option set (with the sets it includes), capped where `caps` says. */
function setProperties(name: OptionSetName, caps: Record<string, number> = {}, omit: string[] = []): { properties: Record<string, Schema>; required: string[] } {
  const table = OPTION_TABLES[name]
  const properties: Record<string, Schema> = {}
  const required: string[] = []
  for (const included of table.includes) Object.assign(properties, setProperties(included as OptionSetName, caps, omit).properties)
  for (const [option, spec] of Object.entries(table.options)) {
    if (omit.includes(option)) continue
    const schema = specSchema(spec, caps[option])
    if (schema === undefined) continue
    properties[option] = schema
    if (spec.required) required.push(option)
  }
  return { properties, required }
}

function setSchema(name: OptionSetName): Schema {
  const { properties, required } = setProperties(name)
  return { type: 'object', properties, required, additionalProperties: false }
}

const idSchema = {
  type: ['string', 'integer'],
  minLength: 1,
  maxLength: 1024,
  minimum: 0,
  maximum: MAX_SAFE,
  description: 'a non-empty string, or a whole number from 0 to 2^53 − 1 (larger ids, e.g. 64-bit keys, must be sent as strings)',
}

const vectorSchema = { type: 'array', minItems: 1, maxItems: 65536, items: { type: 'number' } }

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: COLLECTION_NAME.source } },
}

const errorSchema = {
  type: 'object',
  description: 'every error: the code is stable, test it rather than the message',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
    requestId: { type: 'string' },
  },
}

const metadataSchema = { type: 'object', additionalProperties: true }

const hitSchema = {
  type: 'object',
  properties: { id: { type: ['string', 'integer'] }, distance: { type: 'number' }, text: { type: 'string' }, metadata: metadataSchema, vector: { type: 'array', items: { type: 'number' } } },
}

const recordSchema = {
  type: ['object', 'null'],
  properties: { id: { type: ['string', 'integer'] }, text: { type: 'string' }, metadata: metadataSchema, vector: { type: 'array', items: { type: 'number' } } },
}

const collectionInfoSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    size: { type: 'integer' },
    dimensions: { type: 'integer' },
    metric: { type: 'string' },
    index: { type: 'string' },
    fields: { type: 'object', additionalProperties: { type: 'string' } },
    dirty: { type: 'boolean', description: 'changed since its last save' },
  },
}

function withErrors(ok: Record<string, Schema>): Record<string, Schema> {
  return { ...ok, '4xx': errorSchema, '5xx': errorSchema }
}

/** One route: its method, path, summary and schemas (the OpenAPI document lists them in order). */
export interface RouteSpec {
  method: 'GET' | 'POST' | 'DELETE'
  url: string
  summary: string
  schema: { params?: Schema; body?: Schema; response: Record<string, Schema> }
}

/** Every route's schemas under the given limits. */
export function routeSpecs(limits: ServeLimits): Record<string, RouteSpec> {
  const search = setProperties('CollectionSearchOptions', { k: limits.maxK, efSearch: limits.maxEfSearch })
  const create = setProperties('CollectionOptions')
  return {
    health: {
      method: 'GET',
      url: '/health',
      summary: 'Liveness: 200 while the server accepts requests (no API key needed)',
      schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' }, collections: { type: 'integer' }, uptimeSeconds: { type: 'number' } } } } },
    },
    metrics: { method: 'GET', url: '/metrics', summary: 'Prometheus metrics (text exposition format)', schema: { response: { 200: { type: 'string' } } } },
    openapi: { method: 'GET', url: '/openapi.json', summary: 'This API as an OpenAPI 3.1 document', schema: { response: { 200: { type: 'object', additionalProperties: true } } } },
    listCollections: {
      method: 'GET',
      url: '/collections',
      summary: 'The collections, with their sizes and settings',
      schema: { response: withErrors({ 200: { type: 'object', properties: { collections: { type: 'array', items: collectionInfoSchema } } } }) },
    },
    createCollection: {
      method: 'POST',
      url: '/collections',
      summary: 'Creates an empty collection (409 ERR_EXISTS if the name is taken)',
      schema: {
        body: { type: 'object', required: ['name', ...create.required], properties: { name: { type: 'string', pattern: COLLECTION_NAME.source }, ...create.properties }, additionalProperties: false },
        response: withErrors({ 201: collectionInfoSchema }),
      },
    },
    describeCollection: {
      method: 'GET',
      url: '/collections/:name',
      summary: "A collection's settings and the sizes of its parts in bytes",
      schema: {
        params: nameParams,
        response: withErrors({
          200: {
            type: 'object',
            properties: {
              ...collectionInfoSchema.properties,
              stats: {
                type: 'object',
                properties: {
                  ...integers(['size', 'memoryBytes', 'indexBytes', 'idBytes', 'textBytes', 'metadataBytes', 'columnBytes']),
                  index: { type: 'object', description: 'indexBytes by part', properties: integers(['vectors', 'codes', 'graph', 'ids']) },
                },
              },
            },
          },
        }),
      },
    },
    dropCollection: {
      method: 'DELETE',
      url: '/collections/:name',
      summary: 'Drops a collection and deletes its file',
      schema: { params: nameParams, response: withErrors({ 200: { type: 'object', properties: { dropped: { type: 'boolean' } } } }) },
    },
    upsert: {
      method: 'POST',
      url: '/collections/:name/upsert',
      summary: 'Adds or replaces items (all of them or, on any error, none)',
      schema: {
        params: nameParams,
        body: {
          type: 'object',
          required: ['items'],
          additionalProperties: false,
          properties: {
            items: {
              type: 'array',
              maxItems: limits.maxItems,
              items: {
                type: 'object',
                required: ['id', 'vector'],
                additionalProperties: false,
                properties: { id: idSchema, vector: vectorSchema, text: { type: 'string', maxLength: limits.maxTextLength }, metadata: { ...metadataSchema, description: 'a JSON object; filters read its fields' } },
              },
            },
          },
        },
        response: withErrors({ 200: { type: 'object', properties: { upserted: { type: 'integer' } } } }),
      },
    },
    delete: {
      method: 'POST',
      url: '/collections/:name/delete',
      summary: 'Removes items by id, or every item a filter admits (give one of `ids` and `filter`)',
      schema: {
        params: nameParams,
        body: { type: 'object', additionalProperties: false, properties: { ids: { type: 'array', maxItems: limits.maxIds, items: idSchema }, filter: search.properties.filter! } },
        response: withErrors({ 200: { type: 'object', properties: { deleted: { type: 'integer' } } } }),
      },
    },
    get: {
      method: 'POST',
      url: '/collections/:name/get',
      summary: 'Items by id, in the order asked (null for an id not stored)',
      schema: {
        params: nameParams,
        body: { type: 'object', required: ['ids'], additionalProperties: false, properties: { ids: { type: 'array', maxItems: limits.maxIds, items: idSchema }, ...setProperties('CollectionGetOptions').properties } },
        response: withErrors({ 200: { type: 'object', properties: { items: { type: 'array', items: recordSchema } } } }),
      },
    },
    count: {
      method: 'POST',
      url: '/collections/:name/count',
      summary: 'How many items a filter admits (all items without one)',
      schema: {
        params: nameParams,
        body: { type: 'object', additionalProperties: false, properties: setProperties('CollectionCountOptions').properties },
        response: withErrors({ 200: { type: 'object', properties: { count: { type: 'integer' } } } }),
      },
    },
    search: {
      method: 'POST',
      url: '/collections/:name/search',
      summary: 'The k nearest items: `vector` (one query; concurrent ones are micro-batched) → `hits`, or `vectors` (a batch) → `results`',
      schema: {
        params: nameParams,
        body: {
          type: 'object',
          required: search.required,
          additionalProperties: false,
          properties: { vector: vectorSchema, vectors: { type: 'array', minItems: 1, maxItems: limits.maxQueries, items: vectorSchema }, ...search.properties },
        },
        response: withErrors({ 200: { type: 'object', properties: { hits: { type: 'array', items: hitSchema }, results: { type: 'array', items: { type: 'array', items: hitSchema } } } } }),
      },
    },
    save: {
      method: 'POST',
      url: '/collections/:name/save',
      summary: "Saves a collection to its file in the data folder, atomically (ERR_NO_DATA_DIR without one)",
      schema: { params: nameParams, response: withErrors({ 200: { type: 'object', properties: { saved: { type: 'boolean' }, bytes: { type: 'integer' } } } }) },
    },
  }
}

/** The OpenAPI 3.1 document of the routes, from the schemas the server validates with. */
export function openApiDocument(routes: Record<string, RouteSpec>, version: string, apiKey: boolean): Schema {
  const paths: Record<string, Record<string, Schema>> = {}
  for (const [operationId, route] of Object.entries(routes)) {
    const path = route.url.replace(/:(\w+)/g, '{$1}')
    const parameters = Object.entries((route.schema.params?.properties ?? {}) as Record<string, Schema>).map(([name, schema]) => ({ name, in: 'path', required: true, schema }))
    const responses = Object.fromEntries(
      Object.entries(route.schema.response).map(([status, schema]) => {
        const media = route.url === '/metrics' ? 'text/plain' : 'application/json'
        return [status.toUpperCase(), { description: status.startsWith('2') ? 'success' : 'an error: { statusCode, code, error, message, requestId }', content: { [media]: { schema } } }]
      }),
    )
    paths[path] ??= {}
    paths[path]![route.method.toLowerCase()] = {
      operationId,
      summary: route.summary,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.schema.body ? { requestBody: { required: true, content: { 'application/json': { schema: route.schema.body } } } } : {}),
      responses,
      ...(apiKey && route.url !== '/health' ? { security: [{ bearer: [] }] } : {}),
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'vecdex serve', version, description: 'Vector search over vecdex collections. Distances: lower is closer.' },
    paths,
    ...(apiKey ? { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the server\'s API key (or the x-api-key header)' } } } } : {}),
  }
}
