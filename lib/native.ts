// The generated napi-rs loader: picks the prebuilt binary for this platform.
import native = require('../index.js')

export = native
