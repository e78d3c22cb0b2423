import t from 'tap'
import { consumerFor, ingestSetup, makeOrders, publish, until } from './helpers.js'

/** vehicle.load / vehicle.unload over the queue go through the fleet's loading rules. */
const ctx = await ingestSetup(t, 'vehicles')
const fixture = await makeOrders(t, ctx.db, 5)
const [first, second] = fixture.snos
await ctx.db.insertInto('vehicles').values({ id: 'Q-TPE-01', name: '臺北一號', capacity: 1, home_location_id: 3 }).execute()
const onBoard = async (): Promise<number[]> => (await ctx.db.selectFrom('vehicle_parcels').select('sno').where('vehicle_id', '=', 'Q-TPE-01').execute()).map((r) => Number(r.sno))
const at = new Date().toISOString()

t.test('a load puts parcels on board, a full vehicle refuses more (dead-lettered with the reason), an unload takes them off', async (t) => {
  const consumer = consumerFor(t, ctx)
  await consumer.start()
  await publish(ctx.queue, [{ type: 'vehicle.load', vehicle_id: 'Q-TPE-01', snos: [first], location_id: 3, occurred_at: at }])
  t.ok(await until(async () => (await onBoard()).includes(first), 30_000), 'on board')
  await publish(ctx.queue, [{ type: 'vehicle.load', vehicle_id: 'Q-TPE-01', snos: [second], location_id: 3, occurred_at: at }])
  t.ok(await until(() => consumer.counters.deadLettered.get('VEHICLE_FULL') === 1, 30_000), 'capacity 1: the second parcel is refused and dead-lettered as VEHICLE_FULL')
  await publish(ctx.queue, [{ type: 'vehicle.unload', vehicle_id: 'Q-TPE-01', snos: [first], location_id: 4, occurred_at: at }])
  t.ok(await until(async () => (await onBoard()).length === 0, 30_000), 'unloaded')
})
