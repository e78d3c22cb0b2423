import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Config } from '../config.js'
import { createCluster } from './redis-cluster.js'

/** One Redis server, or a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster

/**
 * Redis is an accelerator, never a dependency. The client never queues a command while it is
 * not connected, gives up on a command after `commandTimeoutMs`, and reconnects by itself.
 */
export function redisOptions (config: Config['redis']): RedisOptions {
  return {
    keyPrefix: config.keyPrefix,
    enableOfflineQueue: false,
    // Off: the cache already sends each turn's lookups and fills as one script call each
    // (src/infra/batch.ts), and ioredis builds a Pipeline object for every auto-pipelined turn
    // (copying every defined script onto it): with it on, misses took 5-10 % more CPU.
    enableAutoPipelining: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: config.commandTimeoutMs,
    connectTimeout: 1000,
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
    lazyConnect: false
  }
}

export function createRedis (config: Config['redis'], logger: Logger, name = 'redis'): RedisClient {
  const redis: RedisClient = config.clusterNodes.length > 0
    ? createCluster(config, name)
    : new Redis(config.url, { ...redisOptions(config), connectionName: name })
  let down = false
  redis.on('error', (err: Error) => {
    if (!down) logger.warn({ err }, 'redis unavailable; serving without it')
    down = true
  })
  redis.on('ready', () => {
    if (down) logger.info('redis back')
    down = false
  })
  return redis
}

/**
 * A circuit around the client: after a few consecutive failures (timeouts from a frozen or
 * slow server, refused connections) Redis is left alone for a short cool-down, and the
 * connection is recycled so that replies that will never come stop holding memory.
 */
export class RedisGuard {
  private failures = 0
  private openUntil = 0

  constructor (
    readonly redis: RedisClient,
    private readonly logger: Logger,
    private readonly options: { failureThreshold?: number, coolDownMs?: number } = {}
  ) {}

  get available (): boolean {
    return this.redis.status === 'ready' && Date.now() >= this.openUntil
  }

  /** Resolves when connected, or after `ms` regardless. */
  async waitUntilReady (ms: number): Promise<void> {
    if (this.redis.status === 'ready') return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.redis.off('ready', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.redis.once('ready', done)
    })
  }

  /** Runs a Redis operation; `undefined` when Redis is unavailable or the operation failed. */
  async attempt<T> (operation: (redis: RedisClient) => Promise<T>): Promise<T | undefined> {
    if (!this.available) return undefined
    try {
      const result = await operation(this.redis)
      this.failures = 0
      return result
    } catch (err) {
      this.recordFailure(err as Error)
      return undefined
    }
  }

  recordFailure (err: Error): void {
    this.failures += 1
    if (this.failures < (this.options.failureThreshold ?? 3) || Date.now() < this.openUntil) return
    this.openUntil = Date.now() + (this.options.coolDownMs ?? 1000)
    this.failures = 0
    this.logger.warn({ err }, 'redis failing; bypassing it for a moment')
    if (/timed out/i.test(err.message)) {
      // A frozen server keeps every sent command waiting: drop the connection and start over.
      this.redis.disconnect(true)
    }
  }
}
