import type { Cluster, Redis } from 'ioredis'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { RedisGuard } from '../infra/redis.js'
import { nodeKey, slotOwners, tagForSlots } from '../infra/redis-cluster.js'

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

/** What the cache asks of a restart check, on one server (CacheEpoch) or a cluster (ClusterCacheEpoch). */
export interface CacheTrust {
  readonly isTrusted: boolean
  ready: (ms: number) => Promise<boolean>
  check: () => Promise<void>
  close: () => void
}

/**
 * The boot marker on a Redis Cluster, one per master: each master holds
 * `cache:boot:{tag}` (a hash tag chosen to land in one of its own slots) with its own run id. A
 * master that restarted (from a snapshot, or a replica promoted in its place) or was flushed has
 * its own `track:v1*` and `gen:v2:*` keys dropped (SCAN on that node) before the cache is
 * trusted again. Trust is all or nothing: while any master that owns slots is unchecked, or a
 * connection to one has closed since it was checked, reads and fills bypass Redis. `epoch`
 * changes each time trust is withdrawn, so that a read under way then is not used either (the
 * cluster client may route a command to a node that has just come back).
 */
export class ClusterCacheEpoch implements CacheTrust {
  private trusted = false
  private counter = 0
  private readonly verified = new Map<Redis, string>()
  private readonly watched = new WeakSet<Redis>()
  private readonly policyChecked = new WeakSet<Redis>()
  private timer: NodeJS.Timeout | undefined
  private checking: Promise<void> | undefined

  constructor (
    private readonly guard: RedisGuard,
    private readonly logger: Logger,
    private readonly patterns: readonly string[],
    private readonly intervalMs = 1000
  ) {
    const cluster = this.cluster
    cluster.on('+node', (node: Redis) => { this.watch(node) })
    cluster.on('-node', (node: Redis) => { this.forget(node) })
    for (const event of ['close', 'end', 'reconnecting']) cluster.on(event, () => { this.distrust() })
    cluster.on('ready', () => { this.check().catch(() => {}) })
    cluster.on('refresh', () => { this.check().catch(() => {}) })
    for (const node of cluster.nodes()) this.watch(node)
    this.timer = setInterval(() => { this.check().catch(() => {}) }, intervalMs).unref()
    if (cluster.status === 'ready') this.check().catch(() => {})
  }

  private get cluster (): Cluster {
    return this.guard.redis as Cluster
  }

  get isTrusted (): boolean {
    return this.trusted
  }

  /** Changes every time trust is withdrawn. */
  get epoch (): number {
    return this.counter
  }

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

  private watch (node: Redis): void {
    if (this.watched.has(node)) return
    this.watched.add(node)
    node.on('close', () => { this.forget(node) })
    node.on('ready', () => { this.check().catch(() => {}) })
  }

  private forget (node: Redis): void {
    if (this.verified.delete(node) || node.options.readOnly !== true) this.distrust()
  }

  private distrust (): void {
    this.trusted = false
    this.counter += 1
  }

  private async verify (): Promise<void> {
    const cluster = this.cluster
    const epoch = this.counter
    if (cluster.status !== 'ready') {
      this.trusted = false
      return
    }
    const owners = slotOwners(cluster)
    const masters = new Map(cluster.nodes('master').map((node) => [nodeKey(node), node]))
    let refresh = owners.size === 0
    const results = await Promise.all([...owners].map(async ([key, slots]) => {
      const node = masters.get(key)
      if (node === undefined) {
        refresh = true
        return false
      }
      this.watch(node)
      // A node being reconnected is checked when it is ready again (its 'ready' starts a check).
      if (node.status !== 'ready' && node.status !== 'wait') return false
      try {
        return await this.verifyNode(node, key, slots)
      } catch (err) {
        // MOVED (the slot table is behind), a timeout, a closed connection: not trusted yet.
        refresh ||= /MOVED|ASK|CLUSTERDOWN/.test((err as Error).message)
        return false
      }
    }))
    if (refresh) cluster.refreshSlotsCache()
    this.trusted = results.length > 0 && results.every(Boolean) && this.counter === epoch && cluster.status === 'ready'
  }

  /** Checks one master's marker against its run id; drops its cached answers when they differ. */
  private async verifyNode (node: Redis, key: string, slots: readonly number[]): Promise<boolean> {
    const prefix = this.cluster.options.keyPrefix ?? ''
    const tag = tagForSlots(slots)
    if (tag === undefined) return false
    const runId = /run_id:(\w+)/.exec(await node.info('server'))?.[1] ?? ''
    if (runId === '') return false
    if (!this.policyChecked.has(node)) await this.checkPolicy(node)
    // Commands sent straight to a node carry full key names (the cluster client adds the prefix).
    const markerKey = `${prefix}${BOOT_MARKER_KEY}:{${tag}}`
    const marker = await node.get(markerKey)
    if (marker === runId) {
      this.verified.set(node, runId)
      return true
    }
    this.verified.delete(node)
    const dropped = await this.dropAll(node, prefix)
    await node.set(markerKey, runId)
    this.verified.set(node, runId)
    this.logger.warn({ node: key, dropped, previous: marker === null ? 'none' : 'another server run' },
      'redis cluster master restarted, flushed or new: its cached answers from before were dropped')
    return true
  }

  private async dropAll (node: Redis, prefix: string): Promise<number> {
    let dropped = 0
    for (const pattern of this.patterns) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}${pattern}`, 'COUNT', 1000)
        cursor = next
        if (keys.length === 0) continue
        // One key per command: on a cluster node a multi-key UNLINK must stay within one slot.
        const pipeline = node.pipeline()
        for (const key of keys) pipeline.unlink(key)
        for (const [err, count] of await pipeline.exec() ?? []) {
          if (err !== null) throw err
          dropped += Number(count)
        }
      } while (cursor !== '0')
    }
    return dropped
  }

  private async checkPolicy (node: Redis): Promise<void> {
    this.policyChecked.add(node)
    try {
      const [, policy] = await node.config('GET', 'maxmemory-policy') as [string, string]
      if (policy.startsWith('allkeys-')) {
        this.logger.warn({ node: nodeKey(node), policy }, 'redis maxmemory-policy evicts keys without a TTL; use volatile-lru (see docs/operations.md)')
      }
    } catch {
      this.logger.info('redis CONFIG is not available: make sure maxmemory-policy is volatile-lru (see docs/operations.md)')
    }
  }
}
