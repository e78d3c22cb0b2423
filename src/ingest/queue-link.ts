import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib'
import type { Logger } from 'pino'
import type { AmqpConfig } from '../config.js'
import { redactUrl } from '../config.js'

/** One connection with its two channels: consuming (with prefetch) and publishing dead letters (confirms). */
export interface Session {
  readonly id: number
  readonly connection: ChannelModel
  readonly channel: Channel
  readonly confirm: ConfirmChannel
  consumerTag?: string
  live: boolean
}

/** A message as delivered: acknowledgements only mean something on the session it came on. */
export interface Delivery {
  readonly message: ConsumeMessage
  readonly session: Session
}

export interface LinkHandlers {
  onDelivery: (delivery: Delivery) => void
  /** The session is gone: its unacknowledged deliveries go back to the queue by themselves. */
  onLost: (session: Session) => void
}

export const deadLetterQueue = (queue: string): string => `${queue}.dead`
/** The broker's own delivery limit, a safety net a little above the consumer's. */
export const brokerDeliveryLimit = (deliveryLimit: number): number => deliveryLimit + 5
/** The main queue's arguments: a publisher that declares it first must use the same ones. */
export function mainQueueArguments (queue: string, deliveryLimit: number): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    // Backstop: what the broker gives up on (past the consumer's own limit) is kept, not dropped.
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': deadLetterQueue(queue),
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
    'x-delivery-limit': brokerDeliveryLimit(deliveryLimit)
  }
}
const DEAD_LETTER_CONFIRM_MS = 15_000

/**
 * The consumer's link to RabbitMQ: connects, declares the quorum queue and its dead-letter queue,
 * consumes, and when the broker or the connection goes away does it all again by itself, with a
 * backoff from 100 ms doubling to 5 s. (amqplib was chosen by measurement: scripts/bench/amqp-clients.ts.)
 */
export class QueueLink {
  private session: Session | undefined
  private sessions = 0
  private stopped = false
  private wake: (() => void) | undefined
  private running: Promise<void> | undefined
  private consuming = true

  constructor (
    private readonly config: AmqpConfig,
    private readonly logger: Logger,
    private readonly handlers: LinkHandlers
  ) {}

  get deadQueue (): string {
    return deadLetterQueue(this.config.queue)
  }

  get connected (): boolean {
    return this.session?.live === true
  }

  /** Starts the connect loop; resolves once connected or after the first failed attempt. */
  async start (): Promise<void> {
    let first: () => void = () => {}
    const settled = new Promise<void>((resolve) => { first = resolve })
    this.running = this.run(first)
    await settled
  }

  private async run (firstAttempt: () => void): Promise<void> {
    let failures = 0
    while (!this.stopped) {
      let session: Session | undefined
      try {
        session = await this.open()
        if (this.sessions > 1) this.logger.info({ queue: this.config.queue }, 'queue connection re-established')
        failures = 0
        firstAttempt()
        await this.untilClosed(session)
      } catch (err) {
        failures++
        firstAttempt()
        if (failures === 1 || failures % 20 === 0) this.logger.error({ err, url: redactUrl(this.config.url), failures }, 'cannot connect to the queue or declare it; retrying')
      }
      if (session !== undefined) {
        session.live = false
        this.session = undefined
        session.connection.close().catch(() => {})
        this.handlers.onLost(session)
        if (!this.stopped) this.logger.warn({ queue: this.config.queue }, 'queue connection lost; reconnecting')
      }
      if (this.stopped) break
      const delay = Math.min(5000, 100 * 2 ** Math.min(failures, 6)) * (0.8 + Math.random() * 0.4)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      this.wake = undefined
    }
  }

  private connectUrl (): string {
    // Heartbeats find a dead peer (a pulled cable) in ~2 intervals rather than the OS TCP timeout.
    const url = new URL(this.config.url)
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', '10')
    return url.toString()
  }

  private async open (): Promise<Session> {
    const connection = await connect(this.connectUrl(), { timeout: 5000, clientProperties: { connection_name: 'ingest' } })
    connection.on('error', (err: Error) => { this.logger.warn({ err }, 'queue connection error') })
    try {
      const channel = await connection.createChannel()
      // Errors while opening (a queue declared with other arguments) are reported by the step that failed.
      channel.on('error', (err: Error) => { if (this.session?.channel === channel) this.logger.warn({ err }, 'queue channel error') })
      await this.declare(channel)
      await channel.prefetch(this.config.prefetch)
      const confirm = await connection.createConfirmChannel()
      confirm.on('error', (err: Error) => { if (this.session?.confirm === confirm) this.logger.warn({ err }, 'dead-letter channel error') })
      const session: Session = { id: ++this.sessions, connection, channel, confirm, live: true }
      this.session = session
      if (this.consuming) await this.consume(session)
      return session
    } catch (err) {
      await connection.close().catch(() => {})
      throw err
    }
  }

  private async declare (channel: Channel): Promise<void> {
    await channel.assertQueue(this.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    await channel.assertQueue(this.config.queue, { durable: true, arguments: mainQueueArguments(this.config.queue, this.config.deliveryLimit) })
  }

  private async consume (session: Session): Promise<void> {
    const { consumerTag } = await session.channel.consume(this.config.queue, (message) => {
      // null: the broker cancelled the consumer (the queue was deleted): start over and re-declare.
      if (message === null) session.connection.close().catch(() => {})
      else if (session.live) this.handlers.onDelivery({ message, session })
    }, { noAck: false })
    session.consumerTag = consumerTag
  }

  private async untilClosed (session: Session): Promise<void> {
    await new Promise<void>((resolve) => {
      session.connection.once('close', resolve)
      session.channel.once('close', resolve)
      session.confirm.once('close', resolve)
    })
  }

  /** Acknowledges one delivery, or every delivery up to it on its channel. False if its session is gone. */
  ack (delivery: Delivery, upTo: boolean): boolean {
    if (!delivery.session.live) return false
    try {
      delivery.session.channel.ack(delivery.message, upTo)
      return true
    } catch {
      return false
    }
  }

  /**
   * Publishes a copy to the dead-letter queue with the reason in `x-reject-reason` and resolves
   * once the broker has confirmed it; only then may the original be acknowledged.
   */
  async deadLetter (delivery: Delivery, reason: string): Promise<void> {
    const { session, message } = delivery
    if (!session.live) throw new Error('the queue session ended before the dead letter was sent')
    const p = message.properties
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('dead letter not confirmed in time')), DEAD_LETTER_CONFIRM_MS)
      try {
        session.confirm.publish('', this.deadQueue, message.content, {
          persistent: true,
          contentType: p.contentType,
          contentEncoding: p.contentEncoding,
          messageId: p.messageId,
          correlationId: p.correlationId,
          timestamp: p.timestamp,
          type: p.type,
          appId: p.appId,
          headers: { ...p.headers, 'x-reject-reason': reason, 'x-original-queue': this.config.queue }
        }, (err) => {
          clearTimeout(timer)
          if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
          else resolve()
        })
      } catch (err) {
        clearTimeout(timer)
        reject(err)
      }
    })
  }

  /**
   * Drops a session whose deliveries can no longer be settled in order (a dead letter not
   * confirmed): a later multiple-ack must not cover them. They all return to the queue, and the
   * link reconnects by itself.
   */
  reset (session: Session): void {
    if (!session.live) return
    session.live = false
    session.connection.close().catch(() => {})
  }

  /** No new deliveries (graceful stop); deliveries already received can still be acknowledged. */
  async stopConsuming (): Promise<void> {
    this.consuming = false
    const session = this.session
    if (session?.live === true && session.consumerTag !== undefined) {
      await session.channel.cancel(session.consumerTag).catch(() => {})
    }
  }

  /** Closes the channels and the connection (unacknowledged deliveries return to the queue). */
  async close (): Promise<void> {
    this.stopped = true
    this.wake?.()
    const session = this.session
    if (session !== undefined) {
      const bounded = async (work: Promise<unknown>): Promise<void> => {
        await Promise.race([work.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      }
      // The consuming channel first: its close-ok comes after the broker has taken the last
      // acknowledgements sent on it. (A connection close may overtake frames still queued on a
      // channel, and the last batch would then be redelivered.) Then the connection, which
      // closes the dead-letter channel with it; each step bounded in time.
      await bounded(session.channel.close())
      await bounded(session.connection.close())
    }
    await this.running
  }
}
