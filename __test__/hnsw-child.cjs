// Helper process of the HNSW specs (not a spec itself): vecdex reads VECDEX_THREADS once per
// process, so a build with a given thread count (VECDEX_THREADS=1: sequential, deterministic)
// must run in a process of its own.
//
// argv[2]: JSON { base: path, queries: path, dim, builds: [{ options, k, efSearch }] }, where the
// paths hold raw little-endian f32 matrices. For each build: a new HnswIndex(options), one
// `add` of the whole base under keys 0 .. n − 1, one batch search of the queries.
// Prints JSON { threads, builds: [{ k, keys (decimal strings), distances, counts, stats }] }.
const { readFileSync } = require('node:fs')
const { HnswIndex, capabilities } = require('../dist/index.js')

function readMatrix(path) {
  const bytes = readFileSync(path)
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
}

async function main() {
  const spec = JSON.parse(process.argv[2])
  const base = readMatrix(spec.base)
  const queries = readMatrix(spec.queries)
  const n = base.length / spec.dim
  const keys = Uint32Array.from({ length: n }, (_, i) => i)
  const builds = []
  for (const build of spec.builds) {
    const index = new HnswIndex(build.options)
    await index.add(keys, base)
    const results = await index.searchBatch(queries, { k: build.k, efSearch: build.efSearch })
    builds.push({
      k: results.k,
      keys: Array.from(results.keys, String),
      distances: Array.from(results.distances),
      counts: Array.from(results.counts),
      stats: index.stats(),
    })
    index.close()
  }
  process.stdout.write(JSON.stringify({ threads: capabilities().threads, builds }))
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error))
  process.exit(1)
})
