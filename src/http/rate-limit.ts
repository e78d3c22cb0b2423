import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { RedisGuard } from '../infra/redis.js'
import { HttpError } from './errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: the route is not rate-limited (/ and /health). */
    rateLimit?: false
  }
}

const MINUTE = 60_000
/** The most clients tracked per window in one process; past that, the lightest are forgotten. */
const MAX_CLIENTS = 200_000

/**
 * The unit a limit applies to: an IPv4 address, or an IPv6 /64 (one subscriber's prefix, inside
 * which addresses are free to rotate).
 */
export function clientKey (ip: string): string {
  if (!ip.includes(':')) return ip
  if (ip.startsWith('::ffff:') && ip.includes('.')) return ip.slice(7)
  const [head, tail = ''] = ip.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`
}

interface Window {
  id: number
  /** This process's hits in the window. */
  local: number
  /** `local` as Redis last acknowledged it. */
  sent: number
  /** What the other processes had counted at the last exchange with Redis. */
  others: number
}

// Each process writes its own count (an absolute value, so a resend after a lost reply changes
// nothing) into the client's hash and reads back the sum of all processes' counts.
const REPORT_COUNT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
return total`

interface CounterCommands {
  reportCount: (key: string, process: string, count: number, ttlMs: number) => Promise<number>
}

/**
 * Per-client request counts for fixed windows aligned to the clock, shared by every API
 * process through Redis without a Redis round trip per request: each process counts locally
 * and reports its counts every `flushMs` (one pipelined script call per active client), reading
 * back the cluster-wide totals; a client's first request in a window also fetches its total in
 * the background. A process's view of the others' counts for a client is as fresh as its last
 * exchange for that client (its first request there in the window, or its last report of new
 * hits), so a client can overshoot a limit by what the other processes admitted since: at most a
 * flush interval's worth for a client that keeps coming to every process. With Redis away,
 * counts stay local (each process limits on its own), so the service never fails closed.
 * Memory is bounded: past `maxClients` in a window, the clients with the fewest hits are
 * forgotten first, so a flood of addresses costs nobody else a refusal.
 */
export class SharedCounter {
  private readonly windows = new Map<string, Window>()
  private readonly timer: NodeJS.Timeout
  private flushing = false
  private readonly processId = randomBytes(6).toString('base64url')

  constructor (
    private readonly guard: RedisGuard,
    private readonly name: string,
    private readonly windowMs = MINUTE,
    flushMs = 100,
    private readonly maxClients = MAX_CLIENTS
  ) {
    const redis = guard.redis as typeof guard.redis & Partial<CounterCommands>
    if (redis.reportCount === undefined) redis.defineCommand('reportCount', { numberOfKeys: 1, lua: REPORT_COUNT })
    this.timer = setInterval(() => { this.flush().catch(() => {}) }, flushMs)
    this.timer.unref()
  }

  /** Counts `count` hits (one by default) and returns the count so far in this window and the ms left in it. */
  hit (key: string, now = Date.now(), count = 1): { current: number, ttl: number } {
    return { current: this.add(key, now, count), ttl: this.msLeft(now) }
  }

  /** The count so far in this window, without counting a hit. */
  peek (key: string, now = Date.now()): { current: number, ttl: number } {
    return { current: this.current(key, now), ttl: this.msLeft(now) }
  }

  /** `hit` without its answer object, for the hit path: the count so far with these `count` hits. */
  add (key: string, now: number, count: number): number {
    const window = this.window(key, now)
    window.local += count
    return window.others + window.local
  }

  /** `peek`'s count alone. */
  current (key: string, now: number): number {
    const window = this.windows.get(key)
    return window === undefined || window.id !== Math.floor(now / this.windowMs) ? 0 : window.others + window.local
  }

  /** Whether Redis holds all of this process's hits for `key` in this window (they are visible to the other processes). */
  reported (key: string, now = Date.now()): boolean {
    const window = this.windows.get(key)
    return window === undefined || window.id !== Math.floor(now / this.windowMs) || window.sent === window.local
  }

  /** The ms left in the window `now` falls in. */
  msLeft (now: number): number {
    return (Math.floor(now / this.windowMs) + 1) * this.windowMs - now
  }

  /** How many clients this process is tracking (for tests and diagnostics). */
  get size (): number {
    return this.windows.size
  }

  private window (key: string, now: number): Window {
    const id = Math.floor(now / this.windowMs)
    let window = this.windows.get(key)
    if (window === undefined || window.id !== id) {
      if (window === undefined && this.windows.size >= this.maxClients) this.forgetLightest(id)
      window = { id, local: 0, sent: 0, others: 0 }
      this.windows.set(key, window)
      this.learn(key, window)
    }
    return window
  }

  /** Frees at least a tenth of the table: old windows first, then the clients with the fewest hits. */
  private forgetLightest (current: number): void {
    const target = Math.floor(this.maxClients * 0.9)
    for (const [key, window] of this.windows) if (window.id < current) this.windows.delete(key)
    for (let threshold = 1; this.windows.size > target; threshold *= 2) {
      for (const [key, window] of this.windows) {
        if (window.others + window.local <= threshold) this.windows.delete(key)
        if (this.windows.size <= target) break
      }
    }
  }

  private get commands (): CounterCommands {
    return this.guard.redis as unknown as CounterCommands
  }

  private redisKey (key: string, window: Window): string {
    return `rl:${this.name}:${window.id}:${key}`
  }

  /** A client new to this process in this window: learn what the others have counted, in the background. */
  private learn (key: string, window: Window): void {
    if (!this.guard.available) return
    const count = window.local
    this.guard.attempt(async () => await this.commands.reportCount(this.redisKey(key, window), this.processId, count, this.windowMs * 2)).then((total) => {
      if (total !== undefined) window.others = Math.max(window.others, Number(total) - count)
    }, () => {})
  }

  /** Reports local counts to Redis and learns the cluster-wide totals. */
  async flush (now = Date.now()): Promise<void> {
    if (this.flushing) return
    const current = Math.floor(now / this.windowMs)
    const batch: Array<[string, Window, number]> = []
    for (const [key, window] of this.windows) {
      if (window.id < current) this.windows.delete(key)
      else if (window.local > window.sent) batch.push([key, window, window.local])
    }
    if (batch.length === 0 || !this.guard.available) return
    this.flushing = true
    try {
      await this.guard.attempt(async (redis) => {
        let results: Array<[Error | null, unknown]>
        if (redis.isCluster) {
          // Clients' keys live in different slots: one call each, which the client pipelines per node.
          const settled = await Promise.allSettled(batch.map(async ([key, window, count]) => await this.commands.reportCount(this.redisKey(key, window), this.processId, count, this.windowMs * 2)))
          results = settled.map((s) => s.status === 'fulfilled' ? [null, s.value] : [s.reason as Error, 0])
          const first = results[0]?.[0]
          if (first instanceof Error && results.every(([err]) => err !== null)) throw first
        } else {
          const pipeline = redis.pipeline() as ReturnType<typeof redis.pipeline> & { reportCount: (...args: unknown[]) => unknown }
          for (const [key, window, count] of batch) pipeline.reportCount(this.redisKey(key, window), this.processId, count, this.windowMs * 2)
          results = await pipeline.exec() ?? []
        }
        batch.forEach(([, window, count], i) => {
          const [err, total] = results[i] ?? [new Error('no reply'), 0]
          if (err !== null) return
          window.sent = count
          window.others = Math.max(0, Number(total) - count)
        })
      })
    } finally {
      this.flushing = false
    }
  }

  close (): void {
    clearInterval(this.timer)
  }
}

/**
 * RATE_LIMIT_PER_MINUTE per client address (taken from X-Forwarded-For only behind the
 * trusted proxy) on every route but / and /health; 0 turns it off. Checked synchronously in
 * the app's one onRequest hook: no promise, no Redis round trip on the request path.
 */
export class RequestLimiter {
  constructor (private readonly counter: SharedCounter, private readonly perMinute: number) {}

  /** The 429 to answer with, or undefined to let the request through. */
  check (request: FastifyRequest): HttpError | undefined {
    if (this.perMinute <= 0 || request.routeOptions.config.rateLimit === false) return undefined
    return this.charge(request, 1)
  }

  /** Counts `count` more requests for this client (a batch counts each of its lookups). */
  charge (request: FastifyRequest, count: number): HttpError | undefined {
    if (this.perMinute <= 0 || count <= 0) return undefined
    return this.chargeClient(clientKey(request.ip), count)
  }

  /** `charge` for a client already keyed (clientKey) by the caller. */
  chargeClient (key: string, count: number, now = Date.now()): HttpError | undefined {
    if (this.perMinute <= 0 || count <= 0) return undefined
    if (this.counter.add(key, now, count) <= this.perMinute) return undefined
    const seconds = String(Math.max(1, Math.ceil(this.counter.msLeft(now) / 1000)))
    return new HttpError(429, 'RATE_LIMITED', `Too many requests: at most ${this.perMinute} a minute; retry in ${seconds} s`, {
      'retry-after': seconds,
      'x-ratelimit-limit': String(this.perMinute),
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': seconds
    })
  }
}

/**
 * Unknown order numbers have their own, much smaller budget per client, so that guessing or
 * walking through snos is slow. Counted only when an answer is a 404, so the hit path pays
 * nothing for it. Once a client is over it, every /query of theirs is refused before any lookup
 * until the window passes: a 429 for unknown snos only would tell real ones apart.
 */
export class NotFoundLimiter {
  constructor (private readonly counter: SharedCounter, private readonly perMinute: number) {}

  /** Throws 429 while this client is over its budget of unknown snos. */
  checkBudget (request: FastifyRequest): void {
    if (this.perMinute <= 0) return
    const { current, ttl } = this.counter.peek(clientKey(request.ip))
    if (current > this.perMinute) throw this.refusal(ttl)
  }

  /** Whether this client (already keyed by clientKey) is over its budget now; counts nothing. */
  overBudget (key: string, now = Date.now()): boolean {
    return this.perMinute > 0 && this.counter.current(key, now) > this.perMinute
  }

  /** Throws 429 once this client has had more than its share of 404s in the minute. */
  recordNotFound (request: FastifyRequest, count = 1): void {
    if (this.perMinute <= 0 || count <= 0) return
    const { current, ttl } = this.counter.hit(clientKey(request.ip), Date.now(), count)
    if (current > this.perMinute) throw this.refusal(ttl)
  }

  private refusal (ttl: number): HttpError {
    const seconds = Math.max(1, Math.ceil(ttl / 1000))
    return new HttpError(429, 'TOO_MANY_NOT_FOUND', `Too many lookups of unknown orders; retry in ${seconds} s`, { 'retry-after': String(seconds) })
  }
}
