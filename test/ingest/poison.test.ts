import t from 'tap'
import { CompiledQuery } from 'kysely'
import { consumerFor, drain, ingestSetup, makeEvents, makeOrders, publish, stored, until } from './helpers.js'

/**
 * Poison of every kind goes to `<queue>.dead` at once with its reason in x-reject-reason,
 * while the valid messages around it are stored; omitted types are acknowledged and counted.
 */
const ctx = await ingestSetup(t, 'poison', { EVENTS_TO_OMIT: 'device.heartbeat', AMQP_DELIVERY_LIMIT: '3' })
const fixture = await makeOrders(t, ctx.db, 50)
const { snos } = fixture
const maxSno = snos[snos.length - 1]
const valid = makeEvents(fixture, 200, 'ok')
const good = { type: 'tracking.event', event_id: 'x', sno: snos[0], status: 'In Transit', location_id: fixture.hubs[1], occurred_at: '2026-01-02T08:15:00+08:00' }
const future = new Date(Date.now() + 3_600_000).toISOString()

const poison: Array<[string, string | object, string]> = [
  ['bad JSON', '{"type": "tracking.event", ', 'MESSAGE_NOT_JSON'],
  ['an array', [good], 'MESSAGE_NOT_OBJECT'],
  ['a number', '42', 'MESSAGE_NOT_OBJECT'],
  ['no type', { ...good, type: undefined, event_id: 'p-notype' }, 'TYPE_MISSING'],
  ['unknown type', { ...good, type: 'parcel.teleported', event_id: 'p-unknown' }, 'TYPE_UNKNOWN'],
  ['vehicle.load of an unknown vehicle', { type: 'vehicle.load', vehicle_id: 'TPE-01', snos: [snos[0]], location_id: 3, occurred_at: good.occurred_at }, 'VEHICLE_NOT_FOUND'],
  ['vehicle.unload without snos', { type: 'vehicle.unload', vehicle_id: 'TPE-01', location_id: 3, occurred_at: good.occurred_at }, 'LOAD_INVALID'],
  ['missing event_id', { ...good, event_id: undefined }, 'EVENT_INVALID'],
  ['missing sno', { ...good, event_id: 'p-nosno', sno: undefined }, 'EVENT_INVALID'],
  ['missing location', { ...good, event_id: 'p-noloc', location_id: undefined }, 'EVENT_INVALID'],
  ['bad status', { ...good, event_id: 'p-status', status: 'Lost In Space' }, 'STATUS_INVALID'],
  ['time without offset', { ...good, event_id: 'p-nooffset', occurred_at: '2026-01-02T08:15:00' }, 'TIME_INVALID'],
  ['future time', { ...good, event_id: 'p-future', occurred_at: future }, 'TIME_INVALID'],
  ['unknown order', { ...good, event_id: 'p-order', sno: maxSno + 1000 }, 'ORDER_NOT_FOUND'],
  ['unknown hub', { ...good, event_id: 'p-hub', location_id: 999 }, 'LOCATION_NOT_FOUND']
]

t.test('poison of every kind is dead-lettered with its reason; the valid messages around it are stored', async (t) => {
  const bodies: Array<string | object> = []
  // Poison spread through the stream: each between valid events, so it shares their batches.
  const every = Math.floor(valid.length / poison.length)
  for (const [i, event] of valid.entries()) {
    bodies.push(event)
    if (i % every === 0 && i / every < poison.length) bodies.push(poison[i / every][1])
  }
  bodies.push({ type: 'device.heartbeat', device: 'scanner-7' }, { type: 'device.heartbeat', device: 'scanner-8' })
  await publish(ctx.queue, bodies, { deliveryLimit: 3 })
  const consumer = consumerFor(t, ctx)
  await consumer.start()

  t.ok(await until(async () => (await stored(ctx.db, 'ok')).count === valid.length, 60_000), 'every valid event stored')
  t.ok(await until(() => consumer.counters.deadLetteredTotal === poison.length && consumer.counters.omitted === 2, 30_000), 'every poison message dead-lettered, the omitted ones counted')
  const dead = await drain(ctx.dead)
  t.equal(dead.length, poison.length, `${poison.length} messages in ${ctx.dead}`)
  for (const [name, body, code] of poison) {
    const raw = typeof body === 'string' ? body : JSON.stringify(body)
    const found = dead.find((m) => m.body === raw)
    t.ok(found, `${name}: in the dead-letter queue, body unchanged`)
    const reason = String(found?.headers['x-reject-reason'] ?? '')
    t.match(reason, new RegExp(`^${code}: .+`), `${name}: x-reject-reason "${reason}"`)
  }
  t.equal(consumer.counters.stored, valid.length)
  t.equal(consumer.counters.received, bodies.length)
  t.equal((await stored(ctx.db, 'p')).count, 0, 'nothing of the poison stored')
  t.same(await drain(ctx.queue), [], 'the main queue is empty: everything acknowledged')
})

t.test('a message whose own processing keeps failing is found in its batch and dead-lettered after AMQP_DELIVERY_LIMIT attempts', async (t) => {
  const events = makeEvents(fixture, 100, 'split', 2)
  const culprit = events[37].event_id
  let calls = 0
  let culpritAttempts = 0
  const consumer = consumerFor(t, ctx, ctx.config, (writer) => ({
    applyEvents: async (batch) => {
      calls++
      if (batch.some((e) => e.event_id === culprit)) {
        culpritAttempts += batch.length === 1 ? 1 : 0
        // A statement error that is not "database unavailable" (a bug, a bad row).
        await ctx.db.executeQuery(CompiledQuery.raw('SELECT * FROM no_such_table'))
      }
      return await writer.applyEvents(batch)
    }
  }))
  await publish(ctx.queue, events, { deliveryLimit: 3 })
  await consumer.start()
  t.ok(await until(async () => (await stored(ctx.db, 'split')).count === events.length - 1, 60_000), 'the 99 others stored')
  t.ok(await until(() => consumer.counters.deadLettered.get('PROCESSING_FAILED') === 1, 30_000), 'the culprit dead-lettered')
  t.equal(culpritAttempts, 3, 'after exactly AMQP_DELIVERY_LIMIT (3) attempts on its own')
  const dead = await drain(ctx.dead)
  t.equal(dead.length, 1)
  t.equal(JSON.parse(dead[0].body).event_id, culprit)
  t.match(String(dead[0].headers['x-reject-reason']), /^PROCESSING_FAILED: failed 3 times \(ER_NO_SUCH_TABLE/)
  t.comment(`${calls} write calls to isolate it`)
})
