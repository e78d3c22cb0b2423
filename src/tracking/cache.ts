import type { Redis } from 'ioredis'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { RedisGuard } from '../infra/redis.js'
import { Batcher } from '../infra/batch.js'

/** Value stored for an sno that has no order (kept for a short time only). */
export const NOT_FOUND = '-'

export interface CachedTracking {
  /** The response body as it was sent, `NOT_FOUND`, or null on a miss. */
  body: string | null
  /** The order's write generation when it was read (see `store`). */
  generation: string
}

// Fill each order only if no write has happened since its reader took the generation. Keys come
// in pairs (body, generation), arguments in threes (generation read, body, TTL). An order whose
// generation cannot be read (a key of the wrong type) is not filled; the others still are.
const STORE_IF_UNCHANGED = `
local stored = {}
for n = 1, #KEYS / 2 do
  local current = redis.pcall('GET', KEYS[2 * n])
  if type(current) == 'table' and current.err then
    current = nil
  elseif current == false then
    current = ''
  end
  if current ~= nil and current == ARGV[3 * n - 2] then
    redis.call('SET', KEYS[2 * n - 1], ARGV[3 * n - 1], 'EX', ARGV[3 * n])
    stored[n] = 1
  else
    stored[n] = 0
  end
end
return stored`

// Writers bump each order's generation, then drop its bodies (both variants); readers that
// started earlier cannot refill. Keys come in threes: body, generation, other variant's body.
const INVALIDATE = `
for i = 1, #KEYS, 3 do
  redis.call('INCR', KEYS[i + 1])
  redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
  redis.call('DEL', KEYS[i], KEYS[i + 2])
end
return #KEYS / 3`

interface CacheCommands {
  storeIfUnchanged: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<number[]>
  invalidateOrders: (numberOfKeys: number, ...keysThenTtl: Array<string | number>) => Promise<number>
}

export interface TrackingCacheOptions {
  ttlSeconds: number
  notFoundTtlSeconds: number
  /** Part of the key, so that masked and full answers never mix. */
  variant: string
}

interface Fill {
  sno: number
  generation: string
  body: string
  ttl: number
}

/** The most invalidations remembered while Redis is away; past that, the namespace is cleared. */
const MAX_PENDING = 100_000

/**
 * Cache-aside store for /query answers: `track:v1:{sno}` holds the serialized body for
 * CACHE_TTL_SECONDS, `track:v1:{sno}:gen` counts the order's writes. The hash tag keeps both
 * keys in one slot should the cache move to Redis Cluster; the batched commands (the lookups and
 * fills of one turn, the invalidations of one write) would then be split by slot.
 */
export class TrackingCache {
  private readonly pending = new Set<number>()
  private overflowed = false
  private retry: NodeJS.Timeout | undefined
  private closed = false
  // Lookups and fills of one event-loop turn go to Redis as one command each.
  private readonly reads = new Batcher<number, CachedTracking | undefined>(async (snos) => await this.readMany(snos), undefined)
  private readonly fills = new Batcher<Fill, boolean>(async (fills) => await this.storeMany(fills), false)

  constructor (
    private readonly guard: RedisGuard,
    private readonly logger: Logger,
    private readonly options: TrackingCacheOptions
  ) {
    const redis = guard.redis as Redis & Partial<CacheCommands>
    if (redis.storeIfUnchanged === undefined) {
      redis.defineCommand('storeIfUnchanged', { lua: STORE_IF_UNCHANGED })
      redis.defineCommand('invalidateOrders', { lua: INVALIDATE })
    }
    guard.redis.on('ready', () => { this.flushPending().catch(() => {}) })
  }

  private get commands (): Redis & CacheCommands {
    return this.guard.redis as Redis & CacheCommands
  }

  bodyKey (sno: number): string {
    return `track:v1${this.options.variant}:{${sno}}`
  }

  generationKey (sno: number): string {
    return `track:v1:{${sno}}:gen`
  }

  /** The body and the generation (one MGET per turn for all lookups). `undefined` when Redis is unavailable. */
  async read (sno: number): Promise<CachedTracking | undefined> {
    return await this.reads.load(sno)
  }

  /** Stores a body read under `generation`, unless the order was written since. */
  async store (sno: number, generation: string, body: string): Promise<boolean> {
    const ttl = body === NOT_FOUND ? this.options.notFoundTtlSeconds : this.options.ttlSeconds
    if (ttl <= 0) return false
    return await this.fills.load({ sno, generation, body, ttl })
  }

  private async readMany (snos: number[]): Promise<Map<number, CachedTracking>> {
    const keys: string[] = []
    for (const sno of snos) keys.push(this.bodyKey(sno), this.generationKey(sno))
    const values = await this.guard.attempt(async (redis) => await redis.mget(keys))
    const found = new Map<number, CachedTracking>()
    if (values === undefined) return found
    for (const [i, sno] of snos.entries()) found.set(sno, { body: values[2 * i], generation: values[2 * i + 1] ?? '' })
    return found
  }

  private async storeMany (fills: Fill[]): Promise<Map<Fill, boolean>> {
    const keys: string[] = []
    const args: Array<string | number> = []
    for (const fill of fills) {
      keys.push(this.bodyKey(fill.sno), this.generationKey(fill.sno))
      args.push(fill.generation, fill.body, fill.ttl)
    }
    const stored = await this.guard.attempt(async () => await this.commands.storeIfUnchanged(keys.length, ...keys, ...args))
    return new Map(fills.map((fill, i) => [fill, stored?.[i] === 1]))
  }

  /**
   * Call after the write has committed. Tried twice at once; what still cannot reach Redis is
   * kept and sent again every half second until it gets through, so that no answer from
   * before the write outlives a Redis outage or a slow moment.
   */
  async invalidate (snos: readonly number[]): Promise<void> {
    if (snos.length === 0) return
    if (await this.send(snos) || await this.send(snos)) return
    this.defer(snos)
  }

  private async send (snos: readonly number[]): Promise<boolean> {
    // One script call for the whole write (one order, or the 100 of a /fake). On Redis Cluster
    // this would be split by slot; the {sno} hash tags already keep each order's keys together.
    const keys = snos.flatMap((sno) => [this.bodyKey(sno), this.generationKey(sno), this.otherVariantKey(sno)])
    const done = await this.guard.attempt(async () => {
      await this.commands.invalidateOrders(keys.length, ...keys, this.generationTtl)
      return true
    })
    return done === true
  }

  private defer (snos: readonly number[]): void {
    const first = this.pending.size === 0
    for (const sno of snos) this.pending.add(sno)
    if (this.pending.size > MAX_PENDING) {
      this.pending.clear()
      this.overflowed = true
    }
    if (first) this.logger.warn({ orders: snos.length }, 'cache invalidation deferred: redis did not answer; retrying')
    this.scheduleRetry()
  }

  private scheduleRetry (): void {
    if (this.closed) return
    this.retry ??= setTimeout(() => {
      this.retry = undefined
      this.flushPending().catch(() => {})
    }, 500).unref()
  }

  /**
   * On shutdown: one last attempt at what is still deferred. What cannot be sent is logged at
   * error level with the orders concerned: their cached answers may outlive the write until
   * their TTL, and an operator can delete those keys.
   */
  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.retry)
    if (this.pending.size === 0) return
    const snos = [...this.pending]
    this.pending.clear()
    if (!await this.send(snos)) {
      this.logger.error({ orders: snos.slice(0, 1000), count: snos.length }, 'cache invalidations lost at shutdown: these orders may show answers older than their last write until the cache TTL')
    }
  }

  private get generationTtl (): number {
    // Longer than any body lives, so a reader can never see a generation go back.
    return this.options.ttlSeconds * 2
  }

  private otherVariantKey (sno: number): string {
    return `track:v1${this.options.variant === '' ? ':masked' : ''}:{${sno}}`
  }

  private async flushPending (): Promise<void> {
    if (this.overflowed) {
      this.overflowed = false
      await this.clearNamespace()
    }
    if (this.pending.size === 0) return
    const snos = [...this.pending]
    this.pending.clear()
    if (await this.send(snos)) this.logger.info({ orders: snos.length }, 'deferred cache invalidations sent')
    else this.defer(snos)
  }

  /** Drops every cached answer (not the generations); used when too many invalidations were lost. */
  private async clearNamespace (): Promise<void> {
    const redis = this.guard.redis
    const prefix = redis.options.keyPrefix ?? ''
    try {
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}track:v1*`, 'COUNT', 1000)
        cursor = next
        const bodies = keys.filter((k) => !k.endsWith(':gen')).map((k) => k.slice(prefix.length))
        if (bodies.length > 0) await redis.unlink(...bodies)
      } while (cursor !== '0')
      this.logger.warn('cache namespace cleared after a long redis outage')
    } catch (err) {
      this.overflowed = true
      this.logger.error({ err }, 'could not clear the cache namespace; will retry')
      this.scheduleRetry()
    }
  }
}
