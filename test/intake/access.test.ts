import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loadConfig } from '../../src/config.js'
import { isLoopback } from '../../src/http/auth.js'

const ADMIN = 'admin-token-0123456789abcdef'
const CARRIER = 'carrier-token-0123456789abcdef'
const DEVICE = 'device-token-0123456789abcdef'

const order = { recipient: { name: '李大同', address: '澎湖縣馬公市中正路200號', phone: '096678901' }, sender_location_id: 1, receiver_location_id: 3 }
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

t.test('INGEST_TOKENS is checked at start-up; no message shows a token', async (t) => {
  t.same(loadConfig({}).ingestTokens, [])
  t.same(loadConfig({ INGEST_TOKENS: ` ${CARRIER} , ${DEVICE},${CARRIER}` }).ingestTokens, [CARRIER, DEVICE], 'trimmed, duplicates once')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ INGEST_TOKENS: 'short' }, /INGEST_TOKENS must be comma-separated tokens of at least 16 .*entry 1 of 1/],
    [{ INGEST_TOKENS: `${CARRIER},,${DEVICE}` }, /INGEST_TOKENS .*entry 2 of 3/],
    [{ INGEST_TOKENS: `${CARRIER},has a space in it 0123456789` }, /INGEST_TOKENS .*entry 2 of 2/],
    [{ INGEST_TOKENS: CARRIER, ADMIN_TOKEN: CARRIER }, /INGEST_TOKENS must not contain ADMIN_TOKEN/]
  ]
  for (const [env, message] of cases) {
    let text = ''
    t.throws(() => { try { loadConfig(env) } catch (err) { text = (err as Error).message; throw err } }, message, JSON.stringify(Object.keys(env)))
    t.notMatch(text, /token-0123|has a space/, 'the token is not in the message')
  }
})

t.test('loopback, as the API sees the client', async (t) => {
  for (const ip of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.2']) t.ok(isLoopback(ip), ip)
  for (const ip of [undefined, '', '10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', '127.0.0.1.example', 'fe80::1']) t.notOk(isLoopback(ip), String(ip))
})

t.test('with tokens configured', async (t) => {
  const { app } = await buildTestApp(t, 'intake_access_tokens', { ADMIN_TOKEN: ADMIN, INGEST_TOKENS: `${CARRIER},${DEVICE}` })
  const events = async (sno: number, headers: Record<string, string>): Promise<number> => (await app.inject({
    method: 'POST',
    url: '/events',
    headers,
    payload: { events: [{ event_id: `e-${Math.random()}`, sno, status: 'Package Received', location_id: 1, occurred_at: new Date().toISOString() }] }
  })).statusCode

  t.test('no token or an unknown one: 401 with WWW-Authenticate, checked before the body is read', async (t) => {
    for (const url of ['/orders', '/events']) {
      const none = await app.inject({ method: 'POST', url, payload: order })
      t.equal(none.statusCode, 401, `${url} without a token`)
      t.equal(none.json().code, 'UNAUTHORIZED')
      t.equal(none.headers['www-authenticate'], 'Bearer')
      for (const authorization of ['Bearer nope', `Bearer ${CARRIER}x`, `Basic ${Buffer.from(`u:${CARRIER}`).toString('base64')}`, CARRIER]) {
        const res = await app.inject({ method: 'POST', url, payload: order, headers: { authorization } })
        t.equal(res.statusCode, 401, `${url} with ${authorization.slice(0, 12)}…`)
        t.match(res.headers['www-authenticate'], /^Bearer/)
      }
      const garbage = await app.inject({ method: 'POST', url, payload: '{not json', headers: { 'content-type': 'application/json' } })
      t.equal(garbage.statusCode, 401, 'a stranger learns nothing about bodies')
    }
    const fromLoopback = await app.inject({ method: 'POST', url: '/orders', payload: order, remoteAddress: '127.0.0.1' })
    t.equal(fromLoopback.statusCode, 401, 'loopback is no pass once tokens exist')
  })

  t.test('an ingest token creates orders and events; both ingest tokens work', async (t) => {
    for (const token of [CARRIER, DEVICE]) {
      const created = await app.inject({ method: 'POST', url: '/orders', payload: order, headers: bearer(token) })
      t.equal(created.statusCode, 201)
      t.equal(await events(created.json().sno, bearer(token)), 200)
    }
    const lower = await app.inject({ method: 'POST', url: '/orders', payload: order, headers: { authorization: `bearer   ${CARRIER}` } })
    t.equal(lower.statusCode, 201, 'the scheme is case-insensitive')
  })

  t.test('an ingest token is 403 on /fake and /reports; the admin token may do everything', async (t) => {
    for (const url of ['/fake?num=1', '/reports', '/reports/2026-11-22/0800-summary.json']) {
      const res = await app.inject({ url, headers: bearer(CARRIER) })
      t.equal(res.statusCode, 403, url)
      t.equal(res.json().code, 'FORBIDDEN')
      t.notOk(res.headers.location)
    }
    t.equal((await app.inject({ url: '/fake?num=1', headers: bearer(ADMIN) })).statusCode, 200)
    const created = await app.inject({ method: 'POST', url: '/orders', payload: order, headers: bearer(ADMIN) })
    t.equal(created.statusCode, 201)
    t.equal(await events(created.json().sno, bearer(ADMIN)), 200)
    t.equal((await app.inject(`/query?sno=${created.json().sno}`)).statusCode, 200, 'reading stays open')
  })

  t.test('idempotency keys are per caller: the same key from two tokens is two requests', async (t) => {
    const headers = (token: string): Record<string, string> => ({ ...bearer(token), 'idempotency-key': 'shared-key' })
    const a = await app.inject({ method: 'POST', url: '/orders', payload: order, headers: headers(CARRIER) })
    const b = await app.inject({ method: 'POST', url: '/orders', payload: { ...order, receiver_location_id: 4 }, headers: headers(DEVICE) })
    t.equal(a.statusCode, 201)
    t.equal(b.statusCode, 201, 'not a reuse of the other caller\'s key')
    t.not(a.json().sno, b.json().sno)
    const again = await app.inject({ method: 'POST', url: '/orders', payload: order, headers: headers(CARRIER) })
    t.equal(again.body, a.body)
  })
})

t.test('with no token configured: loopback only', async (t) => {
  const { app } = await buildTestApp(t, 'intake_access_open', { TRUST_PROXY: '127.0.0.1,::1' })
  const writes: Array<{ method: 'GET' | 'POST', url: string, payload?: Record<string, unknown> }> = [
    { method: 'POST', url: '/orders', payload: order },
    { method: 'POST', url: '/events', payload: { events: [{ event_id: 'x', sno: 1, status: 'Created', location_id: 1, occurred_at: new Date().toISOString() }] } },
    { method: 'GET', url: '/fake?num=1' },
    { method: 'GET', url: '/reports' }
  ]

  t.test('a remote client gets 403 TOKEN_NOT_CONFIGURED', async (t) => {
    const remotes: Array<[string, Record<string, string>, string]> = [
      ['10.0.0.5', {}, 'directly'],
      ['127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, 'through the local proxy'],
      ['::1', { 'x-forwarded-for': '127.0.0.1, 198.51.100.7' }, 'the proxy names the real client last'],
      ['10.0.0.5', { 'x-forwarded-for': '127.0.0.1' }, 'an untrusted peer cannot claim loopback']
    ]
    for (const [remoteAddress, headers, how] of remotes) {
      for (const request of writes) {
        const res = await app.inject({ ...request, remoteAddress, headers })
        t.equal(res.statusCode, 403, `${request.url} ${how}`)
        t.equal(res.json().code, 'TOKEN_NOT_CONFIGURED')
      }
    }
    t.equal((await app.inject({ url: '/query?sno=1', remoteAddress: '10.0.0.5' })).statusCode, 404, 'reading is open to all')
  })

  t.test('loopback clients are let through', async (t) => {
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const created = await app.inject({ method: 'POST', url: '/orders', payload: order, remoteAddress })
      t.equal(created.statusCode, 201, `/orders from ${remoteAddress}`)
    }
    const proxied = await app.inject({ method: 'POST', url: '/orders', payload: order, remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '127.0.0.1' } })
    t.equal(proxied.statusCode, 201, 'a local client through the local proxy')
    t.equal((await app.inject({ url: '/fake?num=1' })).statusCode, 200, '/fake from loopback')
    const withToken = await app.inject({ method: 'POST', url: '/orders', payload: order, headers: bearer('anything-at-all-0123456789') })
    t.equal(withToken.statusCode, 201, 'a token sent to a server with none configured is ignored on loopback')
  })
})
