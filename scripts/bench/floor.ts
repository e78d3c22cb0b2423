import { createPool, type Pool } from 'mysql2'
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../../src/config.js'
import { poolOptions, type Db } from '../../src/infra/db.js'
import type { RedisGuard } from '../../src/infra/redis.js'
import { TrackingCache } from '../../src/tracking/cache.js'
import { trackingStatementSql } from '../../src/tracking/queries.js'

export interface LoopResult { requests: number, seconds: number, p50: number, p99: number, errors: number, cpuSeconds: number }

/** `connections` loops each running `once` back to back for `seconds`, as a bare client would. */
export async function loops (connections: number, seconds: number, once: () => Promise<unknown>): Promise<LoopResult> {
  let done = 0
  let errors = 0
  const latencies: number[] = []
  const cpu = process.cpuUsage()
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < until) {
      const t = performance.now()
      try {
        await once()
        latencies.push(performance.now() - t)
        done += 1
      } catch {
        errors += 1
      }
    }
  }))
  const elapsed = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  latencies.sort((a, b) => a - b)
  const at = (p: number): number => Math.round((latencies[Math.floor(p * (latencies.length - 1))] ?? NaN) * 100) / 100
  return { requests: done, seconds: elapsed, p50: at(0.5), p99: at(0.99), errors, cpuSeconds: (used.user + used.system) / 1e6 }
}

interface ReadTracking { readTracking: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<Array<string | null>> }

/**
 * What a /query miss needs from the services, with bare clients and no HTTP: the cache read
 * (the same Lua script the API runs, for one order's two keys, which makes a generation token
 * when there is none) and the tracking statement for one order, in turn. Its own key prefix,
 * so the API's cache is untouched.
 */
export class MissFloor {
  readonly redis: Redis
  readonly pool: Pool
  private readonly cache: TrackingCache
  private readonly statement: string
  private token = 0

  constructor (config: Config, db: Db, connections: number) {
    this.redis = new Redis(config.redis.url, { keyPrefix: 'bench-floor:' })
    this.pool = createPool({ ...poolOptions(config.db), connectionLimit: connections })
    // TrackingCache defines the readTracking script on the client it is given: a bare client here.
    const silent = { warn () {}, info () {}, error () {}, debug () {} } as unknown as FastifyBaseLogger
    this.cache = new TrackingCache({ redis: this.redis } as unknown as RedisGuard, silent, { ttlSeconds: 14400, notFoundTtlSeconds: 60, variant: '' })
    this.statement = trackingStatementSql(db)
  }

  async read (sno: number): Promise<unknown> {
    return await (this.redis as unknown as ReadTracking).readTracking(2, this.cache.bodyKey(sno), this.cache.generationKey(sno), `floor.${this.token++}.`, 28800)
  }

  async select (sno: number): Promise<unknown> {
    return await new Promise((resolve, reject) => this.pool.query(this.statement, [sno], (err, rows) => err === null ? resolve(rows) : reject(err)))
  }

  async miss (sno: number): Promise<void> {
    await this.read(sno)
    await this.select(sno)
  }

  async close (): Promise<void> {
    this.redis.disconnect()
    await new Promise((resolve) => this.pool.end(resolve))
  }
}
