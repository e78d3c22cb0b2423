import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

export interface Lease {
  release: () => Promise<void>
}

/**
 * A lease in Redis (`SET key token NX PX ttl`), renewed every ttl/3 while work runs, released
 * only by its holder (the token is checked in a script, so a lease that expired and was taken
 * by another worker is never deleted by the first one).
 */
export async function acquireLease (redis: Redis, key: string, ttlMs: number): Promise<Lease | null> {
  const token = randomUUID()
  const ok = await redis.set(key, token, 'PX', ttlMs, 'NX')
  if (ok !== 'OK') return null
  // If Redis blinks the lease may lapse and a second worker start: the slot-derived keys make
  // that rerun harmless (it overwrites the same two objects).
  const timer = setInterval(() => { redis.eval(EXTEND, 1, key, token, ttlMs).catch(() => {}) }, Math.max(1000, Math.floor(ttlMs / 3)))
  timer.unref()
  return {
    release: async () => {
      clearInterval(timer)
      await redis.eval(RELEASE, 1, key, token).catch(() => {})
    }
  }
}
