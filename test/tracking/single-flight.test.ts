import t from 'tap'
import { testConfig } from '../helpers/config.js'
import { freshDatabase } from '../helpers/database.js'
import { clearKeys } from '../helpers/redis.js'
import { insertKnownOrder } from '../helpers/orders.js'
import { trackingService } from '../helpers/tracking.js'

const config = testConfig('tracking_single_flight')
const { db } = await freshDatabase(t, config)
await clearKeys(t, config)
const { service, queries } = trackingService(t, config, db)

t.test('200 concurrent misses for one order make one database query', async (t) => {
  const order = await insertKnownOrder(db)
  queries.count = 0
  const bodies = await Promise.all(Array.from({ length: 200 }, async () => await service.lookup(order.sno)))
  t.equal(queries.count, 1, 'one statement reached MySQL')
  t.equal(new Set(bodies).size, 1, 'everyone got the same answer')
  t.match(bodies[0], /李大同/)
})

t.test('misses that come while the read is under way join it instead of reading again', async (t) => {
  const order = await insertKnownOrder(db)
  queries.count = 0
  queries.resultHoldMs = 100
  t.teardown(() => { queries.resultHoldMs = 0 })
  const first = Array.from({ length: 5 }, async () => await service.lookup(order.sno))
  // Later turns, with the first statement sent and its result held back.
  await new Promise((resolve) => setTimeout(resolve, 20))
  const second = Array.from({ length: 5 }, async () => await service.lookup(order.sno))
  const bodies = await Promise.all([...first, ...second])
  t.equal(queries.count, 1, 'one statement for both waves')
  t.equal(new Set(bodies).size, 1)
  t.match(bodies[0], /李大同/)
})

t.test('concurrent lookups of an unknown order also share one query', async (t) => {
  queries.count = 0
  const results = await Promise.all(Array.from({ length: 100 }, async () => await service.lookup(55_555_555)))
  t.equal(queries.count, 1)
  t.ok(results.every((r) => r === null))
})

t.test('different orders asked together share one statement, each with its own answer', async (t) => {
  const a = await insertKnownOrder(db)
  const b = await insertKnownOrder(db, { recipient: { name: '王小明', address: '台北市中正區忠孝東路1號', phone: '0912345678' } })
  queries.count = 0
  const [ra, rb, missing] = await Promise.all([service.lookup(a.sno), service.lookup(b.sno), service.lookup(66_666_666)])
  t.equal(queries.count, 1, 'one statement for the three')
  t.match(ra, /李大同/)
  t.notMatch(ra, /王小明/)
  t.match(rb, /王小明/)
  t.equal(JSON.parse(String(rb)).sno, String(b.sno))
  t.equal(missing, null, 'an unknown sno in the batch is still unknown')
})

t.test('orders asked one after another are read one by one', async (t) => {
  const a = await insertKnownOrder(db)
  queries.count = 0
  await service.lookup(a.sno)
  await service.lookup(a.sno + 1_000_000)
  t.equal(queries.count, 2)
})
