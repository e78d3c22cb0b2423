import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib'
import mqtt, { type MqttClient } from 'mqtt'
import { deadLetterQueue, mainQueueArguments } from '../ingest/queue-link.js'

/** A refusal from the API, with its status and code. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string | undefined, message: string) {
    super(message)
    this.name = 'ApiError'
  }
}

export interface EventResult { event_id: string, result: 'accepted' | 'duplicate' | 'rejected', code?: string }
export interface QueryBody { sno: string, tracking_status: string, details: Array<{ status: string, location_id: number, time: string }> }
export interface FleetVehicle { id: string, status: string, parcels_on_board: number, hub: { location_id: number, relation: string } | null }

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The service's HTTP API, as any client sees it. Network errors, 429 and 503 are retried with
 * backoff (honouring Retry-After); any other refusal is an ApiError.
 */
export class Api {
  inFlight = 0
  requests = 0

  constructor (readonly base: string, private readonly token: string | undefined) {}

  async call<T> (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    this.inFlight++
    try {
      for (let attempt = 1; ; attempt++) {
        let res: Response
        try {
          this.requests++
          res = await fetch(`${this.base}${path}`, {
            method,
            headers: {
              ...(body === undefined ? {} : { 'content-type': 'application/json' }),
              ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
              ...headers
            },
            body: body === undefined ? undefined : JSON.stringify(body),
            signal: AbortSignal.timeout(30_000)
          })
        } catch (err) {
          if (attempt >= 6) throw new Error(`${method} ${path}: ${err instanceof Error ? err.message : String(err)} (the API at ${this.base}; --api or API_URL)`)
          await sleep(100 * 2 ** attempt)
          continue
        }
        const text = await res.text()
        // 409 IDEMPOTENCY_KEY_IN_FLIGHT: a retry (after a timeout) met the first request still running.
        const inFlight = res.status === 409 && text.includes('IDEMPOTENCY_KEY_IN_FLIGHT')
        if ((res.status === 429 || res.status === 503 || inFlight) && attempt < 10) {
          const after = Number(res.headers.get('retry-after'))
          await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 5) * 1000 : 100 * 2 ** Math.min(attempt, 5))
          continue
        }
        let parsed: unknown
        try { parsed = text === '' ? undefined : JSON.parse(text) } catch { parsed = text }
        if (res.status >= 400) {
          const err = parsed as { code?: string, message?: string } | undefined
          throw new ApiError(res.status, err?.code, `${method} ${path}: ${res.status} ${err?.code ?? ''} ${err?.message ?? text.slice(0, 200)}`.trim())
        }
        return parsed as T
      }
    } finally {
      this.inFlight--
    }
  }
}

/**
 * Publishing to the service's queue: a confirm channel, each message persistent, a promise per
 * message that settles with the broker's confirm. The queue is declared exactly as the consumer
 * declares it (quorum, with its dead-letter queue), so the order of starting does not matter.
 */
export class QueuePublisher {
  outstanding = 0
  published = 0
  confirmed = 0
  private waiting: Array<() => void> = []

  private constructor (private readonly connection: ChannelModel, private readonly channel: ConfirmChannel, readonly queue: string) {}

  static async open (url: string, queue: string, deliveryLimit: number): Promise<QueuePublisher> {
    const connection = await connect(url, { clientProperties: { connection_name: 'simulator' } })
    const channel = await connection.createConfirmChannel()
    await channel.assertQueue(deadLetterQueue(queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    await channel.assertQueue(queue, { durable: true, arguments: mainQueueArguments(queue, deliveryLimit) })
    return new QueuePublisher(connection, channel, queue)
  }

  async publish (message: Record<string, unknown>): Promise<void> {
    this.outstanding++
    this.published++
    const body = Buffer.from(JSON.stringify(message))
    try {
      await new Promise<void>((resolve, reject) => {
        // sendToQueue's false (the socket's buffer is full) is not waited on here: the outstanding
        // count is, by the simulation, which stops handing out work while it is high.
        this.channel.sendToQueue(this.queue, body, { persistent: true, contentType: 'application/json', type: String(message.type) }, (err) => {
          if (err !== null && err !== undefined) reject(new Error(`the broker refused a message: ${String(err)}`))
          else resolve()
        })
      })
      this.confirmed++
    } finally {
      this.outstanding--
      if (this.outstanding === 0) for (const wake of this.waiting.splice(0)) wake()
    }
  }

  /** Messages ready in the queue and in its dead-letter queue (the broker's counts). */
  async depth (): Promise<{ ready: number, dead: number }> {
    const [main, dead] = await Promise.all([this.channel.checkQueue(this.queue), this.channel.checkQueue(deadLetterQueue(this.queue))])
    return { ready: main.messageCount, dead: dead.messageCount }
  }

  async settled (): Promise<void> {
    if (this.outstanding > 0) await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  async close (): Promise<void> {
    await this.connection.close().catch(() => {})
  }
}

/** Positions over MQTT, QoS 1, through mqtt.js; a promise per fix settles with the broker's PUBACK. */
export class PositionPublisher {
  outstanding = 0
  published = 0
  acknowledged = 0

  private constructor (private readonly client: MqttClient, private readonly prefix: string) {}

  static async open (url: string, clientId: string, prefix: string): Promise<PositionPublisher> {
    const client = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 1000, connectTimeout: 10_000 })
    return new PositionPublisher(client, prefix)
  }

  async publish (vehicleId: string, fix: Record<string, unknown>): Promise<void> {
    this.outstanding++
    this.published++
    try {
      await this.client.publishAsync(`${this.prefix}/${vehicleId}/position`, JSON.stringify(fix), { qos: 1 })
      this.acknowledged++
    } finally {
      this.outstanding--
    }
  }

  async close (): Promise<void> {
    await this.client.endAsync().catch(() => {})
  }
}
