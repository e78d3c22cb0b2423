import t from 'tap'
import { buildApp } from '../../src/app.js'
import { buildTestApp } from '../helpers/app.js'
import { testConfig } from '../helpers/config.js'
import { freePort } from '../helpers/redis.js'

const { app } = await buildTestApp(t, 'http_health')

t.test('GET / answers OK, as the original did', async (t) => {
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'OK')
  t.match(res.headers['content-type'], /^text\/plain/)
})

t.test('GET /health reports MySQL and Redis', async (t) => {
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok', mysql: 'up', redis: 'up' })
})

t.test('503 when MySQL is down; the request does not hang', async (t) => {
  const port = await freePort()
  const config = testConfig('http_health', { DATABASE_URL: `mysql://root@127.0.0.1:${port}/nothing` })
  const down = await buildApp(config)
  t.teardown(async () => await down.close())
  const res = await down.inject('/health')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'down', mysql: 'down', redis: 'up' })
  const query = await down.inject('/query?sno=1')
  t.equal(query.statusCode, 503)
  t.equal(query.json().code, 'DATABASE_UNAVAILABLE')
  t.equal(query.headers['retry-after'], '5')
})

t.test('unknown routes are JSON 404s with a code', async (t) => {
  const res = await app.inject('/nope?x=1')
  t.equal(res.statusCode, 404)
  t.same(res.json(), { statusCode: 404, error: 'Not Found', message: 'Route GET:/nope not found', code: 'ROUTE_NOT_FOUND' })
})

t.test('the request id from nginx is kept, a malformed one replaced', async (t) => {
  const kept = await app.inject({ url: '/', headers: { 'x-request-id': 'abc-123' } })
  t.equal(kept.headers['x-request-id'], 'abc-123')
  const replaced = await app.inject({ url: '/', headers: { 'x-request-id': 'bad id\twith spaces' } })
  t.match(replaced.headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-z]+$/, 'one of ours: process prefix and counter')
})
