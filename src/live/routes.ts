import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { sql } from 'kysely'
import type { Db } from '../infra/db.js'
import { HttpError, badRequest, notFound, unavailable } from '../http/errors.js'
import { clientKey } from '../http/rate-limit.js'
import { parseSno } from '../tracking/sno.js'
import type { TrackingService } from '../tracking/service.js'
import type { Change } from '../writes/change-relay.js'
import type { ChangeFeed } from './change-feed.js'
import { EventStream } from './sse.js'

export interface LiveOptions {
  db: Db
  tracking: TrackingService
  feed: ChangeFeed
  heartbeatMs: number
  maxStreamsPerClient: number
  maxStreams: number
}

/** The most missed changes replayed to one resuming stream. */
const MAX_REPLAY = 10_000

/** A change as live streams and webhooks show it: the change log's fields and the change itself. */
export function changeView (change: Change): Record<string, unknown> {
  return {
    change_id: change.id,
    sno: change.sno,
    seq: change.seq,
    kind: change.kind,
    ...JSON.parse(change.payload) as Record<string, unknown>,
    committed_at: change.created_at.toISOString()
  }
}

function lastEventId (raw: unknown): number | undefined {
  if (raw === undefined || raw === '') return undefined
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw)) throw badRequest('LAST_EVENT_ID_INVALID', 'Last-Event-ID must be the id of an event this stream sent')
  return Number(raw)
}

/**
 * GET /query/stream?sno=N: Server-Sent Events. The first event (`snapshot`) is the current /query
 * answer; then one `change` event per committed change of the parcel, with the change id as the
 * event id. A client that reconnects with Last-Event-ID gets what it missed from MySQL first.
 */
export const liveRoutes: FastifyPluginAsync<LiveOptions> = async (app, options) => {
  const streams = new Set<EventStream>()
  const perClient = new Map<string, number>()
  let opening = 0
  // Streams never fall idle: end them when the server stops, so that it can (clients reconnect
  // to another process with Last-Event-ID and miss nothing).
  app.addHook('preClose', async () => { for (const stream of streams) stream.end() })

  app.get('/query/stream', async (request, reply) => {
    const query = request.query as { sno?: unknown, last_event_id?: unknown }
    const sno = parseSno(query.sno)
    const resumeFrom = lastEventId(request.headers['last-event-id'] ?? query.last_event_id)
    const client = clientKey(request.ip)
    if ((perClient.get(client) ?? 0) >= options.maxStreamsPerClient) {
      throw new HttpError(429, 'TOO_MANY_STREAMS', `At most ${options.maxStreamsPerClient} open streams per client`, { 'retry-after': '30' })
    }
    if (streams.size + opening >= options.maxStreams) throw unavailable('STREAMS_FULL', 'This server holds all the streams it can; try again shortly', 10)
    // The place is taken now (streams being opened count), given back if the stream never opens.
    perClient.set(client, (perClient.get(client) ?? 0) + 1)
    opening += 1
    const release = (): void => {
      const left = (perClient.get(client) ?? 1) - 1
      if (left <= 0) perClient.delete(client)
      else perClient.set(client, left)
    }
    try {
      await open(reply, sno, resumeFrom, release)
    } catch (err) {
      release()
      throw err
    } finally {
      opening -= 1
    }
  })

  async function open (reply: FastifyReply, sno: number, resumeFrom: number | undefined, release: () => void): Promise<void> {
    // Changes that arrive before the snapshot is out wait in `pending`.
    const out: { stream?: EventStream } = {}
    let lastSent = 0
    const pending: Change[] = []
    const send = (change: Change): void => {
      if (change.id <= lastSent) return
      lastSent = change.id
      out.stream?.send('change', JSON.stringify(changeView(change)), change.id)
    }
    const unsubscribe = await options.feed.subscribe(sno, (change) => { if (out.stream === undefined) pending.push(change); else send(change) })
    let body: string
    let snapshotId: number
    let missed: Change[] = []
    try {
      const { rows } = await sql<{ id: number | null }>`SELECT MAX(id) AS id FROM change_log WHERE sno = ${sno}`.execute(options.db)
      snapshotId = Number(rows[0]?.id ?? 0)
      const found = await options.tracking.lookup(sno)
      if (found === null) throw notFound('TRACKING_NOT_FOUND', `No order with sno ${sno}`)
      body = found.toString()
      if (resumeFrom !== undefined && resumeFrom < snapshotId) {
        missed = (await sql<Change>`SELECT id, sno, seq, kind, payload, created_at FROM change_log
          WHERE sno = ${sno} AND id > ${resumeFrom} AND id <= ${snapshotId} ORDER BY id LIMIT ${MAX_REPLAY}`.execute(options.db)).rows
          .map((c) => ({ ...c, id: Number(c.id), sno: Number(c.sno) }))
      }
    } catch (err) {
      unsubscribe()
      throw err
    }

    reply.hijack()
    const stream = out.stream = new EventStream(reply.raw, reply.getHeaders(), options.heartbeatMs)
    streams.add(stream)
    stream.whenClosed(() => {
      unsubscribe()
      streams.delete(stream)
      release()
    })
    // A resuming client keeps its own last id (the snapshot then carries none).
    stream.send('snapshot', body, resumeFrom === undefined ? snapshotId : undefined)
    lastSent = resumeFrom ?? snapshotId
    for (const change of missed) send(change)
    lastSent = Math.max(lastSent, snapshotId)
    for (const change of pending.sort((a, b) => a.id - b.id)) send(change)
  }
}
