import { randomBytes } from 'node:crypto'
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

// Reads bodies and generations; an order without a generation gets a fresh token (its reader
// then holds that token, so its fill can land). Keys come in pairs (body, generation); ARGV:
// token prefix, generation TTL. A token that cannot be written (Redis at maxmemory) reads as ''
// and that reader does not fill.
const READ = `
local out = {}
for n = 1, #KEYS / 2 do
  local body = redis.call('GET', KEYS[2 * n - 1])
  local gen = redis.pcall('GET', KEYS[2 * n])
  if type(gen) == 'table' then
    gen = ''
  elseif not gen then
    gen = ARGV[1] .. n
    local set = redis.pcall('SET', KEYS[2 * n], gen, 'EX', ARGV[2])
    if type(set) == 'table' and set.err then gen = '' end
  end
  out[2 * n - 1] = body
  out[2 * n] = gen
end
return out`

// Fill each order only if its generation is still the token its reader saw: any write since
// deleted it, and tokens never repeat, so a read from before a write can never land (not even
// after the generation was evicted, expired or flushed). Keys come in pairs (body, generation),
// arguments in threes (generation read, body, TTL).
const STORE_IF_UNCHANGED = `
local stored = {}
for n = 1, #KEYS / 2 do
  local current = redis.pcall('GET', KEYS[2 * n])
  if type(current) == 'string' and current ~= '' and current == ARGV[3 * n - 2] then
    redis.call('SET', KEYS[2 * n - 1], ARGV[3 * n - 1], 'EX', ARGV[3 * n])
    stored[n] = 1
  else
    stored[n] = 0
  end
end
return stored`

interface CacheCommands {
  readTracking: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<Array<string | null>>
  storeIfUnchanged: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<number[]>
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

// Generation tokens: unique per process (random prefix) and per read (counter).
const TOKEN_PREFIX = randomBytes(6).toString('base64url')
let tokenCounter = 0

/**
 * Cache-aside store for /query answers: `track:v1:{sno}` holds the serialized body for
 * CACHE_TTL_SECONDS; `gen:v2:{sno}` holds a token that every write deletes (its own prefix, so
 * that the near cache, which watches `track:v1`, is not told of tokens being made). The hash
 * tag keeps an order's keys in one slot should the cache move to Redis Cluster.
 *
 * Invalidation is a plain DEL of an order's keys: Redis runs it even at maxmemory. The writer
 * sends it right after commit; should it not land (Redis away, a crash), the change relay
 * replays it from the change log (src/writes/change-relay.ts). A restarted or flushed Redis is
 * noticed by its boot marker (src/tracking/cache-epoch.ts) and nothing from before is served.
 */
export class TrackingCache {
  // Lookups and fills of one event-loop turn go to Redis as one command each.
  private readonly reads = new Batcher<number, CachedTracking | undefined>(async (snos) => await this.readMany(snos), undefined)
  private readonly fills = new Batcher<Fill, boolean>(async (fills) => await this.storeMany(fills), false)

  constructor (
    private readonly guard: RedisGuard,
    private readonly logger: Logger,
    private readonly options: TrackingCacheOptions,
    /** Whether what Redis holds may be trusted now (false until a restart check has passed). */
    private readonly trusted: () => boolean = () => true
  ) {
    const redis = guard.redis as Redis & Partial<CacheCommands>
    if (redis.storeIfUnchanged === undefined) {
      redis.defineCommand('readTracking', { lua: READ })
      redis.defineCommand('storeIfUnchanged', { lua: STORE_IF_UNCHANGED })
    }
  }

  private get commands (): Redis & CacheCommands {
    return this.guard.redis as Redis & CacheCommands
  }

  bodyKey (sno: number): string {
    return `track:v1${this.options.variant}:{${sno}}`
  }

  generationKey (sno: number): string {
    return `gen:v2:{${sno}}`
  }

  /** The body and the generation (one script call per turn for all lookups). `undefined` when Redis is unavailable or not yet trusted. */
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
    const found = new Map<number, CachedTracking>()
    if (!this.trusted()) return found
    const token = `${TOKEN_PREFIX}.${(tokenCounter++).toString(36)}.`
    const values = await this.guard.attempt(async () => await this.commands.readTracking(keys.length, ...keys, token, this.generationTtl))
    if (values === undefined || !this.trusted()) return found
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
   * Call after the write has committed: drops the orders' bodies (both variants) and
   * generations in one DEL. False when Redis could not be reached; the change relay sends it
   * again from the change log.
   */
  async invalidate (snos: readonly number[]): Promise<boolean> {
    if (snos.length === 0) return true
    const keys = snos.flatMap((sno) => [this.bodyKey(sno), this.otherVariantKey(sno), this.generationKey(sno)])
    const done = await this.guard.attempt(async (redis) => {
      await redis.del(...keys)
      return true
    })
    return done === true
  }

  private get generationTtl (): number {
    // Longer than any body lives, so a reader can never see a generation go back.
    return this.options.ttlSeconds * 2
  }

  private otherVariantKey (sno: number): string {
    return `track:v1${this.options.variant === '' ? ':masked' : ''}:{${sno}}`
  }
}
