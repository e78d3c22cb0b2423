import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../infra/redis.js'

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

/** The run's lease expired or was taken by another runner: it must not write anything more. */
export class LeaseLostError extends Error {
  readonly code = 'LEASE_LOST'
  constructor (readonly key: string, reason: string) {
    super(`the report lease ${key} was lost (${reason}): this run stops without writing more`)
    this.name = 'LeaseLostError'
  }
}

export interface Lease {
  readonly key: string
  /** The fencing token: the value of the lease key while this holder has it. */
  readonly token: string
  /**
   * Resolves only while the lease is this holder's: it is confirmed and extended in Redis
   * (check-and-extend in one script), or, if Redis does not answer, the last confirmation is
   * recent enough that the key cannot have expired yet. Otherwise throws LeaseLostError.
   */
  assertHeld: () => Promise<void>
  /** Set once the lease is known lost. */
  readonly lost: LeaseLostError | undefined
  release: () => Promise<void>
}

export interface LeaseOptions {
  /** Called once, when the lease is found lost (by the renewal timer or a check). */
  onLost?: (err: LeaseLostError) => void
}

/**
 * A lease in Redis (`SET key token NX PX ttl`), renewed every ttl/3 while work runs, released
 * only by its holder (the token is checked in a script, so a lease that expired and was taken
 * by another worker is never deleted by the first one). A renewal that finds another token, or
 * no key, marks the lease lost; so does a lease that could not be confirmed for longer than its
 * lifetime. Writers call `assertHeld()` right before each write. The lease is one key and each
 * script touches only it, so it works the same on a Redis Cluster.
 */
export async function acquireLease (redis: RedisClient, key: string, ttlMs: number, options: LeaseOptions = {}): Promise<Lease | null> {
  const token = randomUUID()
  const sentAt = Date.now()
  const ok = await redis.set(key, token, 'PX', ttlMs, 'NX')
  if (ok !== 'OK') return null
  // The key cannot expire before this (measured from when the command was sent).
  let validUntil = sentAt + ttlMs
  // A check that fails to reach Redis trusts the last confirmation only this far from its end.
  const margin = Math.min(Math.floor(ttlMs / 4), 5000)
  let lost: LeaseLostError | undefined
  let released = false

  const lose = (reason: string): LeaseLostError => {
    if (lost === undefined) {
      lost = new LeaseLostError(key, reason)
      clearInterval(timer)
      options.onLost?.(lost)
    }
    return lost
  }

  const extend = async (): Promise<void> => {
    if (lost !== undefined) throw lost
    const at = Date.now()
    let result: unknown
    try {
      result = await redis.eval(EXTEND, 1, key, token, ttlMs)
    } catch (err) {
      if (Date.now() >= validUntil - margin) throw lose(`not confirmed since ${new Date(validUntil - ttlMs).toISOString()}: ${(err as Error).message}`)
      return
    }
    if (Number(result) !== 1) throw lose('the key expired or another runner holds it')
    validUntil = at + ttlMs
  }

  const timer = setInterval(() => {
    if (!released) extend().catch(() => {})
  }, Math.max(100, Math.floor(ttlMs / 3)))
  timer.unref()

  return {
    key,
    token,
    get lost () { return lost },
    assertHeld: extend,
    release: async () => {
      released = true
      clearInterval(timer)
      if (lost === undefined) await redis.eval(RELEASE, 1, key, token).catch(() => {})
    }
  }
}
