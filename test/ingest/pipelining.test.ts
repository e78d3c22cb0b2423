import t from 'tap'
import type { EventInput, EventResult } from '../../src/writes/types.js'
import { consumerFor, drain, ingestSetup, makeEvents, makeOrders, publish, stored, until } from './helpers.js'

/**
 * Two batches are written at once, and acknowledged in delivery order: a batch that commits
 * before the one ahead of it waits for it, so a multiple-ack never covers a message that is not
 * yet stored. The first batch's write is held back here (the real writer, called later) until
 * the second batch has committed.
 */
const ctx = await ingestSetup(t, 'pipelining', { AMQP_PREFETCH: '200', AMQP_BATCH_MAX: '50' })
const fixture = await makeOrders(t, ctx.db, 200)
const events = makeEvents(fixture, 100, 'pipe', 5)

t.test('a batch committed first is acknowledged after the batch ahead of it', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let calls = 0
  let secondCommitted = false
  const consumer = consumerFor(t, ctx, ctx.config, (writer) => ({
    applyEvents: async (batch: readonly EventInput[]): Promise<EventResult[]> => {
      const call = ++calls
      if (call === 1) await gate
      const results = await writer.applyEvents(batch)
      if (call === 2) secondCommitted = true
      return results
    }
  }))
  await publish(ctx.queue, events)
  await consumer.start()
  try {
    t.ok(await until(() => secondCommitted, 60_000), 'the second batch committed while the first was held')
    const meanwhile = (await stored(ctx.db, 'pipe')).count
    t.ok(meanwhile > 0 && meanwhile < events.length, `part stored (${meanwhile})`)
    t.equal(consumer.counters.stored, 0, 'and nothing acknowledged: the second batch waits for the first')
    t.equal(calls, 2, 'no third batch while two are in flight')
  } finally {
    release()
  }
  t.ok(await until(() => consumer.counters.stored === events.length, 60_000), 'all acknowledged once the first committed')
  const s = await stored(ctx.db, 'pipe')
  t.equal(s.count, events.length)
  t.equal(s.doubled, 0)
  t.same(await drain(ctx.queue), [], 'nothing left in the queue')
  t.same(await drain(ctx.dead), [])
})
