// A progress bar on stderr for long work: drawn only when stderr is a terminal (logs and pipes
// stay clean), redrawn at most ten times a second, erased when the work ends.

const WIDTH = 28

function fmtCount(n) {
  return Math.round(n).toLocaleString('en-US')
}

function fmtSeconds(s) {
  if (!Number.isFinite(s)) return '?'
  if (s < 60) return `${Math.ceil(s)} s`
  const m = Math.floor(s / 60)
  return `${m} min ${String(Math.round(s - m * 60)).padStart(2, '0')} s`
}

/**
 * @param {string} label
 * @param {{ total?: number, unit?: string, enabled?: boolean, stream?: NodeJS.WriteStream }} [options]
 *   total: the amount of work (unknown: a counter without a bar); unit: what is counted
 */
export function progressBar(label, { total, unit = '', enabled, stream = process.stderr } = {}) {
  const on = enabled ?? Boolean(stream.isTTY)
  const started = performance.now()
  let last = 0
  let done = 0
  const draw = () => {
    const seconds = (performance.now() - started) / 1000
    const rate = done / Math.max(seconds, 1e-9)
    let line
    if (total && total > 0) {
      const fraction = Math.min(1, done / total)
      const filled = Math.round(fraction * WIDTH)
      const eta = fraction > 0 ? (seconds / fraction) * (1 - fraction) : NaN
      line = `${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${fmtCount(done)}/${fmtCount(total)}${unit} ${fmtCount(rate)}${unit}/s ETA ${fmtSeconds(eta)}`
    } else {
      line = `${label} ${fmtCount(done)}${unit} ${fmtCount(rate)}${unit}/s`
    }
    const columns = stream.columns || 100
    stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`)
  }
  return {
    /** Sets the amount done (and the total, when it becomes known). */
    update(value, newTotal) {
      done = value
      if (newTotal !== undefined) total = newTotal
      if (!on) return
      const now = performance.now()
      if (now - last < 100) return
      last = now
      draw()
    },
    /** Erases the bar. */
    done() {
      if (on) stream.write('\r\x1b[K')
    },
  }
}
