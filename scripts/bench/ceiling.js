// The benchmark's ceiling: a bare Fastify server answering GET /query with a constant,
// pre-serialized JSON body (a real /query answer, as bytes) and nothing else: no hooks, no
// logger. Plain JavaScript so that it runs under node and PM2 exactly like dist/server.js.
// Env: PORT, CEILING_BODY (the body), CEILING_HEADERS=1 to also send the API's six constant
// headers (five security headers and a request id of the same length), still without hooks.
import Fastify from 'fastify'

const body = Buffer.from(process.env.CEILING_BODY ?? '{}')
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
app.get('/query', (_request, reply) => {
  if (withHeaders) reply.headers(headers).header('x-request-id', `c0ffee00-${(counter++).toString(36)}`)
  reply.type('application/json; charset=utf-8').send(body)
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3999) })
process.send?.('ready')
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
