// ES module entry: re-exports the CommonJS build (one copy of the native handle per process).
export { Collection, FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder, chamfer, KeyFilter, SearchResults, distance, distanceMatrix, distanceMatrixSync, capabilities, configure, inspectIndexFile, inspectIndexFileSync, VecdexError } from './index.js'
export type * from './index.js'
// Node gives a CommonJS module's `module.exports` as its default export: the object of every
// export (`import vecdex from 'vecdex'`), the same object as `require('vecdex')`.
import vecdex from './index.js'
export default vecdex
