// ES module entry: re-exports the CommonJS build (one copy of the native handle per process).
export { FlatIndex, HnswIndex, KeyFilter, SearchResults, distance, distanceMatrix, distanceMatrixSync, capabilities, VecdexError } from './index.js'
export type * from './index.js'
