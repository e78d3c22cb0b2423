import t from 'tap'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { testConfig } from '../helpers/config.js'
import { AMQP_URL, consumerFor, drain, ingestSetup, makeEvents, makeOrders, publish, stored, until } from './helpers.js'

/**
 * The consumer's connection to RabbitMQ cut mid-stream (a TCP proxy in front of the broker drops
 * every connection and refuses new ones for 2 s): it reconnects and re-declares by itself, and
 * every event of the 50,000 is stored exactly once.
 */
const ctx = await ingestSetup(t, 'broker_cut')
const fixture = await makeOrders(t, ctx.db, 2000)
const events = makeEvents(fixture, 50_000, 'cut', 6)
const proxy = await TcpProxy.start(t, Number(new URL(AMQP_URL).port || 5672))
const viaProxy = new URL(AMQP_URL)
viaProxy.port = String(proxy.port)
const config = testConfig('ingest_broker_cut', { AMQP_URL: viaProxy.toString(), AMQP_QUEUE: ctx.queue })

t.test('connection cut and restored mid-stream: each of 50,000 events stored once', async (t) => {
  await publish(ctx.queue, events)
  const consumer = consumerFor(t, ctx, config)
  await consumer.start()
  t.ok(consumer.connected, 'connected through the proxy')
  t.ok(await until(async () => (await stored(ctx.db, 'cut')).count >= 15_000, 90_000), 'part of the stream stored')
  await proxy.refuse()
  const atCut = (await stored(ctx.db, 'cut')).count
  t.ok(await until(() => !consumer.connected, 10_000), 'the consumer sees the connection gone')
  await new Promise((resolve) => setTimeout(resolve, 2000)) // the outage itself: the broker is away for 2 s
  await proxy.restore()
  const restored = Date.now()
  t.ok(await until(() => consumer.connected, 20_000), `reconnected by itself in ${Date.now() - restored} ms`)
  t.ok(await until(async () => (await stored(ctx.db, 'cut')).count === events.length, 100_000), 'all stored after the cut')
  const s = await stored(ctx.db, 'cut')
  t.equal(s.count, events.length, 'none lost')
  t.equal(s.doubled, 0, 'none stored twice')
  t.equal(s.changes, events.length, 'one change-log row each')
  t.ok(await until(() => consumer.counters.stored + consumer.counters.duplicates >= events.length, 10_000))
  t.equal(consumer.counters.stored, events.length, 'the consumer counted each as stored once')
  t.ok(consumer.counters.reconnects >= 1, `reconnects: ${consumer.counters.reconnects}`)
  t.equal(consumer.counters.deadLetteredTotal, 0)
  t.same(await drain(ctx.dead), [], 'nothing dead-lettered')
  t.comment(`cut with ${atCut} stored; after it: ${consumer.counters.duplicates} redelivered as duplicates`)
})
