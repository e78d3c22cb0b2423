import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Config } from '../config.js'
import { createDatabase } from '../infra/db.js'
import { createRedis, RedisGuard } from '../infra/redis.js'
import { ChangeRelay } from '../writes/change-relay.js'
import { CacheEpoch, ClusterCacheEpoch, type CacheTrust } from './cache-epoch.js'
import { TrackingCache } from './cache.js'

export interface CacheStack {
  guard: RedisGuard
  cache: TrackingCache
  epoch: CacheTrust
  close: () => void
}

/** The /query cache's keys (bodies and generations, after the key prefix): what a Redis restart check drops. */
export const CACHE_KEY_PATTERNS: readonly string[] = ['track:v1*', 'gen:v2:*']

/** The shared /query cache as every process that reads or writes orders uses it. */
export function createTrackingCache (config: Config, logger: Logger, name = 'redis'): CacheStack {
  const redis = createRedis(config.redis, logger, name)
  const guard = new RedisGuard(redis, logger)
  // On a cluster, one boot marker per master (see ClusterCacheEpoch).
  const clusterEpoch = redis.isCluster ? new ClusterCacheEpoch(guard, logger, CACHE_KEY_PATTERNS) : undefined
  const epoch: CacheTrust = clusterEpoch ?? new CacheEpoch(guard, logger, CACHE_KEY_PATTERNS)
  const cache = new TrackingCache(guard, logger, {
    ttlSeconds: config.cache.ttlSeconds,
    notFoundTtlSeconds: config.cache.notFoundTtlSeconds,
    variant: config.piiMask ? ':masked' : ''
  }, () => epoch.isTrusted, clusterEpoch === undefined ? undefined : () => clusterEpoch.epoch)
  return {
    guard,
    cache,
    epoch,
    close: () => {
      epoch.close()
      redis.disconnect()
    }
  }
}

/**
 * The relay that replays the change log into the cache (see ChangeRelay), on a connection of its
 * own (it holds the relay's named lock while it leads).
 */
export function startCacheRelay (config: Config, logger: Logger, invalidate: (snos: readonly number[]) => Promise<boolean>): { relay: ChangeRelay, close: () => Promise<void> } {
  const database = createDatabase({ ...config.db, poolSize: 1, queueLimit: 10 })
  const relay = new ChangeRelay(database.db, logger, {
    name: 'cache',
    intervalMs: config.relay.intervalMs,
    deliver: async (changes) => await invalidate([...new Set(changes.map((c) => c.sno))])
  })
  relay.start()
  return {
    relay,
    close: async () => {
      await relay.stop()
      await database.close()
    }
  }
}
