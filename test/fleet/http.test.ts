import t from 'tap'
import { sql } from 'kysely'
import { buildTestApp } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { driveIntoHub, passBy, shuffled } from './drive.js'
import { step } from '../../src/fleet/geofence.js'

const { app, database } = await buildTestApp(t, 'fleet_http', { GEOFENCE_RADIUS_M: '300', GEOFENCE_DWELL_S: '60' })
const db = database.db
const hubs = new Map((await db.selectFrom('locations').selectAll().execute()).map((h) => [h.id, { lat: Number(h.lat), lng: Number(h.lng) }]))

const post = async (url: string, payload: unknown): Promise<{ statusCode: number, body: any }> => {
  const res = await app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> })
  return { statusCode: res.statusCode, body: res.json() }
}
async function vehicle (id: string, capacity = 10): Promise<void> {
  const res = await post('/vehicles', { id, name: `車 ${id}`, capacity, home_location_id: 1 })
  t.equal(res.statusCode, 201, `vehicle ${id} registered`)
}
/** A parcel handed in at `sender` an hour ago, bound for `receiver`. */
async function order (sender = 1, receiver = 3): Promise<number> {
  const { sno } = await insertKnownOrder(db, { events: [{ status: 'Created', locationId: sender, at: new Date(minutesAgo(60)).toISOString() }] })
  await db.updateTable('orders').set({ sender_location_id: sender, receiver_location_id: receiver }).where('sno', '=', sno).execute()
  return sno
}
const fleetEvents = async (sno: number): Promise<Array<{ status: string, location_id: number, event_id: string }>> =>
  (await sql<{ status: string, location_id: number, event_id: string }>`SELECT status, location_id, event_id FROM tracking_events WHERE order_sno = ${sno} AND event_id LIKE 'v:%' ORDER BY occurred_at, id`.execute(db)).rows
const query = async (sno: number): Promise<any> => (await app.inject(`/query?sno=${sno}`)).json()
const minutesAgo = (m: number): number => Date.now() - m * 60_000

t.test('the geofence rules, one fix at a time', async (t) => {
  const rules = { radiusM: 300, dwellMs: 60_000 }
  const at = (s: number): Date => new Date(1_800_000_000_000 + s * 1000)
  let r = step(undefined, 250, at(0), rules)
  t.equal(r.zone?.state, 'dwelling')
  r = step(r.zone, 310, at(30), rules)
  t.equal(r.zone, undefined, 'leaving the radius before the dwell ends resets it')
  r = step(undefined, 100, at(40), rules)
  r = step(r.zone, 100, at(100), rules)
  t.equal(r.transition?.kind, 'arrival', 'inside for the dwell time: arrival')
  t.same(r.transition?.at, at(40), 'dated at the entry')
  t.equal(step(r.zone, 440, at(120), rules).transition, undefined, 'within 1.5 × radius: still there')
  t.equal(step(r.zone, 460, at(120), rules).transition?.kind, 'departure', 'beyond 1.5 × radius: departure')
})

t.test('a drive into a hub with jitter at the edge: one arrival, one departure; replays add nothing', async (t) => {
  await vehicle('TPE-01')
  const sno = await order(1, 3)
  const load = await post('/vehicles/TPE-01/load', { snos: [sno], location_id: 1, occurred_at: new Date(minutesAgo(30)).toISOString() })
  t.equal(load.statusCode, 200)
  t.same(load.body.changed, [sno])
  t.equal((await query(sno)).tracking_status, 'Created', '/query cached before the drive')
  const drive = driveIntoHub(hubs.get(7)!, minutesAgo(20), 300)
  t.ok(drive.length >= 140, `${drive.length} fixes over ${(drive[drive.length - 1].ts - drive[0].ts) / 60_000} minutes`)
  const first = await post('/vehicles/TPE-01/positions', drive)
  t.equal(first.statusCode, 200)
  t.equal(first.body.arrivals, 1, 'one arrival')
  t.equal(first.body.departures, 1, 'one departure')
  t.same((await fleetEvents(sno)).map((e) => [e.status, e.location_id]), [['In Transit', 7], ['In Transit', 7]], 'arrival and departure at the transit hub')
  const body = await query(sno)
  t.equal(body.tracking_status, 'In Transit', '/query shows it at once')
  t.equal(body.current_location.location_id, 7)

  const again = await post('/vehicles/TPE-01/positions', drive)
  t.same([again.body.arrivals, again.body.departures, again.body.events], [0, 0, 0], 'replayed: nothing')
  t.ok(again.body.results.every((r: { result: string }) => r.result === 'late'), 'every replayed fix is late')
  const mixed = await post('/vehicles/TPE-01/positions', shuffled(drive, 7))
  t.same([mixed.body.arrivals, mixed.body.departures, mixed.body.events], [0, 0, 0], 'shuffled replay: nothing')
  t.equal((await fleetEvents(sno)).length, 2, 'still two events')
  const stored = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM vehicle_positions WHERE vehicle_id = 'TPE-01'`.execute(db)
  t.equal(Number(stored.rows[0].n), drive.length, 'the track holds each fix once')
})

t.test('the same drive shuffled within one request decides as the ordered one, in slices too', async (t) => {
  await vehicle('TPE-02')
  const sno = await order(1, 3)
  await post('/vehicles/TPE-02/load', { snos: [sno], location_id: 1, occurred_at: new Date(minutesAgo(30)).toISOString() })
  const drive = driveIntoHub(hubs.get(7)!, minutesAgo(20), 300, 2)
  const res = await post('/vehicles/TPE-02/positions', shuffled(drive, 3))
  t.same([res.body.arrivals, res.body.departures], [1, 1])
  await vehicle('TPE-03')
  const sno3 = await order(1, 3)
  await post('/vehicles/TPE-03/load', { snos: [sno3], location_id: 1, occurred_at: new Date(minutesAgo(30)).toISOString() })
  let arrivals = 0
  let departures = 0
  for (let i = 0; i < drive.length; i += 7) {
    const r = await post('/vehicles/TPE-03/positions', drive.slice(i, i + 7))
    arrivals += r.body.arrivals
    departures += r.body.departures
  }
  t.same([arrivals, departures], [1, 1], 'fed 7 fixes at a time')
  t.equal((await fleetEvents(sno3)).length, 2)
})

t.test('passing by without stopping: nothing', async (t) => {
  await vehicle('TPE-04')
  const sno = await order(1, 3)
  await post('/vehicles/TPE-04/load', { snos: [sno], location_id: 1, occurred_at: new Date(minutesAgo(30)).toISOString() })
  const res = await post('/vehicles/TPE-04/positions', passBy(hubs.get(7)!, minutesAgo(15)))
  t.same([res.body.arrivals, res.body.departures, res.body.events], [0, 0, 0])
  t.same(await fleetEvents(sno), [])
})

t.test('arriving at the receiver hub: Out for Delivery, and the parcel leaves the vehicle', async (t) => {
  await vehicle('TPE-05')
  const sno = await order(1, 3)
  await post('/vehicles/TPE-05/load', { snos: [sno], location_id: 1, occurred_at: new Date(minutesAgo(30)).toISOString() })
  const res = await post('/vehicles/TPE-05/positions', driveIntoHub(hubs.get(3)!, minutesAgo(20), 300, 5))
  t.same([res.body.arrivals, res.body.departures], [1, 1])
  t.same((await fleetEvents(sno)).map((e) => [e.status, e.location_id]), [['Out for Delivery', 3]], 'only the arrival: it was unloaded there')
  t.equal((await query(sno)).tracking_status, 'Out for Delivery')
  const fleet = (await app.inject('/fleet/TPE-05')).json()
  t.equal(fleet.parcels_on_board, 0)
  t.same(fleet.manifest, [])
})

t.test('inaccurate fixes decide nothing', async (t) => {
  await vehicle('TPE-06')
  const drive = driveIntoHub(hubs.get(7)!, minutesAgo(20), 300, 6).map((f) => ({ ...f, accuracy: 500 }))
  const res = await post('/vehicles/TPE-06/positions', drive)
  t.same([res.body.arrivals, res.body.departures], [0, 0])
})

t.test('refused fixes: counted, never stored', async (t) => {
  await vehicle('TPE-07')
  const ok = { lat: 25.04, lng: 121.5, ts: Date.now() - 1000 }
  const res = await post('/vehicles/TPE-07/positions', [
    ok,
    { lat: 95, lng: 121.5, ts: Date.now() },
    { lat: 25, lng: 121.5, ts: new Date(Date.now() + 3_600_000).toISOString() },
    { lat: 25, lng: 121.5, ts: '2026-11-29 08:00' },
    { lat: '25', lng: 121.5, ts: Date.now() },
    'nonsense'
  ])
  t.equal(res.statusCode, 200)
  t.same(res.body.results.map((r: { result: string, code?: string }) => r.code ?? r.result),
    ['accepted', 'COORDINATES_INVALID', 'TIME_IN_FUTURE', 'TIME_INVALID', 'PAYLOAD_INVALID', 'PAYLOAD_INVALID'])
  const stored = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM vehicle_positions WHERE vehicle_id = 'TPE-07'`.execute(db)
  t.equal(Number(stored.rows[0].n), 1, 'only the good one is stored')
  const unknown = await post('/vehicles/NOPE-1/positions', ok)
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.body.code, 'VEHICLE_NOT_FOUND')
  const { intake } = (await app.inject('/fleet')).json()
  t.equal(intake['http.refused.COORDINATES_INVALID'], 1)
  t.equal(intake['http.refused.TIME_IN_FUTURE'], 1)
  t.equal(intake['http.refused.PAYLOAD_INVALID'], 2)
  t.equal(intake['http.refused.VEHICLE_NOT_FOUND'], 1)
})

t.test('loading: one vehicle per parcel, capacity, codes; GET /fleet', async (t) => {
  await vehicle('KHH-01', 2)
  await vehicle('KHH-02', 5)
  const [a, b, c] = [await order(), await order(), await order()]
  const at = new Date(minutesAgo(5)).toISOString()
  t.equal((await post('/vehicles/KHH-01/load', { snos: [a, b], location_id: 1, occurred_at: at })).statusCode, 200)
  const again = await post('/vehicles/KHH-01/load', { snos: [a, b], location_id: 1, occurred_at: at })
  t.same([again.statusCode, again.body.changed, again.body.unchanged], [200, [], [a, b]], 'a resent load changes nothing')
  const full = await post('/vehicles/KHH-01/load', { snos: [c], location_id: 1, occurred_at: at })
  t.same([full.statusCode, full.body.code], [409, 'VEHICLE_FULL'])
  const taken = await post('/vehicles/KHH-02/load', { snos: [a, c], location_id: 1, occurred_at: at })
  t.same([taken.statusCode, taken.body.code], [409, 'PARCEL_ON_OTHER_VEHICLE'])
  t.same([(await post('/vehicles/KHH-02/load', { snos: [999999], location_id: 1, occurred_at: at })).body.code], ['ORDER_NOT_FOUND'])
  t.same([(await post('/vehicles/KHH-02/load', { snos: [c], location_id: 999, occurred_at: at })).statusCode], [422])
  t.same([(await post('/vehicles/NOPE/load', { snos: [c], location_id: 1, occurred_at: at })).statusCode], [404])
  t.same([(await post('/vehicles/KHH-02/load', { snos: [c], location_id: 1 })).body.code], ['LOAD_INVALID'])
  const off = await post('/vehicles/KHH-01/unload', { snos: [a, c], location_id: 1, occurred_at: at })
  t.same([off.statusCode, off.body.changed, off.body.unchanged], [200, [a], [c]])
  t.equal((await post('/vehicles/KHH-02/load', { snos: [a, c], location_id: 1, occurred_at: at })).statusCode, 200, 'unloaded: free to go on another')

  await post('/vehicles/KHH-02/positions', { lat: hubs.get(1)!.lat, lng: hubs.get(1)!.lng, ts: Date.now() - 120_000, speed: 0 })
  await post('/vehicles/KHH-02/positions', { lat: hubs.get(1)!.lat, lng: hubs.get(1)!.lng, ts: Date.now() - 30_000, speed: 0 })
  const fleet = (await app.inject('/fleet')).json()
  const k2 = fleet.vehicles.find((v: { id: string }) => v.id === 'KHH-02')
  t.equal(k2.status, 'at_hub')
  t.same(k2.hub, { location_id: 1, title: k2.hub.title, relation: 'current' })
  t.equal(k2.parcels_on_board, 2)
  t.equal(fleet.vehicles.find((v: { id: string }) => v.id === 'KHH-01').status, 'offline', 'never reported')
  const detail = (await app.inject(`/fleet/KHH-02?since=${Date.now() - 600_000}`)).json()
  t.same(detail.manifest.map((m: { sno: number }) => m.sno), [a, c])
  t.equal(detail.track.points.length, 2)
  t.equal((await app.inject('/fleet/NOPE')).statusCode, 404)
  t.equal((await post('/vehicles', { id: 'KHH-02', name: 'other', capacity: 5, home_location_id: 1 })).statusCode, 409)
  t.equal((await post('/vehicles', { id: 'bad id', name: 'x', capacity: 5, home_location_id: 1 })).statusCode, 400)
})
