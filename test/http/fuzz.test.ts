import t from 'tap'
import fc from 'fast-check'
import { buildTestApp } from '../helpers/app.js'
import { insertKnownOrder } from '../helpers/orders.js'

/**
 * Thousands of generated requests at every route: whatever comes in, only the statuses a
 * client can act on come back, every error is JSON with a stable code, and nothing internal
 * (a stack trace, SQL, a file path) ever leaks.
 */
const token = 'fuzz-admin-token-0123456789abcdef'
const { app, database } = await buildTestApp(t, 'http_fuzz', { ADMIN_TOKEN: token, RATE_LIMIT_PER_MINUTE: '1000000', RATE_LIMIT_NOT_FOUND_PER_MINUTE: '1000000' })
const order = await insertKnownOrder(database.db)

const ALLOWED = new Set([200, 201, 202, 204, 302, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 503])
const LEAKS = /\bat [\w.<>]+ \(|\.ts:\d+|\.js:\d+|node_modules|SELECT |INSERT |ER_[A-Z_]+|sqlMessage|Error:/

const paths = fc.oneof(
  fc.constantFrom('/', '/health', '/query', '/fake', '/reports', '/reports/2026-11-22/0800-summary.json', '/nope', '/query/', '//query', '/QUERY',
    '/orders', '/events', '/webhooks', '/webhooks/1', '/metrics', '/fleet', '/fleet/TPE-01', '/vehicles', '/vehicles/TPE-01/positions'),
  fc.webPath().map((p) => p.startsWith('/') ? p : `/${p}`),
  fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`)
)
const value = fc.oneof(
  fc.constantFrom('', '0', '1', '-1', String(order.sno), '1.5', '1e3', '9007199254740993', '00042', 'null', '[]', '{}', '%00', '١٢٣', '３'),
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 })
)
const query = fc.array(fc.tuple(fc.constantFrom('sno', 'num', 'limit', 'sno[]', 'x', '__proto__', 'constructor'), value), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'))
const method = fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS')
const headers = fc.record({
  authorization: fc.option(fc.oneof(fc.constant(`Bearer ${token}`), fc.constant('Bearer '), fc.string({ maxLength: 60 }), fc.constant(`bearer ${token}x`)), { nil: undefined }),
  'x-request-id': fc.option(fc.string({ maxLength: 200 }), { nil: undefined }),
  'x-forwarded-for': fc.option(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 40 })), { nil: undefined }),
  accept: fc.option(fc.constantFrom('application/json', 'text/html', '*/*', 'x/y;q=nonsense'), { nil: undefined }),
  'content-type': fc.option(fc.constantFrom('application/json', 'text/plain', 'multipart/form-data', 'garbage'), { nil: undefined })
}, { requiredKeys: [] })
const body = fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 2 })), { nil: undefined })

t.test('every route, any input: a status a client can act on, JSON errors with a code, no internals', async (t) => {
  const seen = new Map<number, number>()
  await fc.assert(fc.asyncProperty(method, paths, query, headers, body, async (m, path, qs, hdrs, payload) => {
    const clean = Object.fromEntries(Object.entries(hdrs).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v).replace(/[^\t\x20-\x7e]/g, '')])) as Record<string, string>
    const res = await app.inject({ method: m as 'GET', url: qs === '' ? path : `${path}?${qs}`, headers: clean, payload: ['GET', 'HEAD'].includes(m) ? undefined : payload })
    seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1)
    if (!ALLOWED.has(res.statusCode)) throw new Error(`${m} ${path}?${qs} → ${res.statusCode}: ${res.body.slice(0, 300)}`)
    if (LEAKS.test(res.body)) throw new Error(`${m} ${path}?${qs} leaks: ${res.body.slice(0, 300)}`)
    if (res.statusCode >= 400 && m !== 'HEAD') {
      const parsed = JSON.parse(res.body) as { statusCode: number, error: string, message: string, code: string }
      if (parsed.statusCode !== res.statusCode || typeof parsed.error !== 'string' || typeof parsed.message !== 'string' || !/^[A-Z][A-Z_]+$/.test(parsed.code)) {
        throw new Error(`${m} ${path}?${qs}: not the error shape: ${res.body}`)
      }
    }
  }), { numRuns: 3000, seed: 20261123 })
  t.comment(`statuses seen: ${[...seen.entries()].sort().map(([s, n]) => `${s}×${n}`).join(', ')}`)
  t.ok((seen.get(200) ?? 0) > 0 && (seen.get(400) ?? 0) > 0 && (seen.get(404) ?? 0) > 0, 'the generator reached successes and failures')
})

t.test('raw malformed HTTP on a real socket gets a JSON 400', async (t) => {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = new URL(address)
  const { createConnection } = await import('node:net')
  for (const raw of ['GARBAGE\r\n\r\n', `GET /query?sno=1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n']) {
    const answer = await new Promise<string>((resolve) => {
      const socket = createConnection({ port: Number(port), host: '127.0.0.1' }, () => socket.write(raw))
      let data = ''
      socket.on('data', (chunk) => { data += chunk.toString() })
      socket.on('close', () => resolve(data))
      socket.on('error', () => resolve(data))
    })
    t.match(answer, /^HTTP\/1\.1 400 /, JSON.stringify(raw.slice(0, 30)))
    t.match(answer, /"code":"(MALFORMED_REQUEST|HEADERS_TOO_LARGE)"/)
  }
})
