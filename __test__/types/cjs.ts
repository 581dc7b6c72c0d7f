// The CommonJS entry (package.json "exports" require condition → dist/index.d.ts), through
// `import x = require()`. Checked by scripts/package-test/types.mjs; never run.
import vecdex = require('vecdex')

const options: vecdex.HnswIndexOptions = { dimensions: 2, metric: 'dot' }
const index: vecdex.HnswIndex = new vecdex.HnswIndex(options)
const results: Promise<vecdex.SearchResults> = index.search([1, 0], { k: 1 })
export = results
