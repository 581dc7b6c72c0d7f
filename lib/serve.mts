// `vecdex/serve`, ES module entry: re-exports the CommonJS build (one copy of the native handle
// and of Fastify per process).
export { createServer, VecdexServer, SERVE_SETTINGS } from './serve.js'
export type * from './serve.js'
