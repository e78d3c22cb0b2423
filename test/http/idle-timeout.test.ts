import { connect, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { serverOptions } from '../../src/app.js'
import { QueryHitShortcut } from '../../src/tracking/hit-shortcut.js'

// The API's connections have one idle timeout each (src/app.ts, serverFactory): set when the
// connection opens and pushed back by every byte either way. It must end an idle keep-alive
// connection and one whose client stops reading mid-answer. The configured minimum (61 s) is
// too long for a test: the server is built here from the same options with 400 ms.
const IDLE_MS = 400
const base = loadConfig({})
const config = { ...base, server: { ...base.server, keepAliveTimeoutMs: IDLE_MS } }
const silent = new Writable({ write (_chunk, _encoding, done) { done() } })
const app = Fastify(serverOptions(config, new QueryHitShortcut(), false, silent))
const BIG = Buffer.alloc(64 * 1024 * 1024, 'x')
app.get('/small', async () => ({ ok: true }))
app.get('/big', async (_request, reply) => await reply.type('application/octet-stream').send(BIG))
await app.listen({ host: '127.0.0.1', port: 0 })
t.teardown(async () => { await app.close() })
const { port } = app.server.address() as { port: number }

/** The server's side of the next connection: resolves with it once the server has closed it. */
function nextServerSocketClosed (): Promise<Socket> {
  return new Promise((resolve) => {
    app.server.once('connection', (socket: Socket) => { socket.once('close', () => resolve(socket)) })
  })
}

/** Fails the test instead of hanging when the server never closes the connection. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}

t.test('the server sets the timeout once per connection, not per request', async (t) => {
  t.equal(app.server.keepAliveTimeout, 0, 'Node\'s per-request keep-alive timer is off')
  t.equal(app.server.timeout, IDLE_MS, 'the connection\'s idle timeout')
  t.equal(app.server.requestTimeout, config.server.requestTimeoutMs, 'a request must still arrive within the request timeout')
})

t.test('an idle keep-alive connection is closed by the server', async (t) => {
  const closed = nextServerSocketClosed()
  const client = connect(port, '127.0.0.1')
  let answer = ''
  client.on('data', (chunk: Buffer) => { answer += chunk.toString() })
  client.write('GET /small HTTP/1.1\r\nHost: x\r\n\r\n')
  const socket = await within(closed, 30_000, 'the idle connection closed')
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n/, 'the request was answered first')
  t.match(answer, /\r\nconnection: keep-alive\r\n/i, 'on a keep-alive connection')
  t.ok(socket.destroyed)
  client.destroy()
})

t.test('a client that stops reading mid-answer is cut off', async (t) => {
  const closed = nextServerSocketClosed()
  const client = connect(port, '127.0.0.1')
  let received = 0
  client.once('data', (chunk: Buffer) => {
    received += chunk.length
    client.pause() // reads nothing more: the server's writes back up and stop
  })
  client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
  const socket = await within(closed, 30_000, 'the stalled connection closed')
  t.ok(socket.destroyed, 'the server closed it')
  t.ok(received > 0 && received < BIG.length, 'the client had only part of the answer')
  client.destroy()
})
