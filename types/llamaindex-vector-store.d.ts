// The part of `llamaindex/vector-store` (llamaindex 0.12, re-exporting @llamaindex/core's
// vector-store module) that lib/llamaindex*.ts use, for vecdex's own build only (tsconfig.json
// "paths"). llamaindex's shipped declarations do not compile under vecdex's `skipLibCheck: false`
// (TS1479: their .d.cts files import the ES-module-only @llamaindex/env; TS2307: they import types
// of `ajv`, which they do not depend on; TS2304: they use the DOM's MediaStream), and that setting
// is what checks vecdex's own generated index.d.ts. The emitted dist/llamaindex*.d.ts keep the
// specifier 'llamaindex/vector-store', so users' type checks see llamaindex's real declarations;
// the adapter's tests (__test__/llamaindex.spec.ts) run it against the real package.

declare abstract class BaseEmbedding {
  getTextEmbedding(text: string): Promise<number[]>
}

declare abstract class BaseNode {
  id_: string
  metadata: Record<string, any>
  get sourceNode(): { nodeId: string } | undefined
  getEmbedding(): number[]
  getContent(mode: MetadataMode): string
  setContent(value: unknown): void
}

declare enum MetadataMode {
  ALL = 'ALL',
  EMBED = 'EMBED',
  LLM = 'LLM',
  NONE = 'NONE',
}

export interface VectorStoreQueryResult {
  nodes?: BaseNode[]
  similarities: number[]
  ids: string[]
}

export declare enum VectorStoreQueryMode {
  DEFAULT = 'default',
  SPARSE = 'sparse',
  HYBRID = 'hybrid',
  SVM = 'svm',
  LOGISTIC_REGRESSION = 'logistic_regression',
  LINEAR_REGRESSION = 'linear_regression',
  MMR = 'mmr',
  SEMANTIC_HYBRID = 'semantic_hybrid',
}

export type MetadataFilterValue = string | number | string[] | number[]

export interface MetadataFilter {
  key: string
  value?: MetadataFilterValue
  operator: '==' | 'in' | '>' | '<' | '!=' | '>=' | '<=' | 'nin' | 'any' | 'all' | 'text_match' | 'contains' | 'is_empty'
}

export interface MetadataFilters {
  filters: Array<MetadataFilter>
  condition?: 'and' | 'or'
}

export interface VectorStoreQuery<T = unknown> {
  queryEmbedding?: number[]
  similarityTopK: number
  docIds?: string[]
  queryStr?: string
  mode: VectorStoreQueryMode
  alpha?: number
  filters?: MetadataFilters | undefined
  mmrThreshold?: number
  customParams?: T | undefined
}

export type VectorStoreBaseParams = {
  embeddingModel?: BaseEmbedding | undefined
  embedModel?: BaseEmbedding | undefined
}

export declare abstract class BaseVectorStore<Client = unknown, T = unknown> {
  embedModel: BaseEmbedding
  abstract storesText: boolean
  isEmbeddingQuery?: boolean
  abstract client(): Client
  abstract add(embeddingResults: BaseNode[]): Promise<string[]>
  abstract delete(refDocId: string, deleteOptions?: object): Promise<void>
  abstract query(query: VectorStoreQuery<T>, options?: object): Promise<VectorStoreQueryResult>
  protected constructor(params?: VectorStoreBaseParams)
}

export declare function nodeToMetadata(node: BaseNode, removeText?: boolean, textField?: string, flatMetadata?: boolean): Record<string, any>
export declare function metadataDictToNode(metadata: Record<string, any>, options?: { fallback: Record<string, unknown> }): BaseNode
