import { parseArgs } from 'node:util'
import { seedHubs } from '../src/hubs/hubs.js'
import { bulkLoadOrders } from '../src/orders/bulk.js'
import { listHubs } from '../src/hubs/hubs.js'
import { seedVehicles } from '../src/fleet/vehicles.js'
import { cliConfig, progressBar, run, withDatabase } from './lib/cli.js'

/**
 * npm run db:seed                      loads the 16 hubs (idempotent, ids kept)
 * npm run db:seed -- --orders 1000000  also bulk-loads demo orders with their timelines
 * npm run db:seed -- --vehicles 32      also registers a demo fleet spread over the hubs (idempotent)
 */
run(async () => {
  const { values } = parseArgs({
    options: {
      orders: { type: 'string', default: '0' },
      batch: { type: 'string', default: '2000' },
      seed: { type: 'string' },
      vehicles: { type: 'string', default: '0' }
    }
  })
  const count = Number(values.orders)
  const batchSize = Number(values.batch)
  if (!Number.isInteger(count) || count < 0) throw new Error('--orders must be a whole number')
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 20_000) throw new Error('--batch must be from 1 to 20000')
  const vehicles = Number(values.vehicles)
  if (!Number.isInteger(vehicles) || vehicles < 0 || vehicles > 100_000) throw new Error('--vehicles must be a whole number up to 100000')
  const config = cliConfig()

  await withDatabase(config, async ({ db }) => {
    const hubs = await seedHubs(db)
    console.log(`hubs: ${hubs} loaded`)
    if (vehicles > 0) {
      const fleet = await seedVehicles(db, await listHubs(db), vehicles)
      console.log(`vehicles: ${fleet.created} registered, ${fleet.total} in the fleet`)
    }
    if (count === 0) return
    const started = performance.now()
    const result = await bulkLoadOrders(db, {
      count,
      batchSize,
      seed: values.seed === undefined ? config.fakeSeed : Number(values.seed),
      onProgress: progressBar(count, 'orders')
    })
    const seconds = (performance.now() - started) / 1000
    console.log(`orders: ${result.orders} with ${result.events} events in ${seconds.toFixed(1)} s (${Math.round(result.orders / seconds)} orders/s)`)
  })
})
