/**
 * Fleet intake benchmark (not part of npm test): positions per second through MQTT with
 * geofencing for 1,000 vehicles, next to bare subscribers that only count, in the same run, and
 * the delay from publishing the fix that completes an arrival to /query showing it.
 *
 *   npx tsx scripts/bench/fleet.ts [--messages 40000] [--vehicles 1000] [--probes 40]
 *
 * Uses its own database (logistics_bench_fleet), Redis prefix and topics on MQTT_URL.
 */
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'
import { loadConfig } from '../../src/config.js'
import { buildApp } from '../../src/app.js'
import { createLogger } from '../../src/logger.js'
import { createDatabase } from '../../src/infra/db.js'
import { dropDatabase, ensureDatabase, migrateToLatest } from '../../src/db/migrator.js'
import { listHubs, seedHubs } from '../../src/hubs/hubs.js'
import { HubDirectory } from '../../src/hubs/directory.js'
import { FleetProcessor } from '../../src/fleet/processor.js'
import { FleetIntake } from '../../src/fleet/intake.js'
import { MqttSubscriber } from '../../src/fleet/mqtt-subscriber.js'
import { seedVehicles } from '../../src/fleet/vehicles.js'
import { offsetM } from '../../src/fleet/geo.js'
import { parseFix } from '../../src/fleet/fix.js'

const { values } = parseArgs({ options: { messages: { type: 'string', default: '40000' }, vehicles: { type: 'string', default: '1000' }, probes: { type: 'string', default: '40' } } })
const MESSAGES = Number(values.messages)
const VEHICLES = Number(values.vehicles)
const PROBES = Number(values.probes)
const WINDOW = 1500 // published and not yet handled, at most (Mosquitto queues 1000 beyond the in-flight ones)

const prefix = `bench/fleet${process.pid}`
const config = loadConfig({
  ...process.env,
  NODE_ENV: 'test',
  LOG_LEVEL: 'warn',
  DATABASE_URL: 'mysql://root@127.0.0.1:3306/logistics_bench_fleet',
  REDIS_KEY_PREFIX: `bench-fleet${process.pid}:`,
  MQTT_TOPIC_PREFIX: prefix,
  MAX_EVENT_LOOP_DELAY_MS: '0',
  MAX_HEAP_USED_MB: '0',
  RATE_LIMIT_PER_MINUTE: '0',
  PORT: '0'
})
const logger = createLogger('warn', 'bench')
await dropDatabase(config.db)
await ensureDatabase(config.db)
const database = createDatabase({ ...config.db, queryTimeoutMs: 0, poolSize: 4 })
await migrateToLatest(database.db)
await seedHubs(database.db)
const hubList = await listHubs(database.db)
await seedVehicles(database.db, hubList, VEHICLES)
const vehicleIds = (await database.db.selectFrom('vehicles').select('id').orderBy('id').execute()).map((v) => v.id)
const app = await buildApp(config)
await app.ready()

const publisher = await mqtt.connectAsync(config.fleet.mqttUrl, { clientId: `bench-pub-${process.pid}`, clean: true })
const hubs = hubList.map((h) => ({ lat: Number(h.lat), lng: Number(h.lng) }))
const t0 = Date.now() - 3_600_000

/** The i-th fix of the load: vehicles round-robin, each driving 1 km from a hub (no geofence event). */
function loadFix (i: number): { topic: string, payload: string } {
  const v = i % vehicleIds.length
  const round = Math.floor(i / vehicleIds.length)
  const hub = hubs[v % hubs.length]
  const p = offsetM(hub.lat, hub.lng, 1000 + (round % 50) * 10, (v * 37) % 360)
  return { topic: `${prefix}/${vehicleIds[v]}/position`, payload: JSON.stringify({ lat: p.lat, lng: p.lng, ts: t0 + round * 1000 + (v % 1000), speed: 40, accuracy: 8 }) }
}

/** Publishes `count` fixes, keeping at most WINDOW unhandled; returns fixes/s as handled. */
async function drive (name: string, handled: () => number, count: number, offset: number): Promise<number> {
  const start = performance.now()
  const base = handled()
  let sent = 0
  while (sent < count) {
    const burst: Array<Promise<unknown>> = []
    while (sent < count && sent - (handled() - base) < WINDOW && burst.length < 200) {
      const { topic, payload } = loadFix(offset + sent++)
      burst.push(publisher.publishAsync(topic, payload, { qos: 1 }))
    }
    await Promise.all(burst)
    if (sent - (handled() - base) >= WINDOW) await new Promise((resolve) => setImmediate(resolve))
  }
  while (handled() - base < count) await new Promise((resolve) => setTimeout(resolve, 1))
  const rate = count / ((performance.now() - start) / 1000)
  console.error(`${name}: ${Math.round(rate)} fixes/s`)
  return rate
}

const clientId = (name: string): string => `bench-${name}-${process.pid}`
const cleanup = async (id: string): Promise<void> => { const c = await mqtt.connectAsync(config.fleet.mqttUrl, { clientId: id, clean: true }); await c.endAsync() }
const rows: Array<[string, number]> = []

// 1. Bare subscriber, this project's client: parses nothing, acknowledges at once, counts.
{
  let n = 0
  const sub = new MqttSubscriber({ url: config.fleet.mqttUrl, clientId: clientId('bare'), topics: [`${prefix}/+/position`], receiveMaximum: 2000 })
  sub.on('message', (m) => { m.ack(); n++ })
  await new Promise<void>((resolve) => { sub.once('connect', () => resolve()); sub.start() })
  rows.push(['bare subscriber (src/fleet/mqtt-subscriber.ts), count only', await drive('bare', () => n, MESSAGES, 0)])
  await sub.close()
  await cleanup(clientId('bare'))
}
// 2. Bare mqtt.js subscriber, QoS 1, count only.
{
  let n = 0
  const sub = await mqtt.connectAsync(config.fleet.mqttUrl, { clientId: clientId('mqttjs'), clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600, receiveMaximum: 2000 } })
  sub.on('message', () => { n++ })
  await sub.subscribeAsync(`${prefix}/+/position`, { qos: 1 })
  rows.push(['bare mqtt.js subscriber, count only', await drive('mqtt.js bare', () => n, MESSAGES, 0)])
  await sub.endAsync()
  await cleanup(clientId('mqttjs'))
}
const processor = new FleetProcessor(database.db, new HubDirectory(database.db), { defaultRadiusM: config.fleet.geofenceRadiusM, dwellMs: config.fleet.geofenceDwellS * 1000 },
  async (snos) => await app.tracking.invalidate(snos), logger)
// 3. mqtt.js with the acknowledgement after the commit: one message per transaction.
{
  let n = 0
  const sub = await mqtt.connectAsync(config.fleet.mqttUrl, { clientId: clientId('mqttjs-commit'), clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600, receiveMaximum: 2000 } })
  sub.handleMessage = (packet, callback) => {
    const parsed = parseFix(JSON.parse(packet.payload.toString()))
    const vehicleId = packet.topic.split('/').at(-2) ?? ''
    processor.process(parsed.ok ? [{ vehicleId, fix: parsed.fix }] : []).then(() => { n++; callback() }, callback)
  }
  await sub.subscribeAsync(`${prefix}/+/position`, { qos: 1 })
  rows.push(['mqtt.js, acknowledged after its commit (one fix per transaction)', await drive('mqtt.js commit', () => n, Math.min(MESSAGES, 3000), MESSAGES)])
  await sub.endAsync()
  await cleanup(clientId('mqttjs-commit'))
}
// 4. The fleet intake: batches, geofences against 16 hubs, track, state, acknowledged after commit.
const intake = new FleetIntake(processor, { topicPrefix: prefix, batchMax: config.fleet.batchMax, batchWaitMs: config.fleet.batchWaitMs }, logger)
const sub = new MqttSubscriber({ url: config.fleet.mqttUrl, clientId: clientId('fleet'), topics: [`${prefix}/+/position`], receiveMaximum: Math.min(65_535, config.fleet.batchMax * 2) })
sub.on('message', (m) => intake.handle(m))
await new Promise<void>((resolve) => { sub.once('connect', () => resolve()); sub.start() })
rows.push(['fleet intake: geofences, track, state, acknowledged after commit', await drive('fleet', () => intake.handled, MESSAGES, MESSAGES + 3000)])

// 5. Publish → visible in /query: a probe vehicle with a parcel enters a hub; the second fix
// (60 s of fix time later) completes the dwell; time until /query shows the arrival.
const delays: number[] = []
for (let i = 0; i < PROBES; i++) {
  const vehicle = vehicleIds[i]
  const hubId = hubList[(i + 3) % hubList.length].id
  const hub = hubList.find((h) => h.id === hubId) ?? hubList[0]
  const created = new Date(Date.now() - 7_200_000)
  const r = await database.db.insertInto('recipients').values({ name: '測試', address: '台北市', phone: '0912345678', created_at: created, updated_at: created }).executeTakeFirstOrThrow()
  const o = await database.db.insertInto('orders').values({ recipient_id: Number(r.insertId), status: 'Created', location_id: 1, estimated_delivery: '2030-01-01', created_at: created, last_event_at: created, status_at: created, updated_at: created, sender_location_id: 1, receiver_location_id: 2 }).executeTakeFirstOrThrow()
  const sno = Number(o.insertId)
  await database.db.insertInto('tracking_events').values({ order_sno: sno, status: 'Created', location_id: 1, occurred_at: created, event_id: null, vehicle_id: null, created_at: created }).execute()
  await database.db.insertInto('vehicle_parcels').values({ sno, vehicle_id: vehicle, location_id: 1, loaded_at: created }).execute()
  await app.inject(`/query?sno=${sno}`) // cached
  const newest = (await database.db.selectFrom('vehicles').select('fix_at').where('id', '=', vehicle).executeTakeFirstOrThrow()).fix_at?.getTime() ?? 0
  const ts = Math.max(newest + 1000, Date.now() - 1_800_000)
  const topic = `${prefix}/${vehicle}/position`
  await publisher.publishAsync(topic, JSON.stringify({ lat: Number(hub.lat), lng: Number(hub.lng), ts, accuracy: 5, speed: 0 }), { qos: 1 })
  const started = performance.now()
  await publisher.publishAsync(topic, JSON.stringify({ lat: Number(hub.lat), lng: Number(hub.lng), ts: ts + config.fleet.geofenceDwellS * 1000, accuracy: 5, speed: 0 }), { qos: 1 })
  for (;;) {
    const body = (await app.inject(`/query?sno=${sno}`)).json()
    if (body.tracking_status === 'In Transit' || body.tracking_status === 'Out for Delivery') break
    if (performance.now() - started > 10_000) {
      const v = await database.db.selectFrom('vehicles').selectAll().where('id', '=', vehicle).executeTakeFirst()
      const states = await database.db.selectFrom('geofence_states').selectAll().where('vehicle_id', '=', vehicle).execute()
      throw new Error(`probe ${i}: no arrival in /query after 10 s: ${JSON.stringify({ v, states, hubId, ts })}`)
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  delays.push(performance.now() - started)
}
delays.sort((a, b) => a - b)
const pct = (p: number): number => delays[Math.min(delays.length - 1, Math.ceil(p * delays.length) - 1)]

const bare = rows[0][1]
console.log(`\n${VEHICLES} vehicles, ${MESSAGES} fixes per run, QoS 1, at most ${WINDOW} unhandled; FLEET_BATCH_MAX=${config.fleet.batchMax}, FLEET_BATCH_WAIT_MS=${config.fleet.batchWaitMs}\n`)
console.log('| subscriber | fixes/s | vs bare |')
console.log('|---|---:|---:|')
for (const [name, rate] of rows) console.log(`| ${name} | ${Math.round(rate)} | ${(rate / bare).toFixed(2)} |`)
console.log(`\npublish → visible in /query (arrival of a loaded parcel, ${delays.length} probes): p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms, max ${delays[delays.length - 1].toFixed(1)} ms`)

await intake.stop()
await sub.close()
await cleanup(clientId('fleet'))
await publisher.endAsync()
await app.close()
await database.close()
await dropDatabase(config.db)
process.exit(0)
