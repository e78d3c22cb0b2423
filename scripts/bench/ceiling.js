// The benchmark's ceiling: a bare Fastify server answering GET /query with a constant,
// pre-serialized JSON body (a real /query answer, as bytes) and nothing else: no hooks, no
// headers of its own, no logger. Plain JavaScript so that it runs under node and PM2 exactly
// like dist/server.js. Env: PORT, CEILING_BODY (the body).
import Fastify from 'fastify'

const body = Buffer.from(process.env.CEILING_BODY ?? '{}')
const app = Fastify({ logger: false, keepAliveTimeout: 65_000 })
app.get('/query', (_request, reply) => {
  reply.type('application/json; charset=utf-8').send(body)
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3999) })
process.send?.('ready')
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
