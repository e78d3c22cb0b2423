import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { RedisClient, RedisGuard } from '../infra/redis.js'
import { groupBySlot, orderSlot } from '../infra/redis-cluster.js'
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
 * tag keeps an order's keys in one slot: on a Redis Cluster, the lookups, fills and
 * invalidations of one turn are split by slot (one script call or DEL per slot, auto-pipelined
 * per node), since a script or a DEL may only touch keys of one slot there.
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
    private readonly trusted: () => boolean = () => true,
    /**
     * Changes whenever trust was withdrawn (a connection to a master closed): a read that spans
     * a change is not used, even if trust is back by the time its reply arrives.
     */
    private readonly trustEpoch: () => number = () => 0
  ) {
    const redis = guard.redis as RedisClient & Partial<CacheCommands>
    if (redis.storeIfUnchanged === undefined) {
      redis.defineCommand('readTracking', { lua: READ })
      redis.defineCommand('storeIfUnchanged', { lua: STORE_IF_UNCHANGED })
    }
  }

  private get commands (): RedisClient & CacheCommands {
    return this.guard.redis as RedisClient & CacheCommands
  }

  /** One group on a single server; one group per hash slot on a cluster. */
  private split<T> (items: readonly T[], snoOf: (item: T) => number): T[][] {
    return this.guard.redis.isCluster ? groupBySlot(items, (item) => orderSlot(snoOf(item))) : [[...items]]
  }

  bodyKey (sno: number): string {
    return `track:v1${this.options.variant}:{${sno}}`
  }

  generationKey (sno: number): string {
    return `gen:v2:{${sno}}`
  }

  /** The body and the generation (one script call per turn for all lookups). `undefined` when Redis is unavailable or not yet trusted. */
  async read (sno: number): Promise<CachedTracking | undefined> {
    // Redis known to be away, or not yet trusted: the answer is that now, without a turn's wait.
    if (!this.guard.available || !this.trusted()) return undefined
    return await this.reads.load(sno)
  }

  /** Stores a body read under `generation`, unless the order was written since. */
  async store (sno: number, generation: string, body: string): Promise<boolean> {
    const ttl = body === NOT_FOUND ? this.options.notFoundTtlSeconds : this.options.ttlSeconds
    if (ttl <= 0) return false
    return await this.fills.load({ sno, generation, body, ttl })
  }

  private async readMany (snos: number[]): Promise<Map<number, CachedTracking>> {
    const found = new Map<number, CachedTracking>()
    if (!this.trusted()) return found
    const epoch = this.trustEpoch()
    const token = `${TOKEN_PREFIX}.${(tokenCounter++).toString(36)}.`
    const groups = this.split(snos, (sno) => sno)
    const replies = await Promise.all(groups.map(async (group) => {
      const keys: string[] = []
      for (const sno of group) keys.push(this.bodyKey(sno), this.generationKey(sno))
      // Tokens stay unique across groups: each group's script numbers its orders from 1.
      const prefix = groups.length === 1 ? token : `${token}${orderSlot(group[0])}.`
      return await this.guard.attempt(async () => await this.commands.readTracking(keys.length, ...keys, prefix, this.generationTtl))
    }))
    if (!this.trusted() || this.trustEpoch() !== epoch) return found
    groups.forEach((group, g) => {
      const values = replies[g]
      if (values === undefined) return
      for (const [i, sno] of group.entries()) found.set(sno, { body: values[2 * i], generation: values[2 * i + 1] ?? '' })
    })
    return found
  }

  private async storeMany (fills: Fill[]): Promise<Map<Fill, boolean>> {
    const result = new Map(fills.map((fill) => [fill, false]))
    // Nothing is written into a Redis that has not been checked since it (re)started.
    if (!this.trusted()) return result
    await Promise.all(this.split(fills, (fill) => fill.sno).map(async (group) => {
      const keys: string[] = []
      const args: Array<string | number> = []
      for (const fill of group) {
        keys.push(this.bodyKey(fill.sno), this.generationKey(fill.sno))
        args.push(fill.generation, fill.body, fill.ttl)
      }
      const stored = await this.guard.attempt(async () => await this.commands.storeIfUnchanged(keys.length, ...keys, ...args))
      group.forEach((fill, i) => result.set(fill, stored?.[i] === 1))
    }))
    return result
  }

  /**
   * Call after the write has committed: drops the orders' bodies (both variants) and
   * generations in one DEL (one per slot on a cluster). False when any of them could not reach
   * Redis; the change relay sends it again from the change log.
   */
  async invalidate (snos: readonly number[]): Promise<boolean> {
    if (snos.length === 0) return true
    const done = await Promise.all(this.split(snos, (sno) => sno).map(async (group) => {
      const keys = group.flatMap((sno) => [this.bodyKey(sno), this.otherVariantKey(sno), this.generationKey(sno)])
      return await this.guard.attempt(async (redis) => {
        await redis.del(...keys)
        return true
      })
    }))
    return done.every((d) => d === true)
  }

  private get generationTtl (): number {
    // Longer than any body lives, so a reader can never see a generation go back.
    return this.options.ttlSeconds * 2
  }

  private otherVariantKey (sno: number): string {
    return `track:v1${this.options.variant === '' ? ':masked' : ''}:{${sno}}`
  }
}
