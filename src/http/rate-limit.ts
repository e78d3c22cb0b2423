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
/** The most clients tracked per window in one process; past that, newcomers share one count. */
const MAX_CLIENTS = 200_000
const CROWD = 'crowd'

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
  /** This process's hits not yet added to Redis. */
  unsent: number
  /** The cluster-wide count Redis returned at the last flush (ours included). */
  shared: number
}

/**
 * Per-client request counts for fixed windows aligned to the clock, shared by every API
 * process through Redis without a Redis round trip per request: each process counts locally
 * and adds its counts to Redis every `flushMs` (one pipelined INCRBY per active client),
 * reading back the cluster-wide totals; a client's first request in a window also fetches its
 * total in the background. A client can overshoot a limit by what the other processes
 * admitted in the last flush interval. With Redis away, counts stay local
 * (each process limits on its own), so the service never fails closed.
 */
export class SharedCounter {
  private readonly windows = new Map<string, Window>()
  private readonly timer: NodeJS.Timeout
  private flushing = false

  constructor (
    private readonly guard: RedisGuard,
    private readonly name: string,
    private readonly windowMs = MINUTE,
    flushMs = 100
  ) {
    this.timer = setInterval(() => { this.flush().catch(() => {}) }, flushMs)
    this.timer.unref()
  }

  /** Counts one hit and returns the count so far in this window and the ms left in it. */
  hit (key: string, now = Date.now()): { current: number, ttl: number } {
    const id = Math.floor(now / this.windowMs)
    let window = this.windows.get(key)
    if (window === undefined && this.windows.size >= MAX_CLIENTS) {
      // A flood of addresses: newcomers are counted together rather than let through unlimited.
      key = CROWD
      window = this.windows.get(key)
    }
    if (window === undefined || window.id !== id) {
      window = { id, unsent: 0, shared: 0 }
      this.windows.set(key, window)
      this.learn(key, window)
    }
    window.unsent += 1
    return { current: window.shared + window.unsent, ttl: (id + 1) * this.windowMs - now }
  }

  /** A client new to this process in this window: learn what the others have counted, in the background. */
  private learn (key: string, window: Window): void {
    if (!this.guard.available) return
    this.guard.attempt(async (redis) => await redis.get(`rl:${this.name}:${window.id}:${key}`)).then((total) => {
      if (total != null) window.shared = Math.max(window.shared, Number(total))
    }, () => {})
  }

  /** Adds local counts to Redis and learns the cluster-wide totals. */
  async flush (now = Date.now()): Promise<void> {
    if (this.flushing) return
    const current = Math.floor(now / this.windowMs)
    const batch: Array<[string, Window, number]> = []
    for (const [key, window] of this.windows) {
      if (window.id < current) this.windows.delete(key)
      else if (window.unsent > 0) batch.push([key, window, window.unsent])
    }
    if (batch.length === 0 || !this.guard.available) return
    this.flushing = true
    try {
      await this.guard.attempt(async (redis) => {
        const pipeline = redis.pipeline()
        for (const [key, window, sent] of batch) {
          const redisKey = `rl:${this.name}:${window.id}:${key}`
          pipeline.incrby(redisKey, sent)
          pipeline.pexpire(redisKey, this.windowMs * 2)
        }
        const results = await pipeline.exec() ?? []
        batch.forEach(([, window, sent], i) => {
          const [err, total] = results[i * 2] ?? [new Error('no reply'), 0]
          if (err !== null) return
          window.unsent -= sent
          window.shared = Number(total)
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
    const { current, ttl } = this.counter.hit(clientKey(request.ip))
    if (current <= this.perMinute) return undefined
    const seconds = String(Math.max(1, Math.ceil(ttl / 1000)))
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
 * walking through snos is slow while looking up real parcels is not affected. Counted only
 * when an answer is a 404, so the hit path pays nothing for it.
 */
export class NotFoundLimiter {
  constructor (private readonly counter: SharedCounter, private readonly perMinute: number) {}

  /** Throws 429 once this client has had more than its share of 404s in the minute. */
  recordNotFound (request: FastifyRequest): void {
    if (this.perMinute <= 0) return
    const { current, ttl } = this.counter.hit(clientKey(request.ip))
    if (current > this.perMinute) {
      const seconds = Math.max(1, Math.ceil(ttl / 1000))
      throw new HttpError(429, 'TOO_MANY_NOT_FOUND', `Too many lookups of unknown orders; retry in ${seconds} s`, { 'retry-after': String(seconds) })
    }
  }
}
