import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger as Logger } from 'fastify'
import { parseFix, vehicleOfTopic, type FixRefusal } from './fix.js'
import type { InboundMessage } from './mqtt-subscriber.js'
import type { FixItem, FleetProcessor, ProcessResult } from './processor.js'

interface Pending {
  items: FixItem[]
  refused: Map<FixRefusal, number>
  acks: Array<() => void>
}

const empty = (): Pending => ({ items: [], refused: new Map(), acks: [] })

/**
 * MQTT messages in, batches out: messages are parsed as they arrive, gathered for up to
 * `batchWaitMs` or `batchMax` messages, and written one batch at a time (one transaction each, so
 * one vehicle's fixes are never decided by two writers at once); every message of a batch, the
 * refused ones included, is acknowledged only after that batch has committed. A batch that fails
 * (database away) is retried with backoff and never acknowledged before it succeeds.
 */
export class FleetIntake extends EventEmitter {
  private pending = empty()
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopping = false
  /** Messages handled since start (for logs and the benchmark). */
  handled = 0

  constructor (
    private readonly processor: FleetProcessor,
    private readonly options: { topicPrefix: string, batchMax: number, batchWaitMs: number },
    private readonly logger: Logger
  ) {
    super()
  }

  handle (message: InboundMessage): void {
    // Stopping: left unacknowledged, the broker sends it again to the next run.
    if (this.stopping) return
    const refuse = (code: FixRefusal): void => { this.pending.refused.set(code, (this.pending.refused.get(code) ?? 0) + 1) }
    const vehicleId = vehicleOfTopic(message.topic, this.options.topicPrefix)
    if (vehicleId === undefined) {
      refuse('TOPIC_INVALID')
    } else {
      let body: unknown
      try {
        body = JSON.parse(message.payload.toString('utf8'))
      } catch {
        body = undefined
      }
      const parsed = parseFix(body)
      if (parsed.ok) this.pending.items.push({ vehicleId, fix: parsed.fix })
      else refuse(parsed.code)
    }
    this.pending.acks.push(message.ack)
    if (this.pending.acks.length >= this.options.batchMax) this.kick()
    else this.timer ??= setTimeout(() => this.kick(), this.options.batchWaitMs)
  }

  /** Writes what is pending and stops taking more. */
  async stop (): Promise<void> {
    this.kick()
    this.stopping = true
    await this.running
  }

  private kick (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.running ??= this.drain().finally(() => { this.running = undefined })
  }

  private async drain (): Promise<void> {
    while (this.pending.acks.length > 0) {
      const batch = this.pending
      this.pending = empty()
      for (let attempt = 0; ; attempt++) {
        try {
          const result: ProcessResult = await this.processor.process(batch.items, batch.refused, 'mqtt')
          for (const ack of batch.acks) ack()
          this.handled += batch.acks.length
          this.emit('batch', { messages: batch.acks.length, result })
          break
        } catch (err) {
          if (attempt % 10 === 0) this.logger.error({ err, messages: batch.acks.length }, 'fleet: a batch of positions could not be written; retrying (not acknowledged)')
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(attempt, 6))))
          // Stopping with the database away: leave the batch unacknowledged; the broker redelivers it.
          if (this.stopping) return
        }
      }
    }
  }
}
