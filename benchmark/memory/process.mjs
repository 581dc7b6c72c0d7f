// What the memory benchmarks read and change about their own process: resident set parts,
// page-cache eviction of a file, and memory cgroups (v1, as root) to run under a limit.

import fs from 'node:fs'
import { spawnSync } from 'node:child_process'

const CGROUP_ROOT = '/sys/fs/cgroup/memory'

/** VmRSS, RssAnon and RssFile of this process, in bytes (/proc/self/status). */
export function residentParts() {
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') }
}

/** Root-free eviction of a file's clean, unmapped pages from the page cache; true if it ran. */
export function dropFromCache(file) {
  return spawnSync('python3', ['-c', 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)', file]).status === 0
}

/** This process's memory cgroup folder (v1), or undefined where there is no such controller. */
function ownCgroup() {
  const own = /^\d+:memory:(.*)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))?.[1]
  return own && fs.existsSync(`${CGROUP_ROOT}${own}/cgroup.procs`) ? `${CGROUP_ROOT}${own}` : undefined
}

/** The folder of the cgroup `enterCgroup` makes for process `pid`. */
export function cgroupOf(pid) {
  const parent = ownCgroup()
  return parent && `${parent}/vecdex-bench-${pid}`
}

/**
 * Moves this process into a new memory cgroup of `limit` bytes. Returns `{ group, leave }`
 * (`leave` moves it back and removes the group), or `{ skipped }` with the reason it cannot.
 * Pages charged before the move stay charged outside.
 */
export function enterCgroup(limit) {
  const parent = ownCgroup()
  if (!parent) return { skipped: 'no cgroup v1 memory controller' }
  const group = `${parent}/vecdex-bench-${process.pid}`
  try {
    fs.mkdirSync(group)
    fs.writeFileSync(`${group}/memory.limit_in_bytes`, String(limit))
    fs.writeFileSync(`${group}/cgroup.procs`, String(process.pid))
  } catch (error) {
    try {
      fs.rmdirSync(group)
    } catch {}
    return { skipped: `cannot make a memory cgroup: ${error.code ?? error.message}` }
  }
  return {
    group,
    leave: () => {
      fs.writeFileSync(`${parent}/cgroup.procs`, String(process.pid))
      fs.rmdirSync(group)
    },
  }
}

/** The peak charge (bytes) and the count of limit hits of a cgroup from `enterCgroup`. */
export function cgroupFigures(group) {
  return {
    peak: Number(fs.readFileSync(`${group}/memory.max_usage_in_bytes`, 'utf8')),
    failcnt: Number(fs.readFileSync(`${group}/memory.failcnt`, 'utf8')),
  }
}
