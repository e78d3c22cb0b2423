import t from 'tap'
import { buildApp } from '../../src/app.js'
import { buildTestApp, eventually } from '../helpers/app.js'
import { testConfig } from '../helpers/config.js'
import { freePort } from '../helpers/redis.js'
import { insertKnownOrder } from '../helpers/orders.js'

const { app, database } = await buildTestApp(t, 'http_limits', { RATE_LIMIT_PER_MINUTE: '30', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '5' })
const order = await insertKnownOrder(database.db)
// Each case its own client address (through the trusted proxy: app.inject comes from 127.0.0.1).
const from = async (ip: string, url: string) => await app.inject({ url, headers: { 'x-forwarded-for': ip } })

t.test('RATE_LIMIT_PER_MINUTE per client, across routes, with a JSON 429', async (t) => {
  const statuses: number[] = []
  for (let i = 0; i < 32; i++) statuses.push((await from('198.51.100.1', `/query?sno=${order.sno}`)).statusCode)
  t.same(statuses.slice(0, 30), Array(30).fill(200))
  const limited = await from('198.51.100.1', `/query?sno=${order.sno}`)
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED' })
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After')
  t.equal(limited.headers['x-ratelimit-limit'], '30', 'rate headers on the refusal')
  t.equal((await from('198.51.100.1', '/nope')).statusCode, 429, 'unknown routes count too')
  t.equal((await from('198.51.100.2', `/query?sno=${order.sno}`)).statusCode, 200, 'another client is not affected')
  t.equal((await from('198.51.100.1', '/health')).statusCode, 200, '/health is not limited')
})

t.test('unknown snos have a much smaller budget; once over it, every lookup is refused before it is made', async (t) => {
  const ip = '198.51.100.3'
  const statuses: number[] = []
  for (let sno = 900_001; sno <= 900_007; sno++) statuses.push((await from(ip, `/query?sno=${sno}`)).statusCode)
  t.same(statuses, [404, 404, 404, 404, 404, 429, 429], 'the 6th unknown sno in a minute is refused')
  const refused = await from(ip, '/query?sno=900100')
  t.equal(refused.json().code, 'TOO_MANY_NOT_FOUND')
  t.ok(Number(refused.headers['retry-after']) > 0)
  const real = await from(ip, `/query?sno=${order.sno}`)
  t.equal(real.statusCode, 429, 'an existing order is refused alike: the 429 does not tell real snos apart')
  t.equal(real.json().code, 'TOO_MANY_NOT_FOUND')
  t.equal((await from('198.51.100.33', `/query?sno=${order.sno}`)).statusCode, 200, 'another client is not affected')
})

t.test('X-Forwarded-For is believed only from the trusted proxy', async (t) => {
  // From an untrusted address, the header is ignored: both requests count for 203.0.113.9.
  const outsider = async (xff: string): Promise<number> => (await app.inject({ url: '/query?sno=900500', remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': xff } })).statusCode
  const seen: number[] = []
  for (let i = 0; i < 6; i++) seen.push(await outsider(`192.0.2.${i}`))
  t.same(seen, [404, 404, 404, 404, 404, 429], 'rotating X-Forwarded-For does not escape the limit')
})

t.test('the limit holds across API processes (counts meet in Redis)', async (t) => {
  const config = testConfig('http_limits', { RATE_LIMIT_PER_MINUTE: '30' })
  const other = await buildApp(config)
  t.teardown(async () => await other.close())
  const ip = '198.51.100.40'
  // Counts are per clock minute: start with most of one left, so that the wait below stays in it.
  const left = 60_000 - Date.now() % 60_000
  if (left < 40_000) await new Promise((resolve) => setTimeout(resolve, left + 50))
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) statuses.push((await from(ip, `/query?sno=${order.sno}`)).statusCode)
  const viaOther = async (): Promise<number> => (await other.inject({ url: `/query?sno=${order.sno}`, headers: { 'x-forwarded-for': ip } })).statusCode
  // A process learns the others' counts when it first sees a client in a window and whenever it
  // reports new hits of that client: so the first process's 20 must be in Redis before the other
  // sees its first request (with one request, the other reports once and may do so before them).
  t.ok(await eventually(() => app.requestCounts.reported(ip), 30_000), 'the first process has reported its 20')
  // The other process's first request for this client; then wait (rather than for a fixed time)
  // until its count holds the first process's 20, learnt from Redis by that request or a flush.
  statuses.push(await viaOther())
  t.ok(await eventually(() => other.requestCounts.peek(ip).current >= 21, 30_000), 'the other process knows the 20 counted by the first')
  for (let i = 0; i < 19; i++) statuses.push(await viaOther())
  const allowed = statuses.filter((s) => s === 200).length
  t.equal(allowed, 30, `${allowed} allowed in all: 20 by one process, the rest of the 30 by the other`)
  t.same(statuses.slice(-8), Array(8).fill(429), 'the other process refuses the rest')
})

t.test('Redis down: nobody is refused because of it; each process keeps limiting on its own', async (t) => {
  const config = testConfig('http_limits', { RATE_LIMIT_PER_MINUTE: '30', REDIS_URL: `redis://127.0.0.1:${await freePort()}/0` })
  const offline = await buildApp(config)
  t.teardown(async () => await offline.close())
  const statuses: number[] = []
  for (let i = 0; i < 31; i++) statuses.push((await offline.inject(`/query?sno=${order.sno}`)).statusCode)
  t.same(statuses.slice(0, 30), Array(30).fill(200), 'requests within the limit are served (fail open)')
  t.equal(statuses[30], 429, 'an abusive client is still held back by this process')
})

t.test('security headers, URL and method limits', async (t) => {
  const res = await from('198.51.100.20', `/query?sno=${order.sno}`)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'")
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.equal(res.headers['cross-origin-resource-policy'], 'same-site')
  t.notOk(res.headers['x-powered-by'])
  const missing = await from('198.51.100.20', '/nope')
  t.equal(missing.headers['x-content-type-options'], 'nosniff', 'on errors too')

  const long = await from('198.51.100.21', `/query?sno=1&pad=${'x'.repeat(3000)}`)
  t.equal(long.statusCode, 400)
  t.equal(long.json().code, 'URL_TOO_LONG')

  const post = await app.inject({ method: 'PUT', url: '/query?sno=1', headers: { 'x-forwarded-for': '198.51.100.22' } })
  t.equal(post.statusCode, 405)
  t.equal(post.json().code, 'METHOD_NOT_ALLOWED')
  t.match(post.headers.allow, /GET.*POST/)
  const body = await app.inject({ method: 'POST', url: '/fake', payload: 'x'.repeat(20_000), headers: { 'content-type': 'text/plain', 'x-forwarded-for': '198.51.100.23' } })
  t.equal(body.statusCode, 405, 'a body is never read: the method is what is wrong')
})

t.test('IPv6 clients are limited by /64: rotating addresses inside it does not help', async (t) => {
  const { clientKey } = await import('../../src/http/rate-limit.js')
  t.equal(clientKey('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  t.equal(clientKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64')
  t.equal(clientKey('::1'), '0:0:0:0::/64')
  t.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7')
  t.equal(clientKey('192.0.2.7'), '192.0.2.7')
  const statuses: number[] = []
  for (let i = 0; i < 32; i++) statuses.push((await from(`2001:db8:aa:bb::${(i + 1).toString(16)}`, `/query?sno=${order.sno}`)).statusCode)
  t.same(statuses.slice(30), [429, 429], '32 requests from 32 addresses of one /64: the last two refused')
})
