// Loads the native binary before anything else (lib/index.ts imports this first), so that when
// none fits this platform the error names the platform and the package it needs. The generated
// loader (index.js) tries a `vecdex.<platform>.node` beside it (a source build), then the
// optional dependency `vecdex-<platform>`; its own error is generic and becomes the cause.
import { VecdexError } from './errors'

/** The napi-rs platform name: `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`, … */
function platformName(): string {
  const { platform, arch } = process
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform !== 'linux') return `${platform}-${arch}`
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return `linux-${arch}-${report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
}

try {
  require('../index.js')
} catch (error) {
  const name = platformName()
  // A binary that exists but does not load (an older glibc, a damaged file) says why.
  const reason = String((error as Error)?.message ?? error).split('\n')[0]
  const message = reason.startsWith('Cannot find native binding')
    ? `vecdex has no native binary for this platform (${name}, Node ${process.version}): install the optional dependency vecdex-${name} ` +
      '(npm installs it with vecdex unless optional dependencies are omitted, e.g. --omit=optional or a lockfile made without it), ' +
      'or build from source with Rust (npm run build). Prebuilt: linux x64/arm64 gnu and musl, darwin x64/arm64, win32 x64/arm64.'
    : `vecdex's native binary for this platform (${name}, Node ${process.version}) does not load: ${reason}. ` +
      `Reinstall vecdex-${name}, or build from source with Rust (npm run build).`
  throw new VecdexError('ERR_NO_BINARY', message, { cause: error })
}
