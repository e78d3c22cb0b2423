import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import type { Location } from '../db/schema.js'
import { fleetEntries, type FleetEntry } from '../fleet/vehicles.js'
import { HttpError, unavailable } from '../http/errors.js'
import { clientKey } from '../http/rate-limit.js'
import type { Db } from '../infra/db.js'
import { EventStream } from '../live/sse.js'

/**
 * The fleet as /fleet answers it, read once a second by each API process while at least one
 * stream is open, and pushed to all of them: a `snapshot` with every vehicle to a new stream,
 * then a `change` with the vehicles whose entry changed (position, status, hub, load, or the
 * status that time alone changes: offline after 10 minutes) and the ids of removed ones.
 * The stream carries state, not a log: a client that reconnects gets a fresh snapshot.
 */
export class FleetBroadcast {
  private readonly streams = new Set<EventStream>()
  private last = new Map<string, string>()
  private vehicles: FleetEntry[] = []
  private timer: NodeJS.Timeout | undefined
  private polling: Promise<void> | undefined
  private tick = 0
  /** Whether `last` holds a reading to compare with (an empty fleet is one). */
  private primed = false

  constructor (
    private readonly db: Db,
    private readonly hubs: () => Promise<ReadonlyMap<number, Location>>,
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs = 1000
  ) {}

  get size (): number {
    return this.streams.size
  }

  /** A current picture before a stream opens (the first stream's read; errors reach the caller). */
  async ready (): Promise<void> {
    if (this.timer === undefined) await this.poll(true)
  }

  add (stream: EventStream): void {
    this.streams.add(stream)
    stream.whenClosed(() => {
      this.streams.delete(stream)
      if (this.streams.size === 0) this.stop()
    })
    stream.send('snapshot', JSON.stringify({ vehicles: this.vehicles }), this.tick)
    this.timer ??= setInterval(() => { this.poll(false).catch(() => {}) }, this.intervalMs)
    this.timer.unref()
  }

  endAll (): void {
    for (const stream of this.streams) stream.end()
    this.stop()
  }

  private stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.last = new Map()
    this.primed = false
  }

  private async poll (throwing: boolean): Promise<void> {
    if (this.polling !== undefined) return await this.polling
    this.polling = (async () => {
      try {
        const vehicles = await fleetEntries(this.db, await this.hubs())
        const now = new Map(vehicles.map((v) => [v.id, JSON.stringify(v)]))
        const changed = vehicles.filter((v) => this.last.get(v.id) !== now.get(v.id))
        const removed = [...this.last.keys()].filter((id) => !now.has(id))
        const first = !this.primed
        this.primed = true
        this.last = now
        this.vehicles = vehicles
        if (!first && (changed.length > 0 || removed.length > 0)) {
          const data = JSON.stringify({ vehicles: changed, removed })
          this.tick += 1
          for (const stream of this.streams) stream.send('change', data, this.tick)
        }
      } catch (err) {
        if (throwing) throw err
        this.log.warn({ err }, 'fleet stream: reading the fleet failed; trying again in a second')
      } finally {
        this.polling = undefined
      }
    })()
    await this.polling
  }
}

/** GET /fleet/stream: Server-Sent Events of the fleet (see FleetBroadcast). */
export function fleetStreamRoute (app: FastifyInstance, { db, live }: { db: Db, live: Config['live'] }): void {
  const broadcast = new FleetBroadcast(db, async () => new Map((await app.hubs.all()).map((h) => [h.id, h])), app.log)
  const perClient = new Map<string, number>()
  app.addHook('preClose', async () => { broadcast.endAll() })

  app.get('/fleet/stream', { schema: { hide: true } }, async (request, reply) => {
    const client = clientKey(request.ip)
    if ((perClient.get(client) ?? 0) >= live.maxStreamsPerClient) {
      throw new HttpError(429, 'TOO_MANY_STREAMS', `At most ${live.maxStreamsPerClient} open streams per client`, { 'retry-after': '30' })
    }
    if (broadcast.size >= live.maxStreams) throw unavailable('STREAMS_FULL', 'This server holds all the streams it can; try again shortly', 10)
    try {
      await broadcast.ready()
    } catch {
      throw unavailable('DATABASE_UNAVAILABLE', 'The database is not answering; try again shortly', 5)
    }
    perClient.set(client, (perClient.get(client) ?? 0) + 1)
    reply.hijack()
    const stream = new EventStream(reply.raw, reply.getHeaders(), live.heartbeatMs)
    stream.whenClosed(() => {
      const left = (perClient.get(client) ?? 1) - 1
      if (left <= 0) perClient.delete(client)
      else perClient.set(client, left)
    })
    broadcast.add(stream)
  })
}
