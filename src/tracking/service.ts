import fastJson from 'fast-json-stringify'
import type { Db } from '../infra/db.js'
import { NOT_FOUND, type TrackingCache } from './cache.js'
import type { NearCache } from './near-cache.js'
import type { HubDirectory } from '../hubs/directory.js'
import { findTrackingRowsMany, type TrackingRow } from './queries.js'
import { Batcher } from '../infra/batch.js'
import { TrackingResponse } from './schemas.js'
import { maskRecipient, toTrackingResponse } from './view.js'

const serialize = fastJson(TrackingResponse)

/** A /query answer: the serialized body (as stored, or its bytes), or null when there is no such order. */
export type Lookup = string | Buffer | null

interface Flight {
  generation: string
  promise: Promise<Lookup>
}

/**
 * Cache-aside lookup: the in-process near cache, then Redis, then MySQL. A hit returns the
 * stored string untouched. Concurrent misses for one order in this process share one database
 * read, and the misses of one event-loop turn share one statement; the fill is skipped when the
 * order was written while it was read (TrackingCache.store).
 */
export class TrackingService {
  private readonly flights = new Map<number, Flight>()
  private readonly rows: Batcher<number, TrackingRow[]>

  constructor (
    db: Db,
    private readonly hubs: HubDirectory,
    private readonly cache: TrackingCache,
    private readonly options: { piiMask: boolean, notFoundTtlMs: number },
    private readonly near?: NearCache
  ) {
    this.rows = new Batcher(async (snos) => await findTrackingRowsMany(db, snos), [])
    if (near !== undefined) near.reread = async (sno) => await this.reread(sno)
  }

  /** Where answers came from since start (read by /metrics; plain counts cost nothing per request). */
  readonly stats = { near: 0, redis: 0, database: 0 }
  /** Near-cache copies read again from Redis before they expired (NearCache.reread), and how many of those reads found the answer still there. */
  readonly renewals = { asked: 0, renewed: 0 }

  /** The answer held in this process, if any: the bytes, or NOT_FOUND. */
  peek (sno: number): Buffer | typeof NOT_FOUND | undefined {
    const local = this.near?.get(sno)
    if (local !== undefined) this.stats.near++
    return local
  }

  /** The bytes of a found order's answer held in this process, if any (counts nothing). */
  held (sno: number, now = Date.now()): Buffer | undefined {
    const local = this.near?.get(sno, now)
    return local === undefined || local === NOT_FOUND ? undefined : local
  }

  async lookup (sno: number): Promise<Lookup> {
    const local = this.peek(sno)
    if (local !== undefined) return local === NOT_FOUND ? null : local

    const stamp = this.near?.begin(sno) ?? -1
    const cached = await this.cache.read(sno)
    const body = cached?.body ?? null
    this.near?.offer(sno, stamp, body, body === NOT_FOUND ? this.options.notFoundTtlMs : undefined)
    if (body !== null) {
      this.stats.redis++
      return body === NOT_FOUND ? null : body
    }

    // Without Redis there is no generation to guard a fill with, nor to tell whether a read under
    // way began before a write elsewhere: read on its own, and do not fill.
    // A generation that could not be made (Redis at maxmemory) guards nothing either.
    const generation = cached?.generation
    if (generation === undefined || generation === '') return await this.load(sno, undefined)
    const flight = this.flights.get(sno)
    if (flight !== undefined && flight.generation === generation) return await flight.promise

    const promise = this.load(sno, generation)
    const entry = { generation, promise }
    this.flights.set(sno, entry)
    try {
      return await promise
    } finally {
      if (this.flights.get(sno) === entry) this.flights.delete(sno)
    }
  }

  /**
   * A copy in use near the end of its life, read again from Redis (batched with the turn's other
   * reads) while the old one is served (NearCache.reread). Nothing comes from MySQL here: a body
   * Redis no longer holds leaves the copy to expire, and the next request takes the usual way.
   */
  private async reread (sno: number): Promise<{ body: string | null, ttlMs?: number }> {
    this.renewals.asked++
    const body = (await this.cache.read(sno))?.body ?? null
    if (body !== null) this.renewals.renewed++
    return { body, ttlMs: body === NOT_FOUND ? this.options.notFoundTtlMs : undefined }
  }

  /** How many answers this process holds, and whether it uses them (for tests and diagnostics). */
  nearSize (): number {
    return this.near?.size ?? 0
  }

  nearActive (): boolean {
    return this.near?.active ?? false
  }

  /**
   * Called after a write to these orders has committed (and by the change relay). False when
   * Redis did not take it; the relay then sends it again.
   */
  async invalidate (snos: readonly number[]): Promise<boolean> {
    for (const sno of snos) {
      this.flights.delete(sno)
      this.near?.invalidate(sno)
    }
    return await this.cache.invalidate(snos)
  }

  private async load (sno: number, generation: string | undefined): Promise<Lookup> {
    this.stats.database++
    const rows = await this.rows.load(sno)
    let body: Lookup = null
    if (rows.length > 0) {
      const response = toTrackingResponse(rows, await this.hubs.resolve(new Set(rows.map((r) => r.location_id))))
      if (this.options.piiMask) response.recipient = maskRecipient(response.recipient)
      body = serialize(response)
    }
    if (generation !== undefined) {
      this.cache.store(sno, generation, body ?? NOT_FOUND).catch(() => {})
    }
    return body
  }
}
