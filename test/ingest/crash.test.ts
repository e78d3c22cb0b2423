import t from 'tap'
import { drain, IngestProcess, ingestSetup, makeEvents, makeOrders, publish, stored, until } from './helpers.js'

/**
 * The consumer process killed with SIGKILL in the middle of a 50,000-event stream, then started
 * again: every event stored exactly once, none lost (batches committed but not acknowledged come
 * back as duplicates).
 */
const ctx = await ingestSetup(t, 'crash')
const fixture = await makeOrders(t, ctx.db, 2000)
const events = makeEvents(fixture, 50_000, 'kill', 5)

t.test('SIGKILL mid-stream, restart: each of 50,000 events stored once', async (t) => {
  await publish(ctx.queue, events)
  const first = IngestProcess.start(t, ctx.config)
  t.ok(await first.ready(), 'first process ready')
  t.ok(await until(async () => (await stored(ctx.db, 'kill')).count >= 15_000, 90_000), 'part of the stream stored')
  first.kill('SIGKILL')
  const killed = await first.exited
  const atKill = (await stored(ctx.db, 'kill')).count
  t.equal(killed.signal, 'SIGKILL')
  t.comment(`killed with ${atKill} of ${events.length} stored`)

  const second = IngestProcess.start(t, ctx.config)
  t.ok(await second.ready(), 'second process ready')
  t.ok(await until(async () => (await stored(ctx.db, 'kill')).count === events.length, 100_000), 'all stored after the restart')
  const s = await stored(ctx.db, 'kill')
  t.equal(s.count, events.length, 'none lost')
  t.equal(s.doubled, 0, 'none stored twice')
  t.equal(s.changes, events.length, 'one change-log row each')
  second.kill('SIGTERM')
  const stopped = await second.exited
  t.equal(stopped.code, 0, 'the second process stopped cleanly')
  t.same(await drain(ctx.dead), [], 'nothing dead-lettered')
  t.same(await drain(ctx.queue), [], 'nothing left in the queue')
  const summary = second.output.join('').split('\n').filter((l) => l.includes('queue intake summary')).pop() ?? ''
  t.match(summary, /"duplicates":\d+/, 'the summary line counts duplicates')
  t.comment(`restart summary: ${summary.replace(/^.*?"received"/, '"received"').slice(0, 200)}`)
  t.same(first.problems().concat(second.problems()).filter((l) => !l.includes('connection')), [], 'no warnings or errors logged')
})
