import t from 'tap'
import { createLogger } from '../../src/logger.js'
import { createRedis, RedisGuard } from '../../src/infra/redis.js'
import { SharedCounter } from '../../src/http/rate-limit.js'
import { testConfig } from '../helpers/config.js'
import { clearKeys } from '../helpers/redis.js'

const config = testConfig('http_shared_counter')
await clearKeys(t, config)
const logger = createLogger('silent')

async function counter (name: string, maxClients = 200_000): Promise<SharedCounter> {
  const redis = createRedis(config.redis, logger, 'counter-test')
  const guard = new RedisGuard(redis, logger)
  await guard.waitUntilReady(2000)
  const c = new SharedCounter(guard, name, 60_000, 60_000, maxClients)
  t.teardown(() => { c.close(); redis.disconnect() })
  return c
}

t.test('a flood of new addresses costs nobody else a refusal, and memory stays bounded', async (t) => {
  const c = await counter('flood', 1000)
  const now = Date.now()
  for (let i = 0; i < 5000; i++) c.hit(`10.0.${i >> 8}.${i & 255}`, now)
  t.ok(c.size <= 1000, `at most 1000 clients tracked (${c.size})`)
  const innocent = c.hit('198.51.100.7', now)
  t.equal(innocent.current, 1, 'a newcomer is counted on its own, not with the crowd')
  for (let i = 0; i < 100; i++) c.hit('203.0.113.66', now)
  for (let i = 0; i < 3000; i++) c.hit(`10.1.${i >> 8}.${i & 255}`, now)
  t.equal(c.peek('203.0.113.66', now).current, 100, 'a heavy client is remembered while the light ones are forgotten')
})

t.test('a report that Redis applied but whose reply was lost is not counted twice', async (t) => {
  const a = await counter('resend')
  const b = await counter('resend')
  const now = Date.now()
  for (let i = 0; i < 5; i++) a.hit('198.51.100.9', now)
  // The first flush reaches Redis, but its reply is lost (as with a timeout after Redis applied it).
  const guard = (a as unknown as { guard: RedisGuard }).guard
  const pipeline = guard.redis.pipeline.bind(guard.redis)
  let lose = true
  guard.redis.pipeline = ((...args: Parameters<typeof pipeline>) => {
    const p = pipeline(...args)
    const exec = p.exec.bind(p)
    p.exec = (async () => {
      const results = await exec()
      if (lose) { lose = false; throw new Error('Command timed out') }
      return results
    }) as typeof p.exec
    return p
  }) as typeof guard.redis.pipeline
  await a.flush(now)
  t.notOk(lose, 'the reply was lost once')
  await a.flush(now) // sent again
  b.hit('198.51.100.9', now)
  await b.flush(now)
  t.equal(b.peek('198.51.100.9', now).current, 6, 'five from one process and one from the other: not eleven')
})
