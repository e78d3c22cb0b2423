import t from 'tap'
import { buildTestApp, eventually } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { SseClient } from '../helpers/sse.js'

const { app, database } = await buildTestApp(t, 'live_query_stream', { LIVE_POLL_MS: '20', LIVE_HEARTBEAT_MS: '300', LIVE_MAX_STREAMS_PER_CLIENT: '3' })
const base = await app.listen({ port: 0, host: '127.0.0.1' })
const order = await insertKnownOrder(database.db, { events: [{ status: 'Created', locationId: 1, at: '2026-11-20T01:00:00Z' }] })
let scans = 0
const scan = async (sno: number, status: 'Package Received' | 'In Transit' | 'Exception', hour: number): Promise<void> => {
  const [result] = await app.writer.applyEvents([{ event_id: `stream-${++scans}`, sno, status, location_id: 6, occurred_at: new Date(Date.UTC(2026, 10, 20, hour)) }])
  if (result.result !== 'accepted') throw new Error(`not accepted: ${JSON.stringify(result)}`)
}
const open = (url: string, headers?: Record<string, string>): SseClient => {
  const client = new SseClient(`${base}${url}`, headers)
  t.teardown(() => client.close())
  return client
}
const changes = (client: SseClient): Array<Record<string, unknown>> => client.events.filter((e) => e.event === 'change').map((e) => JSON.parse(e.data))

t.test('the current answer first, then every committed change once, in order', async (t) => {
  const client = open(`/query/stream?sno=${order.sno}`)
  t.ok(await client.waitFor((c) => c.events.length === 1), 'snapshot')
  t.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(client.headers['x-accel-buffering'], 'no')
  const snapshot = client.events[0]
  t.equal(snapshot.event, 'snapshot')
  t.equal(JSON.parse(snapshot.data).tracking_status, 'Created')

  await scan(order.sno, 'Package Received', 2)
  await scan(order.sno, 'In Transit', 3)
  await app.writer.applyEvents([{ event_id: `stream-${scans}`, sno: order.sno, status: 'In Transit', location_id: 6, occurred_at: new Date() }]) // a duplicate: no change
  await scan(order.sno, 'Exception', 4)
  t.ok(await client.waitFor((c) => changes(c).length >= 3), 'three changes')
  const seen = changes(client)
  t.same(seen.map((c) => c.tracking_status), ['Package Received', 'In Transit', 'Exception'], 'in commit order')
  t.same(seen.map((c) => c.seq), [1, 2, 3], 'the parcel\'s change sequence')
  const ids = client.events.filter((e) => e.event === 'change').map((e) => Number(e.id))
  t.same(ids, [...ids].sort((a, b) => a - b), 'ids increase')
  t.equal(new Set(ids).size, 3, 'each once')
  t.match(seen[0], { sno: order.sno, kind: 'tracking.event', status: 'Package Received', location_id: 6, occurred_at: '2026-11-20T02:00:00.000Z' })
  t.ok(await client.waitFor((c) => c.comments.includes('ping')), 'heartbeats')
})

t.test('a client that drops and resumes with Last-Event-ID misses nothing and gets nothing twice', async (t) => {
  const o = await insertKnownOrder(database.db, { events: [{ status: 'Created', locationId: 1, at: '2026-11-20T01:00:00Z' }] })
  const first = open(`/query/stream?sno=${o.sno}`)
  t.ok(await first.waitFor((c) => c.events.length === 1))
  await scan(o.sno, 'Package Received', 2)
  t.ok(await first.waitFor((c) => changes(c).length === 1))
  const last = first.lastId as string
  first.close()
  await scan(o.sno, 'In Transit', 3)
  await scan(o.sno, 'Exception', 4)

  const resumed = open(`/query/stream?sno=${o.sno}`, { 'last-event-id': last })
  t.ok(await resumed.waitFor((c) => changes(c).length === 2), 'the two missed changes')
  t.equal(resumed.events[0].event, 'snapshot')
  t.equal(resumed.events[0].id, undefined, 'the snapshot of a resumed stream keeps the client\'s last id')
  t.same(changes(resumed).map((c) => c.tracking_status), ['In Transit', 'Exception'])
  await scan(o.sno, 'In Transit', 5)
  t.ok(await resumed.waitFor((c) => changes(c).length === 3), 'then live ones')
  t.same(changes(resumed).map((c) => c.seq), [2, 3, 4])
})

t.test('clear errors, a cap per client, and streams end when the server stops', async (t) => {
  t.equal((await fetch(`${base}/query/stream?sno=424242`)).status, 404)
  t.equal((await fetch(`${base}/query/stream?sno=abc`)).status, 400)
  t.equal((await fetch(`${base}/query/stream?sno=1`, { headers: { 'last-event-id': 'x' } })).status, 400)
  // One client (as nginx forwards it) opening streams together: three fit, the fourth is refused.
  const as = { 'x-forwarded-for': '198.51.100.77' }
  const many = [1, 2, 3, 4].map(() => open(`/query/stream?sno=${order.sno}`, as))
  t.ok(await eventually(() => many.every((c) => c.status !== 0)), 'all answered')
  t.same(many.map((c) => c.status).sort(), [200, 200, 200, 429], 'at most 3 at once per client')
  const refused = await fetch(`${base}/query/stream?sno=${order.sno}`, { headers: as })
  t.equal(refused.status, 429)
  t.equal((await refused.json() as { code: string }).code, 'TOO_MANY_STREAMS')
  const open200 = many.filter((c) => c.status === 200)
  open200[0].close()
  t.ok(await eventually(async () => {
    const again = open(`/query/stream?sno=${order.sno}`, as)
    return await again.waitFor((c) => c.status !== 0) && again.status === 200
  }), 'a closed stream frees its place')

  await app.close()
  t.ok(await open200[1].waitFor((c) => c.ended), 'open streams end on shutdown')
})
