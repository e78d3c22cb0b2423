// The benchmark's ceiling: a bare Fastify server answering GET /query with a constant,
// pre-serialized JSON body (a real /query answer, as bytes) and nothing else: no hooks, no
// logger. Plain JavaScript so that it runs under node and PM2 exactly like dist/server.js.
// Env: PORT, CEILING_BODY (the body), CEILING_HEADERS=1 to also send the API's six constant
// headers (five security headers and a request id of the same length), still without hooks;
// CEILING_BODIES_FILE, a JSON array of the hot set's real answers, to send the one for the sno
// asked (sno 1 is the first) rather than one constant body; CEILING_SERVER=node to answer the same
// from a bare node:http server (what the API's hit shortcut sits on) instead of Fastify.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
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
const port = Number(process.env.PORT ?? 3999)
const answerFor = (sno) => bodies === undefined ? body : (bodies[Number(sno) - 1] ?? body)
let close
if (process.env.CEILING_SERVER === 'node') {
  // As the hit shortcut sends an answer: one flat header list, copied and filled in, to
  // writeHead, then the body; the sno read as the shortcut reads it (after "sno=").
  const list = [...(withHeaders ? [...Object.entries(headers).flat(), 'x-request-id', ''] : []), 'content-type', 'application/json; charset=utf-8', 'content-length', '']
  const server = createServer((req, res) => {
    const answer = bodies === undefined ? body : answerFor(req.url.slice(req.url.indexOf('sno=') + 4))
    const head = list.slice()
    if (withHeaders) head[11] = `c0ffee00-${(counter++).toString(36)}`
    head[head.length - 1] = String(answer.length)
    res.writeHead(200, head)
    res.end(answer)
  })
  server.keepAliveTimeout = 65_000
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  close = () => { server.close(() => process.exit(0)); server.closeAllConnections() }
} else {
  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 })
  app.get('/query', (request, reply) => {
    if (withHeaders) reply.headers(headers).header('x-request-id', `c0ffee00-${(counter++).toString(36)}`)
    reply.type('application/json; charset=utf-8').send(bodies === undefined ? body : answerFor(request.query.sno))
  })
  await app.listen({ host: '127.0.0.1', port })
  close = () => { app.close().then(() => process.exit(0)) }
}
process.send?.('ready')
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, close)
