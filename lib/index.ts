/**
 * vecdex: vector search for Node.js with a Rust core.
 *
 * Distances follow one convention everywhere: lower is closer.
 */
import './binary' // first: a missing native binary fails with an error naming the platform
export { FlatIndex, type FlatIndexOptions, type FlatStats, type SearchOptions, type AddOptions, type TrainOptions } from './flat-index'
export { type FullVectorsOptions, HnswIndex, type HnswIndexOptions, type HnswSearchOptions, type HnswStats, type InsertionOrder } from './hnsw-index'
export { KeyFilter } from './key-filter'
export {
  Collection,
  type CollectionOptions,
  type CollectionItem,
  type CollectionRecord,
  type CollectionHit,
  type CollectionSearchOptions,
  type CollectionGetOptions,
  type CollectionCountOptions,
  type CollectionStats,
  type CollectionId,
  type DeleteTarget,
  type FieldType,
  type Filter,
  type Metadata,
  type MetadataValue,
  type UpsertStreamOptions,
} from './collection'
export {
  MultiVectorIndex,
  type MultiVectorIndexOptions,
  type MultiVectorSearchOptions,
  type ExactSearchOptions,
  type MultiVectorStats,
  type DocumentItem,
  type MultiVectorStrategy,
} from './multi-vector-index'
export { FdeEncoder, chamfer, type FdeOptions, type FdeConfig } from './fde-encoder'
export type { PointCloud, PointCloudBatch, PointCloudsInput } from './point-clouds'
export type { CompressionOptions, CompressionStats, MemoryParts, Quantization, QuantizationType } from './compression'
export { SearchResults, type QueryResult } from './results'
export { distance, distanceMatrix, distanceMatrixSync, capabilities, type Capabilities, type KernelPath, type KernelPaths, type DType, type DistanceOptions, type DistanceMatrixOptions } from './distance'
export { inspectIndexFile, inspectIndexFileSync, type IndexFileInfo, type IndexFileSection } from './inspect'
export { VecdexError, type ErrorCode } from './errors'
export { configure, type ConfigureOptions } from './configure'
export type { Key, KeysInput } from './keys'
export type { Metric, VectorInput, VectorsInput } from './validate'
export type { StreamItem, AddStreamOptions, SearchStreamOptions } from './stream'

import * as self from './index'
/** Every value export of vecdex, as one object. */
export type Vecdex = Omit<typeof self, 'default'>
/** Every export above as one object, for `import vecdex from 'vecdex'` (and
 * `require('vecdex').default`): the module itself. */
const vecdex: Vecdex = self
export default vecdex
