#!/usr/bin/env node
// The `vecdex` command line: see cli/main.mjs.
import { main } from '../cli/main.mjs'

process.exitCode = await main(process.argv.slice(2))
