// configure({ threads }) sizes vecdex's thread pools before their first use, in place of
// VECDEX_THREADS. The pools are process-wide, so each case runs in a child process.
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..')

/** Runs `body` (CommonJS, with `v` = vecdex and `codeOf(fn)`) in a fresh process; its JSON output. */
function child(body: string, env: Record<string, string> = {}): unknown {
  const script = `
    const v = require(${JSON.stringify(resolve(root, 'dist', 'index.js'))})
    const codeOf = (fn) => { try { fn(); return 'none' } catch (e) { return e instanceof v.VecdexError ? e.code : 'untyped: ' + e } }
    const out = {}
    ${body}
    console.log(JSON.stringify(out))`
  const environment = { ...process.env, ...env }
  if (!('VECDEX_THREADS' in env)) delete environment.VECDEX_THREADS
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, env: environment, encoding: 'utf8' }))
}

describe('configure({ threads })', () => {
  it('sizes the pools before first use, and wins over VECDEX_THREADS', () => {
    const out = child(
      `
      v.configure({ threads: 3 })
      v.configure({ threads: 2 }) // not started yet: the last one counts
      out.threads = v.capabilities().threads
      const index = new v.FlatIndex({ dimensions: 2 })
      index.addSync([1], [[1, 0]])
      out.key = index.searchSync([1, 0], { k: 1 }).get(0).numberKeys()[0]`,
      { VECDEX_THREADS: '5' },
    )
    expect(out).toEqual({ threads: 2, key: 1 })
  })

  it('after the pools started: the size in force is accepted, another is ERR_INVALID_ARGUMENT', () => {
    const out = child(`
      v.configure({ threads: 2 })
      out.threads = v.capabilities().threads // starts the pools
      out.same = codeOf(() => v.configure({ threads: 2 }))
      out.other = codeOf(() => v.configure({ threads: 3 }))
      out.after = v.capabilities().threads
      out.empty = codeOf(() => v.configure({}))`)
    expect(out).toEqual({ threads: 2, same: 'none', other: 'ERR_INVALID_ARGUMENT', after: 2, empty: 'none' })
  })

  it('refuses bad values and unknown options with ERR_INVALID_ARGUMENT, changing nothing', () => {
    const out = child(`
      for (const [name, options] of Object.entries({
        zero: { threads: 0 }, negative: { threads: -1 }, fraction: { threads: 1.5 }, huge: { threads: 1e9 },
        nan: { threads: NaN }, text: { threads: '2' }, misspelt: { thread: 2 }, unknown: { threads: 2, pool: 'x' },
        notAnObject: 2, none: undefined,
      })) out[name] = codeOf(() => v.configure(options))
      out.threads = v.capabilities().threads`, { VECDEX_THREADS: '1' })
    expect(out).toEqual({
      zero: 'ERR_INVALID_ARGUMENT',
      negative: 'ERR_INVALID_ARGUMENT',
      fraction: 'ERR_INVALID_ARGUMENT',
      huge: 'ERR_INVALID_ARGUMENT',
      nan: 'ERR_INVALID_ARGUMENT',
      text: 'ERR_INVALID_ARGUMENT',
      misspelt: 'ERR_INVALID_ARGUMENT',
      unknown: 'ERR_INVALID_ARGUMENT',
      notAnObject: 'ERR_INVALID_ARGUMENT',
      none: 'ERR_INVALID_ARGUMENT',
      threads: 1,
    })
  })
})
