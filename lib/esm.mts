// ES module entry: re-exports the CommonJS build (one copy of the native handle per process).
export { FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder, chamfer, KeyFilter, SearchResults, distance, distanceMatrix, distanceMatrixSync, capabilities, inspectIndexFile, inspectIndexFileSync, VecdexError } from './index.js'
export type * from './index.js'
