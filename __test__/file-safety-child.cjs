// Helper process of file-safety.spec.ts (not a spec itself). What it tests can hang a process
// (a FIFO open), kill it (SIGBUS from a view's truncated file) or depends on VECDEX_THREADS,
// which vecdex reads once per process: so each case runs here, under the spec's timeout.
//
// argv[2]: JSON { mode, dir, ... }. Prints one JSON line: the outcome of every call.
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { FlatIndex, HnswIndex, MultiVectorIndex, inspectIndexFile, inspectIndexFileSync } = require('../dist/index.js')

const DIM = 8

function matrix(n, seed) {
  const out = new Float32Array(n * DIM)
  let x = seed >>> 0
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    out[i] = x / 2 ** 32 - 0.5
  }
  return out
}

async function outcome(work) {
  try {
    await work()
    return 'ok'
  } catch (error) {
    return error && error.code ? error.code : `untyped: ${error}`
  }
}

async function hnsw(n) {
  const index = new HnswIndex({ dimensions: DIM, metric: 'l2sq', m: 6, efConstruction: 32 })
  await index.add(Array.from({ length: n }, (_, i) => i), matrix(n, 1))
  return index
}

/** `copies` concurrent async loads of a FIFO by every loader, with searches of a live index
 * and a real load racing them; then every sync loader once. */
async function fifoLoads({ dir, copies }) {
  const fifo = path.join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const link = path.join(dir, 'link-to-fifo')
  fs.symlinkSync(fifo, link)
  const live = await hnsw(200)
  const real = path.join(dir, 'real.vdx')
  live.saveSync(real)
  const loaders = {
    'FlatIndex.load': (p) => FlatIndex.load(p),
    'HnswIndex.load': (p) => HnswIndex.load(p),
    'HnswIndex.view': (p) => HnswIndex.view(p),
    'MultiVectorIndex.load': (p) => MultiVectorIndex.load(p),
    inspectIndexFile: (p) => inspectIndexFile(p),
  }
  const pending = []
  for (let i = 0; i < copies; i++) {
    for (const [name, load] of Object.entries(loaders)) {
      for (const p of [fifo, link]) pending.push(outcome(() => load(p)).then((code) => [name, code]))
    }
  }
  const search = outcome(() => live.searchBatch(matrix(3, 9), { k: 5 }))
  const load = outcome(() => HnswIndex.load(real))
  const loads = await Promise.all(pending)
  const sync = {
    'FlatIndex.loadSync': await outcome(() => FlatIndex.loadSync(fifo)),
    'HnswIndex.loadSync': await outcome(() => HnswIndex.loadSync(fifo)),
    'HnswIndex.viewSync': await outcome(() => HnswIndex.viewSync(link)),
    'MultiVectorIndex.loadSync': await outcome(() => MultiVectorIndex.loadSync(fifo)),
    inspectIndexFileSync: await outcome(() => inspectIndexFileSync(link)),
  }
  return { loads, search: await search, load: await load, sync }
}

/** Every call that needs the pools, under the VECDEX_THREADS the spec set. */
async function threads() {
  const index = new HnswIndex({ dimensions: DIM, metric: 'l2sq' })
  const add = await outcome(() => index.add([1, 2, 3], matrix(3, 2)))
  const search = await outcome(() => index.search(matrix(1, 3), { k: 1 }))
  const flat = new FlatIndex({ dimensions: DIM, metric: 'l2sq' })
  await outcome(() => flat.addSync(Array.from({ length: 5000 }, (_, i) => i), matrix(5000, 4)))
  const flatSearch = await outcome(() => flat.searchBatch(matrix(64, 5), { k: 3 }))
  const load = await outcome(() => HnswIndex.load('/nonexistent/file.vdx'))
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  const osThreads = Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? -1)
  return { add, search, flatSearch, load, osThreads }
}

/** A view, then another program changes its file; every later call's outcome. */
async function viewChange({ dir, change }) {
  const file = path.join(dir, 'viewed.vdx')
  const index = await hnsw(2000)
  index.saveSync(file)
  // An old modification time: the change is then seen even where the clock ticks coarsely.
  fs.utimesSync(file, new Date(1e12), new Date(1e12))
  const view = HnswIndex.viewSync(file)
  const size = fs.statSync(file).size
  if (change === 'truncate to zero') fs.truncateSync(file, 0)
  else if (change === 'truncate to half') fs.truncateSync(file, Math.floor(size / 2))
  else if (change === 'overwrite in place') {
    const fd = fs.openSync(file, 'r+')
    fs.writeSync(fd, Buffer.alloc(size - 4096, 0xff), 0, size - 4096, 4096)
    fs.closeSync(fd)
  } else if (change === 'replace by save') (await hnsw(10)).saveSync(file)
  const query = matrix(1, 7)
  return {
    searchSync: await outcome(() => view.searchSync(query, { k: 3 })),
    search: await outcome(() => view.search(query, { k: 3 })),
    get: await outcome(() => view.get(5)),
    stats: await outcome(() => view.stats()),
    save: await outcome(() => view.save(path.join(dir, 'copy.vdx'))),
    toBuffer: await outcome(() => view.toBuffer()),
  }
}

const modes = { fifoLoads, threads, viewChange }
const spec = JSON.parse(process.argv[2])
modes[spec.mode](spec).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`)
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`${error && error.stack}\n`)
    process.exit(1)
  },
)
