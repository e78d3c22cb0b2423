import type { FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import type { RedisGuard } from '../infra/redis.js'
import { HttpError } from './errors.js'

const MINUTE = 60_000

// A fixed window: the first hit of a window starts its expiry.
const COUNT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return { current, ttl }`

/**
 * Per-client counters in Redis, so that limits hold across every API process. Everything
 * goes through the Redis guard: with Redis away or slow the counter answers "unknown" at once
 * and the request is let through (fail open), never held up.
 */
export class RedisCounter {
  constructor (private readonly guard: RedisGuard) {
    const redis = guard.redis as Redis & { countHit?: unknown }
    if (redis.countHit === undefined) redis.defineCommand('countHit', { numberOfKeys: 1, lua: COUNT })
  }

  async hit (key: string, windowMs: number): Promise<{ current: number, ttl: number } | undefined> {
    const result = await this.guard.attempt(async (redis) =>
      await (redis as Redis & { countHit: (key: string, windowMs: number) => Promise<[number, number]> }).countHit(key, windowMs))
    return result === undefined ? undefined : { current: result[0], ttl: result[1] }
  }
}

function storeClass (counter: RedisCounter, prefix: string): new () => FastifyRateLimitStore {
  return class GuardedStore implements FastifyRateLimitStore {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      counter.hit(`${prefix}${key}`, timeWindow).then(
        (result) => result === undefined ? callback(new Error('rate limit store unavailable')) : callback(null, result),
        (err: Error) => callback(err)
      )
    }

    child (): FastifyRateLimitStore {
      return this
    }
  }
}

export interface RateLimitSettings {
  perMinute: number
  notFoundPerMinute: number
}

/**
 * Every route but / and /health: RATE_LIMIT_PER_MINUTE per client address (taken from
 * X-Forwarded-For only behind the trusted proxy). 0 turns it off.
 */
export async function registerRateLimit (app: FastifyInstance, counter: RedisCounter, settings: RateLimitSettings): Promise<void> {
  if (settings.perMinute <= 0) return
  await app.register(rateLimit, {
    global: true,
    max: settings.perMinute,
    timeWindow: MINUTE,
    store: storeClass(counter, 'rl:all:') as never,
    skipOnError: true,
    keyGenerator: (request: FastifyRequest) => request.ip,
    errorResponseBuilder: (_request, context) => new HttpError(429, 'RATE_LIMITED', `Too many requests: at most ${context.max} a minute; retry in ${context.after}`)
  })
}

/**
 * Unknown order numbers have their own, much smaller budget per client, so that guessing or
 * walking through snos is slow while looking up real parcels is not affected. Counted only
 * when an answer is a 404, so the hit path pays nothing for it.
 */
export class NotFoundLimiter {
  constructor (private readonly counter: RedisCounter, private readonly perMinute: number) {}

  /** Throws 429 once this client has had more than its share of 404s in the minute. */
  async recordNotFound (request: FastifyRequest): Promise<void> {
    if (this.perMinute <= 0) return
    const result = await this.counter.hit(`rl:nf:${request.ip}`, MINUTE)
    if (result !== undefined && result.current > this.perMinute) {
      const seconds = Math.max(1, Math.ceil(result.ttl / 1000))
      throw new HttpError(429, 'TOO_MANY_NOT_FOUND', `Too many lookups of unknown orders; retry in ${seconds} s`, { 'retry-after': String(seconds) })
    }
  }
}
