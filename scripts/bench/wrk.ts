import { execFile, execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

/**
 * The load generator: Debian's wrk, an external C process (event loop per thread, no GC), run
 * through `sh -c 'wrk …; times'` so that its own CPU time is known next to the server's.
 */
export const WRK = process.env.WRK_BIN ?? '/usr/bin/wrk'

/** Runs wrk on one core only (`taskset -c <core>`), from now on; undefined: wherever the kernel puts it. */
let pinnedCore: number | undefined
export function pinWrk (core: number | undefined): void {
  pinnedCore = core
}

export function wrkAvailable (): boolean {
  try {
    execFileSync(WRK, ['--version'], { stdio: 'ignore' })
    return true
  } catch (err) {
    // wrk --version prints its banner and exits 1.
    return (err as { status?: number }).status === 1
  }
}

/** Which paths the connections ask for: `prefix + (first + i mod count)` for i = 0, 1, 2, … across all threads. */
export interface Paths {
  prefix: string
  first: number
  count: number
}

export interface WrkOptions {
  url: string
  paths?: Paths
  connections: number
  threads: number
  seconds: number
  headers?: Record<string, string>
}

export interface WrkResult {
  requests: number
  seconds: number
  p50: number
  p99: number
  /** Connect, read, write errors and timeouts. */
  errors: number
  /** Answers outside 2xx/3xx. */
  non2xx: number
  /** The generator's own CPU seconds (user + system). */
  cpuSeconds: number
}

let scripts: string | undefined

/** A Lua script in which thread t of n asks for first + (t + n·k mod count), k = 0, 1, 2, … */
async function script (paths: Paths, threads: number): Promise<string> {
  scripts ??= await mkdtemp(path.join(tmpdir(), 'lt-bench-wrk-'))
  const file = path.join(scripts, `${paths.first}-${paths.count}-${threads}-${paths.prefix.replace(/\W/g, '_')}.lua`)
  await writeFile(file, `
local counter = 0
local tid = 0
local nthreads = ${threads}
local made = 0
function setup (thread)
  thread:set('tid', made)
  made = made + 1
end
function init (args)
  tid = tonumber(wrk.thread:get('tid')) or 0
end
request = function ()
  local n = (tid + nthreads * counter) % ${paths.count}
  counter = counter + 1
  return wrk.format('GET', '${paths.prefix}' .. (${paths.first} + n))
end
`)
  return file
}

/** "1.23ms" → 1.23 */
function ms (text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '')
  if (m === null) return NaN
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm']
  return Math.round(Number(m[1]) * scale * 100) / 100
}

const seconds = (text: string): number => {
  const m = /(\d+)m([\d.]+)s/.exec(text)
  return m === null ? 0 : Number(m[1]) * 60 + Number(m[2])
}

export async function wrk (options: WrkOptions): Promise<WrkResult> {
  const argv = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${options.seconds}s`, '--latency', '--timeout', '5s']
  for (const [name, value] of Object.entries(options.headers ?? {})) argv.push('-H', `${name}: ${value}`)
  if (options.paths !== undefined) argv.push('-s', await script(options.paths, options.threads))
  argv.push(options.url)
  const stdout = await new Promise<string>((resolve, reject) => {
    const command = pinnedCore === undefined ? [WRK] : ['taskset', '-c', String(pinnedCore), WRK]
    execFile('/bin/sh', ['-c', '"$0" "$@" && times', ...command, ...argv], { maxBuffer: 1 << 20 }, (err, out, errOut) => {
      if (err !== null) reject(new Error(`wrk failed: ${errOut || err.message}`))
      else resolve(out)
    })
  })
  const done = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(stdout)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  const lines = stdout.trim().split('\n')
  // `times`: the shell's own line, then its children's (wrk's) user and system time.
  const [user, system] = (lines.at(-1) ?? '').trim().split(/\s+/)
  return {
    requests: Number(done?.[1] ?? 0),
    seconds: done === null ? options.seconds : Number(done[2]) * ({ ms: 0.001, s: 1, m: 60 }[done[3] as 'ms' | 's' | 'm']),
    p50: ms(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1]),
    p99: ms(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1]),
    errors: socket === null ? 0 : socket.slice(1).reduce((n, v) => n + Number(v), 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
    cpuSeconds: seconds(user ?? '') + seconds(system ?? '')
  }
}

const TICK = 100 // USER_HZ on Linux

/** The processes `roots` and all their descendants, as found in /proc now. */
function family (roots: number[]): number[] {
  const parent = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out = new Set(roots)
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, ppid] of parent) if (out.has(ppid) && !out.has(pid)) { out.add(pid); grew = true }
  }
  return [...out]
}

/** CPU seconds used so far by these processes and their children (user + system, from /proc). */
export function cpuSeconds (roots: number[]): number {
  let ticks = 0
  for (const pid of family(roots)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime and stime are fields 14 and 15 of /proc/pid/stat (11 and 12 after the command).
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {}
  }
  return ticks / TICK
}
