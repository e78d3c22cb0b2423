import t from 'tap'
import { createDatabase } from '../../src/infra/db.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { testConfig } from '../helpers/config.js'
import { consumerFor, drain, ingestSetup, makeEvents, makeOrders, publish, queueDepth, stored, until } from './helpers.js'

/**
 * MySQL unreachable for 10 s mid-stream (the consumer's DATABASE_URL goes through a TCP proxy
 * that drops every connection and refuses new ones): the batch under way is held, unacknowledged;
 * nothing is acknowledged before it is stored, nothing is dead-lettered, nothing counts against
 * the messages, and everything is stored once MySQL is back.
 */
const ctx = await ingestSetup(t, 'mysql_outage')
const fixture = await makeOrders(t, ctx.db, 2000)
const events = makeEvents(fixture, 20_000, 'out', 8)
const proxy = await TcpProxy.start(t, ctx.config.db.port)
const url = new URL(ctx.config.db.url)
url.port = String(proxy.port)
const config = testConfig('ingest_mysql_outage', {
  AMQP_QUEUE: ctx.queue,
  DATABASE_URL: url.toString(),
  DB_CONNECT_TIMEOUT_MS: '500',
  DB_ACQUIRE_TIMEOUT_MS: '1000',
  DB_QUERY_TIMEOUT_MS: '3000',
  DB_POOL_SIZE: '2',
  AMQP_DELIVERY_LIMIT: '2'
})
const viaProxy = createDatabase(config.db)
t.teardown(async () => await viaProxy.close())

t.test('MySQL away for 10 s mid-stream: nothing acknowledged early, nothing dead-lettered, all stored after', async (t) => {
  await publish(ctx.queue, events, { deliveryLimit: 2 })
  const consumer = consumerFor(t, ctx, config, undefined, viaProxy)
  await consumer.start()
  t.ok(await until(async () => (await stored(ctx.db, 'out')).count >= 5000, 90_000), 'part of the stream stored')
  await proxy.refuse()
  const cutAt = Date.now()
  t.ok(await until(() => consumer.counters.databaseWaits > 0, 10_000), 'the consumer is waiting for MySQL')
  // The broker refreshes its queue figures every 5 s: read them once they cover the outage.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 7000 - (Date.now() - cutAt))))
  const during = (await stored(ctx.db, 'out')).count
  const depth = await queueDepth(ctx.queue)
  const acknowledged = events.length - depth.ready - depth.unacked
  t.ok(acknowledged <= during, `acknowledged (${acknowledged}) never more than stored (${during}); ${depth.unacked} held unacknowledged`)
  t.ok(depth.unacked > 0, 'the batch under way is held, not requeued')
  t.equal(consumer.counters.deadLetteredTotal, 0, 'nothing dead-lettered during the outage')
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - cutAt))))
  t.equal((await stored(ctx.db, 'out')).count, during, 'nothing stored while MySQL was away')
  await proxy.restore()
  const back = Date.now()
  t.ok(await until(async () => (await stored(ctx.db, 'out')).count === events.length, 100_000), `all stored ${((Date.now() - back) / 1000).toFixed(1)} s after MySQL came back`)
  const s = await stored(ctx.db, 'out')
  t.equal(s.count, events.length, 'none lost')
  t.equal(s.doubled, 0, 'none stored twice')
  t.equal(s.changes, events.length, 'one change-log row each')
  t.ok(await until(() => consumer.counters.stored + consumer.counters.duplicates >= events.length, 10_000))
  t.equal(consumer.counters.deadLetteredTotal, 0, 'nothing dead-lettered (AMQP_DELIVERY_LIMIT=2 was not spent on the outage)')
  t.same(await drain(ctx.dead), [])
  t.comment(`outage with ${during} stored; waits: ${consumer.counters.databaseWaits}, duplicates after: ${consumer.counters.duplicates}`)
})
