import t, { type Test } from 'tap'
import { pino } from 'pino'
import { OverloadGuard } from '../../src/http/overload.js'

/**
 * A stall inside the sampler's own callback, after it has taken its sample (reading the heap is
 * a system call, where a stop or a slow kernel lands): the next sample is due one interval after
 * the last was taken, so the stall shows as lateness instead of moving the due time past it.
 */
const block = (ms: number): void => {
  const until = performance.now() + ms
  while (performance.now() < until) { /* the event loop cannot run */ }
}

/** Whether a request handled right after a stall of `stallMs` inside the next sample's heap read is refused. */
async function refusedAfterStall (t: Test, stallMs: number): Promise<boolean> {
  const guard = new OverloadGuard({ maxEventLoopDelayMs: 1000, maxHeapUsedBytes: 0, sampleIntervalMs: 20 }, pino({ level: 'silent' }))
  const memoryUsage = process.memoryUsage
  // The guard's timers do not hold the process open; this does, until the answer is in.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive); process.memoryUsage = memoryUsage; guard.stop() })
  guard.start()
  await guard.sampled
  return await new Promise<boolean>((resolve) => {
    process.memoryUsage = Object.assign(() => {
      process.memoryUsage = memoryUsage
      block(stallMs)
      // Runs in this turn of the event loop, before any further sample.
      setImmediate(() => { resolve(guard.overloaded()) })
      return memoryUsage()
    }, { rss: memoryUsage.rss })
  })
}

t.test('a stall past the limit between a sample and the next due time is seen', async (t) => {
  t.equal(await refusedAfterStall(t, 1500), true, 'the request held back 1.5 s is refused')
})

t.test('a stall under the limit in the same place refuses nothing', async (t) => {
  t.equal(await refusedAfterStall(t, 100), false, 'the request held back 100 ms is served')
})
