/**
 * Compares Node AMQP 0-9-1 clients on the local RabbitMQ, the way the ingestion consumer uses
 * one: publish N small JSON messages to a quorum queue with publisher confirms, then consume them
 * with a prefetch window and multiple-acks (one ack per `ACK_EVERY` deliveries). Then the
 * connection is cut mid-stream (a TCP proxy in front of the broker, restored after a second) to
 * see whether the client comes back by itself and what it redelivers.
 *
 *   npx tsx scripts/bench/amqp-clients.ts [--messages 50000] [--prefetch 500]
 *
 * Only amqplib is a dependency; the others are loaded when installed
 * (`npm i --no-save rabbitmq-client @cloudamqp/amqp-client`) and skipped otherwise.
 */
import { once } from 'node:events'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' }, prefetch: { type: 'string', default: '500' }, url: { type: 'string', default: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672' } } })
const N = Number(values.messages)
const PREFETCH = Number(values.prefetch)
const ACK_EVERY = Math.max(1, Math.floor(PREFETCH / 2))
const URL_ = values.url
const brokerPort = Number(new URL(URL_).port || 5672)
const quorum = { 'x-queue-type': 'quorum' }
const body = (i: number): Buffer => Buffer.from(JSON.stringify({ type: 'tracking.event', event_id: `bench-${i}`, sno: i % 5000 + 1, status: 'In Transit', location_id: 3, occurred_at: '2026-11-29T08:15:00+08:00' }))
// The clients compared but not depended on: no types at hand, so they are used untyped here.
type Msg = { body: Buffer, deliveryTag: number, ack: (multiple?: boolean) => Promise<void> }
const optional = async (name: string): Promise<any> => await import(name)
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const rate = (count: number, ms: number): string => `${Math.round(count / (ms / 1000)).toLocaleString('en')}/s`

/** A cuttable TCP proxy in front of the broker (the same idea as test/helpers/tcp-proxy.ts). */
class Proxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  port = 0
  async start (): Promise<void> {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: brokerPort })
      for (const s of [client, upstream]) { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); s.on('error', () => { client.destroy(); upstream.destroy() }) }
      client.pipe(upstream); upstream.pipe(client)
    })
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve))
    this.port = (this.server.address() as { port: number }).port
  }

  async cut (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server?.close(() => resolve()))
  }

  async close (): Promise<void> { await this.cut() }
}

interface Figures { client: string, publish: string, consume: string, drop: string }

interface Counter { deliveries: number, unique: Set<number> }
const record = (c: Counter, content: Buffer | Uint8Array | string | null): void => {
  c.deliveries++
  const id = JSON.parse(Buffer.from(content as Uint8Array).toString()).event_id as string
  c.unique.add(Number(id.slice(6)))
}
async function waitFor (check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) { if (check()) return true; await sleep(20) }
  return check()
}

/** The drop scenario, shared: consume through the proxy, cut at 40%, restore after 1 s. */
async function dropScenario (name: string, fill: () => Promise<void>, consume: (url: string, c: Counter) => Promise<() => Promise<void>>): Promise<string> {
  await fill()
  const proxy = new Proxy()
  await proxy.start()
  const url = new URL(URL_); url.port = String(proxy.port)
  const c: Counter = { deliveries: 0, unique: new Set() }
  const stop = await consume(url.toString(), c)
  await waitFor(() => c.unique.size >= N * 0.4, 60_000)
  await proxy.cut()
  const cutAt = Date.now()
  await sleep(1000)
  await proxy.start()
  const resumed = await waitFor(() => c.unique.size >= N, 30_000)
  const took = Date.now() - cutAt
  await stop().catch(() => {})
  await proxy.close()
  return resumed
    ? `resumed by itself; all ${N} received ${(took / 1000).toFixed(1)} s after the cut, ${c.deliveries - c.unique.size} redelivered`
    : `did NOT resume within 30 s (${c.unique.size}/${N} received)`
}

async function benchAmqplib (): Promise<Figures> {
  const amqp = await import('amqplib')
  const q = 'bench.amqplib'
  const conn = await amqp.connect(URL_)
  const pub = await conn.createConfirmChannel()
  await pub.deleteQueue(q)
  await pub.assertQueue(q, { durable: true, arguments: quorum })
  const publish = async (): Promise<number> => {
    const t0 = performance.now()
    for (let i = 0; i < N; i++) if (!pub.publish('', q, body(i), { persistent: true })) await once(pub, 'drain')
    await pub.waitForConfirms()
    return performance.now() - t0
  }
  const pubMs = await publish()
  const ch = await conn.createChannel()
  await ch.prefetch(PREFETCH)
  const c: Counter = { deliveries: 0, unique: new Set() }
  const t0 = performance.now()
  await ch.consume(q, (msg) => {
    if (msg === null) return
    record(c, msg.content)
    if (c.deliveries % ACK_EVERY === 0 || c.deliveries === N) ch.ack(msg, true)
  })
  await waitFor(() => c.deliveries >= N, 120_000)
  const conMs = performance.now() - t0
  await ch.close()

  // Drop: amqplib 2.x's own recovery (connect with { recovery }): a setup function per connection.
  const drop = await dropScenario('amqplib', async () => { await publish() }, async (url, counter) => {
    const rc = await amqp.connect(url, { recovery: { initialDelay: 100, maxDelay: 5000 } })
    rc.on('error', () => {})
    let n = 0
    const start = async (): Promise<void> => {
      const ch = await rc.createChannel()
      ch.on('error', () => {})
      await ch.prefetch(PREFETCH)
      await ch.consume(q, (msg) => {
        if (msg === null) return
        record(counter, msg.content)
        if (++n % ACK_EVERY === 0 || counter.unique.size >= N) { try { ch.ack(msg, true) } catch {} }
      })
    }
    rc.on('connect', () => { n = 0; start().catch(() => {}) })
    await start()
    return async () => { await rc.close() }
  })
  await pub.deleteQueue(q)
  await conn.close()
  return { client: 'amqplib 2.x', publish: rate(N, pubMs), consume: rate(N, conMs), drop }
}

async function benchRabbitmqClient (): Promise<Figures[]> {
  const { Connection } = await optional('rabbitmq-client')
  const q = 'bench.rabbitmq-client'
  const rabbit = new Connection(URL_)
  rabbit.on('error', () => {})
  const admin = await rabbit.acquire()
  await admin.queueDelete({ queue: q })
  await admin.queueDeclare({ queue: q, durable: true, arguments: quorum })
  const pub = rabbit.createPublisher({ confirm: true })
  const publish = async (): Promise<number> => {
    const t0 = performance.now()
    const window: Array<Promise<void>> = []
    for (let i = 0; i < N; i++) {
      window.push(pub.send({ routingKey: q, durable: true }, body(i)))
      if (window.length >= 1000) await Promise.all(window.splice(0))
    }
    await Promise.all(window)
    return performance.now() - t0
  }
  const out: Figures[] = []
  // (a) raw channel, multiple-ack: no recovery for acquired channels.
  let pubMs = await publish()
  const ch = await rabbit.acquire()
  await ch.basicQos({ prefetchCount: PREFETCH })
  let c: Counter = { deliveries: 0, unique: new Set() }
  let t0 = performance.now()
  await ch.basicConsume({ queue: q }, (msg: Msg) => {
    record(c, msg.body as Buffer)
    if (c.deliveries % ACK_EVERY === 0 || c.deliveries === N) ch.basicAck({ deliveryTag: msg.deliveryTag, multiple: true })
  })
  await waitFor(() => c.deliveries >= N, 120_000)
  out.push({ client: 'rabbitmq-client 5.x (raw channel, multiple-ack)', publish: rate(N, pubMs), consume: rate(N, performance.now() - t0), drop: 'acquired channels are not recovered (same as plain amqplib)' })
  await ch.close()

  // (b) its Consumer (recovers by itself): a handler per message, one basic.ack per message; the
  // handlers of one batch all resolve when the batch "commits" (every ACK_EVERY messages).
  const consumeWith = (url: string, counter: Counter): () => Promise<void> => {
    const r2 = url === URL_ ? rabbit : new Connection({ url, retryLow: 100, retryHigh: 5000 })
    r2.on('error', () => {})
    let waiting: Array<() => void> = []
    const sub = r2.createConsumer({ queue: q, queueOptions: { durable: true, arguments: quorum }, qos: { prefetchCount: PREFETCH }, concurrency: PREFETCH }, async (msg: Msg) => {
      record(counter, msg.body as Buffer)
      await new Promise<void>((resolve) => {
        waiting.push(resolve)
        if (waiting.length >= ACK_EVERY || counter.unique.size >= N) { const w = waiting; waiting = []; for (const f of w) f() }
      })
    })
    sub.on('error', () => {})
    return async () => { await sub.close(); if (r2 !== rabbit) await r2.close() }
  }
  pubMs = await publish()
  c = { deliveries: 0, unique: new Set() }
  t0 = performance.now()
  const stop = consumeWith(URL_, c)
  await waitFor(() => c.deliveries >= N, 120_000)
  const conMs = performance.now() - t0
  await stop()
  const drop = await dropScenario('rabbitmq-client', async () => { await publish() }, async (url, counter) => consumeWith(url, counter))
  out.push({ client: 'rabbitmq-client 5.x (Consumer, per-message ack)', publish: rate(N, pubMs), consume: rate(N, conMs), drop })
  await admin.queueDelete({ queue: q })
  await admin.close()
  await pub.close()
  await rabbit.close()
  return out
}

async function benchCloudamqp (): Promise<Figures> {
  const { AMQPClient } = await optional('@cloudamqp/amqp-client')
  const q = 'bench.cloudamqp'
  const client = new AMQPClient(URL_)
  const conn = await client.connect()
  const pub = await conn.channel()
  await pub.queueDelete(q)
  await pub.queueDeclare(q, { durable: true }, quorum)
  await pub.confirmSelect()
  const publish = async (): Promise<number> => {
    const t0 = performance.now()
    const window: Array<Promise<number>> = []
    for (let i = 0; i < N; i++) {
      window.push(pub.basicPublish('', q, body(i), { deliveryMode: 2 }))
      if (window.length >= 1000) await Promise.all(window.splice(0))
    }
    await Promise.all(window)
    return performance.now() - t0
  }
  const pubMs = await publish()
  const ch = await conn.channel()
  await ch.prefetch(PREFETCH)
  const c: Counter = { deliveries: 0, unique: new Set() }
  const t0 = performance.now()
  await ch.basicConsume(q, { noAck: false }, (msg: Msg) => {
    record(c, msg.body)
    if (c.deliveries % ACK_EVERY === 0 || c.deliveries === N) msg.ack(true).catch(() => {})
  })
  await waitFor(() => c.deliveries >= N, 120_000)
  const conMs = performance.now() - t0
  await ch.close()
  // Drop: a plain AMQPClient does not reconnect; the connection's onerror fires and that is all.
  const drop = await dropScenario('cloudamqp', async () => { await publish() }, async (url, counter) => {
    const c2 = new AMQPClient(url)
    c2.onerror = () => {}
    const conn2 = await c2.connect()
    const ch2 = await conn2.channel()
    await ch2.prefetch(PREFETCH)
    let n = 0
    await ch2.basicConsume(q, { noAck: false }, (msg: Msg) => {
      record(counter, msg.body)
      if (++n % ACK_EVERY === 0 || counter.unique.size >= N) msg.ack(true).catch(() => {})
    })
    return async () => { await conn2.close().catch(() => {}) }
  })
  await pub.queueDelete(q)
  await conn.close()
  return { client: '@cloudamqp/amqp-client 4.x (plain client)', publish: rate(N, pubMs), consume: rate(N, conMs), drop }
}

const results: Figures[] = []
for (const [name, run] of [['amqplib', benchAmqplib], ['rabbitmq-client', benchRabbitmqClient], ['@cloudamqp/amqp-client', benchCloudamqp]] as const) {
  try {
    const r = await (run as () => Promise<Figures | Figures[]>)()
    results.push(...(Array.isArray(r) ? r : [r]))
  } catch (err) {
    const code = (err as { code?: string }).code
    console.error(code === 'ERR_MODULE_NOT_FOUND' ? `${name}: not installed, skipped` : `${name}: ${(err as Error).stack ?? String(err)}`)
  }
}
console.log(`${N} messages, prefetch ${PREFETCH}, ack every ${ACK_EVERY} (multiple), quorum queue, publisher confirms`)
console.table(results)
process.exit(0)
