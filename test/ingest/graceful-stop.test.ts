import t from 'tap'
import { drain, IngestProcess, ingestSetup, makeEvents, makeOrders, publish, queueDepth, stored, until } from './helpers.js'

/**
 * SIGTERM mid-stream: the consumer stops taking messages, finishes and acknowledges the batch
 * under way and exits 0. Nothing half done: what is stored is exactly what was acknowledged, and
 * a restart stores the rest with no duplicate at all.
 */
const ctx = await ingestSetup(t, 'graceful_stop')
const fixture = await makeOrders(t, ctx.db, 2000)
const events = makeEvents(fixture, 30_000, 'term', 9)

t.test('SIGTERM mid-stream, restart: nothing lost, nothing stored twice', async (t) => {
  await publish(ctx.queue, events)
  const first = IngestProcess.start(t, ctx.config)
  t.ok(await first.ready(), 'ready')
  t.ok(await until(async () => (await stored(ctx.db, 'term')).count >= 10_000, 90_000), 'part of the stream stored')
  const stopAt = Date.now()
  first.kill('SIGTERM')
  const exit = await first.exited
  t.equal(exit.code, 0, `exited cleanly in ${Date.now() - stopAt} ms`)
  const atStop = (await stored(ctx.db, 'term')).count
  // The broker's queue figures are refreshed every few seconds: wait for them to settle.
  let depth = { ready: -1, unacked: -1 }
  const settled = await until(async () => {
    depth = await queueDepth(ctx.queue)
    return depth.unacked === 0 && depth.ready === events.length - atStop
  }, 20_000)
  t.ok(settled, `stored (${atStop}) is exactly what was acknowledged: the rest (${depth.ready} ready, ${depth.unacked} unacknowledged) is back in the queue`)

  const second = IngestProcess.start(t, ctx.config)
  t.ok(await second.ready(), 'restarted')
  t.ok(await until(async () => (await stored(ctx.db, 'term')).count === events.length, 100_000), 'the rest stored')
  second.kill('SIGTERM')
  t.equal((await second.exited).code, 0)
  const s = await stored(ctx.db, 'term')
  t.equal(s.count, events.length, 'none lost')
  t.equal(s.doubled, 0, 'none stored twice')
  const summary = second.output.join('').split('\n').filter((l) => l.includes('queue intake summary')).pop() ?? ''
  t.match(summary, /"duplicates":0,/, 'the restart met no duplicate: nothing was committed without its acknowledgement')
  t.match(summary, new RegExp(`"stored":${events.length - atStop},`), 'it stored exactly the rest')
  t.same(await drain(ctx.dead), [])
  t.same(first.problems().concat(second.problems()), [], 'no warnings or errors logged')
})
