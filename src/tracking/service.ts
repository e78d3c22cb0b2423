import fastJson from 'fast-json-stringify'
import type { Db } from '../infra/db.js'
import { NOT_FOUND, type TrackingCache } from './cache.js'
import { findTrackingRows } from './queries.js'
import { TrackingResponse } from './schemas.js'
import { maskRecipient, toTrackingResponse } from './view.js'

const serialize = fastJson(TrackingResponse)

/** A /query answer: the serialized body, or null when there is no such order. */
export type Lookup = string | null

interface Flight {
  generation: string
  promise: Promise<Lookup>
}

/**
 * Cache-aside lookup. A hit returns the stored string untouched. Concurrent misses for one
 * order in this process share one database read; the fill is skipped when the order was
 * written while it was read (see TrackingCache.store).
 */
export class TrackingService {
  private readonly flights = new Map<number, Flight>()

  constructor (
    private readonly db: Db,
    private readonly cache: TrackingCache,
    private readonly options: { piiMask: boolean }
  ) {}

  async lookup (sno: number): Promise<Lookup> {
    const cached = await this.cache.read(sno)
    if (cached?.body != null) return cached.body === NOT_FOUND ? null : cached.body

    // Without Redis there is no generation to guard a fill with: read, and do not fill.
    const generation = cached?.generation
    const flight = this.flights.get(sno)
    if (flight !== undefined && flight.generation === (generation ?? flight.generation)) return await flight.promise

    const promise = this.load(sno, generation)
    const entry = { generation: generation ?? '', promise }
    this.flights.set(sno, entry)
    try {
      return await promise
    } finally {
      if (this.flights.get(sno) === entry) this.flights.delete(sno)
    }
  }

  /** Called after a write to these orders has committed. */
  async invalidate (snos: readonly number[]): Promise<void> {
    for (const sno of snos) this.flights.delete(sno)
    await this.cache.invalidate(snos)
  }

  private async load (sno: number, generation: string | undefined): Promise<Lookup> {
    const rows = await findTrackingRows(this.db, sno)
    let body: Lookup = null
    if (rows.length > 0) {
      const response = toTrackingResponse(rows)
      if (this.options.piiMask) response.recipient = maskRecipient(response.recipient)
      body = serialize(response)
    }
    if (generation !== undefined) {
      this.cache.store(sno, generation, body ?? NOT_FOUND).catch(() => {})
    }
    return body
  }
}
