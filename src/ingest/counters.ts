import type { RedisClient } from '../infra/redis.js'

/** The set listing every consumer process's counters hash (read by the API's /metrics). */
export const INGEST_METRICS_SET = 'metrics:ingest'

/** What the consumer has done since it started; logged as one summary line now and then. */
export class IngestCounters {
  received = 0
  stored = 0
  duplicates = 0
  omitted = 0
  /** Batches written (one transaction each). */
  batches = 0
  /** Waits for MySQL to come back (the batch kept unacknowledged meanwhile). */
  databaseWaits = 0
  /** Re-established broker connections. */
  reconnects = 0
  readonly deadLettered = new Map<string, number>()

  deadLetter (code: string): void {
    this.deadLettered.set(code, (this.deadLettered.get(code) ?? 0) + 1)
  }

  get deadLetteredTotal (): number {
    let total = 0
    for (const n of this.deadLettered.values()) total += n
    return total
  }

  snapshot (): Record<string, unknown> {
    return {
      received: this.received,
      stored: this.stored,
      duplicates: this.duplicates,
      omitted: this.omitted,
      deadLettered: Object.fromEntries(this.deadLettered),
      batches: this.batches,
      databaseWaits: this.databaseWaits,
      reconnects: this.reconnects
    }
  }

  /**
   * Writes the counters where the API's /metrics reads them: a hash of this process's own that
   * expires when it stops reporting, listed in INGEST_METRICS_SET. Two calls, not one MULTI: on a
   * Redis Cluster the hash and the set live in different slots, and a MULTI across them fails.
   * One after the other, not at once: the cluster client opens a master's connection on its first
   * command and refuses a second one to that master while it is still connecting ("Connection is
   * closed"), which a fresh consumer's first report hit whenever both keys were on one master.
   */
  async publish (redis: RedisClient, processName: string): Promise<void> {
    const key = `${INGEST_METRICS_SET}:${processName}`
    const flat: Record<string, number> = {}
    for (const [name, value] of Object.entries(this.snapshot())) {
      if (typeof value === 'number') flat[name] = value
    }
    for (const [code, n] of this.deadLettered) flat[`dead_lettered_${code}`] = n
    await redis.multi().hset(key, flat).expire(key, 120).exec()
    await redis.sadd(INGEST_METRICS_SET, key)
  }
}
