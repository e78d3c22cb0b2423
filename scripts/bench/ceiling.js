// The benchmark's ceiling: a bare Fastify server answering GET /query with a constant,
// pre-serialized JSON body (a real /query answer, as bytes) and nothing else: no hooks, no
// logger. Plain JavaScript so that it runs under node and PM2 exactly like dist/server.js.
// Env: PORT, CEILING_BODY (the body), CEILING_HEADERS=1 to also send the API's six constant
// headers (five security headers and a request id of the same length), still without hooks;
// CEILING_BODIES_FILE, a JSON array of the hot set's real answers, to send the one for the sno
// asked (sno 1 is the first) rather than one constant body.
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

const body = Buffer.from(process.env.CEILING_BODY ?? '{}')
const bodies = process.env.CEILING_BODIES_FILE === undefined ? undefined : JSON.parse(readFileSync(process.env.CEILING_BODIES_FILE, 'utf8')).map((b) => Buffer.from(b))
const withHeaders = process.env.CEILING_HEADERS === '1'
const headers = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-site'
}
let counter = 0
const app = Fastify({ logger: false, keepAliveTimeout: 65_000 })
app.get('/query', (request, reply) => {
  if (withHeaders) reply.headers(headers).header('x-request-id', `c0ffee00-${(counter++).toString(36)}`)
  reply.type('application/json; charset=utf-8').send(bodies === undefined ? body : (bodies[Number(request.query.sno) - 1] ?? body))
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3999) })
process.send?.('ready')
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
