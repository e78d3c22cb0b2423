import type { FastifyBaseLogger as Logger } from 'fastify'
import type { RedisGuard } from '../infra/redis.js'

/** Holds the run id of the Redis server that the cached answers were made on. */
export const BOOT_MARKER_KEY = 'cache:boot'

/**
 * Redis must never bring back answers from before a write: a server restarted from an RDB or AOF
 * file restores bodies that were deleted after the snapshot. The boot marker holds the run id
 * of the server the cache was filled on; a server with another run id (restarted) or without the
 * marker (flushed, or new) has every cached answer and generation dropped before it is trusted
 * again. Until then, and whenever the connection is down, reads bypass Redis.
 */
export class CacheEpoch {
  private trusted = false
  private runId: string | undefined
  private timer: NodeJS.Timeout | undefined
  private checking: Promise<void> | undefined
  private policyChecked = false

  constructor (
    private readonly guard: RedisGuard,
    private readonly logger: Logger,
    private readonly patterns: readonly string[],
    private readonly intervalMs = 1000
  ) {
    const redis = guard.redis
    redis.on('ready', () => {
      this.trusted = false
      this.runId = undefined
      this.check().catch(() => {})
    })
    redis.on('close', () => { this.trusted = false })
    this.timer = setInterval(() => { this.check().catch(() => {}) }, intervalMs).unref()
    if (redis.status === 'ready') this.check().catch(() => {})
  }

  get isTrusted (): boolean {
    return this.trusted
  }

  /** Resolves once Redis has been checked (or after `ms`). */
  async ready (ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!this.trusted && Date.now() < deadline) {
      await this.check().catch(() => {})
      if (!this.trusted) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return this.trusted
  }

  close (): void {
    clearInterval(this.timer)
  }

  async check (): Promise<void> {
    this.checking ??= this.verify().finally(() => { this.checking = undefined })
    await this.checking
  }

  private async verify (): Promise<void> {
    const redis = this.guard.redis
    if (redis.status !== 'ready') {
      this.trusted = false
      return
    }
    try {
      this.runId ??= /run_id:(\w+)/.exec(await redis.info('server'))?.[1] ?? ''
      if (!this.policyChecked) await this.checkPolicy()
      const marker = await redis.get(BOOT_MARKER_KEY)
      if (marker === this.runId && this.runId !== '') {
        this.trusted = true
        return
      }
      this.trusted = false
      const dropped = await this.dropAll()
      await redis.set(BOOT_MARKER_KEY, this.runId)
      this.trusted = true
      this.logger.warn({ dropped, previous: marker === null ? 'none' : 'another server run' },
        'redis restarted, flushed or new: every cached answer from before was dropped')
    } catch (err) {
      this.trusted = false
      this.guard.recordFailure(err as Error)
    }
  }

  private async dropAll (): Promise<number> {
    const redis = this.guard.redis
    const prefix = redis.options.keyPrefix ?? ''
    let dropped = 0
    for (const pattern of this.patterns) {
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}${pattern}`, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) dropped += await redis.unlink(...keys.map((k) => k.slice(prefix.length)))
      } while (cursor !== '0')
    }
    return dropped
  }

  /**
   * The cache needs a `volatile-*` eviction policy (or none at all, with room to spare): the
   * boot marker has no TTL and must not be evicted (an eviction would look like a flush and drop
   * the cache). `noeviction` is safe (invalidations are DELs, which Redis runs when full), but
   * a full Redis then stops caching.
   */
  private async checkPolicy (): Promise<void> {
    this.policyChecked = true
    try {
      const [, policy] = await this.guard.redis.config('GET', 'maxmemory-policy') as [string, string]
      const [, maxmemory] = await this.guard.redis.config('GET', 'maxmemory') as [string, string]
      if (policy.startsWith('allkeys-')) {
        this.logger.warn({ policy }, 'redis maxmemory-policy evicts keys without a TTL; use volatile-lru (see docs/operations.md)')
      } else if (policy === 'noeviction' && Number(maxmemory) > 0) {
        this.logger.warn({ policy, maxmemory }, 'redis stops caching when full under noeviction; volatile-lru is recommended (see docs/operations.md)')
      }
    } catch {
      this.logger.info('redis CONFIG is not available: make sure maxmemory-policy is volatile-lru (see docs/operations.md)')
    }
  }
}
