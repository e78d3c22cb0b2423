import type { Logger } from 'pino'
import type { AmqpConfig } from '../config.js'
import { isDatabaseUnavailable } from '../infra/db.js'
import type { EventInput, EventResult } from '../writes/types.js'
import { IngestCounters } from './counters.js'
import { decodeMessage } from './messages.js'
import { QueueLink, type Delivery, type Session } from './queue-link.js'

/** The part of the Writer the consumer needs (src/writes/writer.ts), and the fleet's loading. */
export interface EventWriter {
  applyEvents: (events: readonly EventInput[]) => Promise<EventResult[]>
  /** A vehicle.load / vehicle.unload message (src/fleet/loading.ts loadParcels); throws only for transient trouble. */
  loadParcels?: (body: unknown) => Promise<{ ok: true } | { ok: false, code: string, message: string }>
}

export interface ConsumerOptions {
  /** How often the summary line is logged (ms); 0: never. */
  summaryIntervalMs?: number
}

/** What became of one message of a batch. */
type Outcome =
  | { kind: 'stored' | 'duplicate' | 'omitted' }
  | { kind: 'dead', code: string, reason: string }
  /** Left unacknowledged (stopping while MySQL is away): it returns to the queue. */
  | { kind: 'unsettled' }

interface Item {
  delivery: Delivery
  outcome?: Outcome
  event?: EventInput
  vehicle?: unknown
}

const MAX_ATTEMPT_KEYS = 100_000
/** Batches written at once: the next one is written while the one before commits. */
const BATCHES_IN_FLIGHT = 2
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The queue consumer: deliveries are gathered into batches (up to `batchMax`, or what came within
 * `batchWaitMs`), each batch is written by the one write path in one transaction, and only then
 * acknowledged, with one multiple-ack. Poison goes to `<queue>.dead` with its reason, confirmed
 * before the original is acknowledged. MySQL being away holds the batch, unacknowledged, until
 * it answers; any other failure is narrowed down to the message that causes it, which is
 * dead-lettered after `deliveryLimit` attempts.
 */
export class IngestConsumer {
  readonly counters = new IngestCounters()
  private readonly link: QueueLink
  private readonly omit: ReadonlySet<string>
  private buffer: Delivery[] = []
  private notify: (() => void) | undefined
  private firstWaiting: number | undefined
  private pumping: Promise<void> | undefined
  private stopping = false
  private readonly attempts = new Map<string, number>()
  private summaryTimer: NodeJS.Timeout | undefined
  private lastSummary = ''

  constructor (
    private readonly config: AmqpConfig,
    private readonly writer: EventWriter,
    private readonly logger: Logger,
    options: ConsumerOptions = {}
  ) {
    this.omit = new Set(config.eventsToOmit)
    this.link = new QueueLink(config, logger, {
      onDelivery: (delivery) => this.receive(delivery),
      onLost: (session) => this.lost(session)
    })
    const every = options.summaryIntervalMs ?? 10_000
    if (every > 0) this.summaryTimer = setInterval(() => this.logSummary(), every).unref()
  }

  get connected (): boolean {
    return this.link.connected
  }

  /** Connects (retrying by itself for as long as it takes) and starts consuming. */
  async start (): Promise<void> {
    this.pumping = this.pump()
    await this.link.start()
    this.logger.info({ queue: this.config.queue, prefetch: this.config.prefetch, batchMax: this.config.batchMax, omit: [...this.omit] }, 'queue consumer started')
  }

  /**
   * Graceful stop: no new deliveries, the batches under way are finished and acknowledged, the
   * deliveries not started go back to the queue when the channel closes.
   */
  async stop (): Promise<void> {
    this.stopping = true
    await this.link.stopConsuming()
    this.buffer = []
    this.notify?.()
    await this.pumping
    await this.link.close()
    clearInterval(this.summaryTimer)
    this.logSummary(true)
  }

  private receive (delivery: Delivery): void {
    if (this.stopping) return
    this.counters.received++
    this.buffer.push(delivery)
    this.firstWaiting ??= Date.now()
    // The first message starts the batch's clock; a full batch goes at once.
    if (this.buffer.length === 1 || this.buffer.length >= this.config.batchMax) this.notify?.()
  }

  private lost (session: Session): void {
    if (!this.stopping) this.counters.reconnects++
    // What was prefetched on a dead channel is redelivered on the next one.
    this.buffer = this.buffer.filter((d) => d.session !== session)
    if (this.buffer.length === 0) this.firstWaiting = undefined
  }

  /**
   * Up to BATCHES_IN_FLIGHT batches at once, so that the next batch is decoded and written while
   * the one before commits (the status rule does not depend on the order events are written in).
   * Acknowledgements still go out in delivery order: a batch is acknowledged only after the one
   * before it, so a multiple-ack never covers an unsettled message. A batch with vehicle
   * messages runs alone, so that loads keep their place between the events around them.
   */
  private async pump (): Promise<void> {
    const inFlight = new Set<Promise<boolean>>()
    let previous: Promise<boolean> = Promise.resolve(true)
    while (!this.stopping) {
      await this.nextBatchReady()
      if (this.stopping) break
      const batch = this.buffer.splice(0, this.config.batchMax)
      this.firstWaiting = this.buffer.length > 0 ? Date.now() : undefined
      if (batch.length === 0) continue
      const items = this.decode(batch)
      const alone = items.some((item) => item.vehicle !== undefined)
      if (alone) await Promise.all(inFlight)
      const run = this.runBatch(batch, items, previous)
      previous = run
      inFlight.add(run)
      run.then(() => inFlight.delete(run), () => inFlight.delete(run))
      if (alone) await run
      else if (inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(inFlight)
    }
    await Promise.all(inFlight)
  }

  /**
   * Settles a batch, then acknowledges it once the batch before has been. Resolves whether every
   * message up to this batch's last was acknowledged (a later batch may then use a multiple-ack);
   * never rejects.
   */
  private async runBatch (batch: Delivery[], items: Item[], previous: Promise<boolean>): Promise<boolean> {
    try {
      await this.settle(items)
      return this.acknowledge(items, await previous)
    } catch (err) {
      // The link failed under the batch (dead letter not confirmed, channel gone): nothing of it
      // is acknowledged; the broker redelivers it and what was written comes back as duplicates.
      // A later batch on the same session cannot acknowledge over it: reset() closes the session
      // (Session.live false) before this resolves.
      this.logger.warn({ err, messages: batch.length }, 'batch not acknowledged; it will be redelivered')
      for (const session of new Set(batch.map((d) => d.session))) this.link.reset(session)
      // Its sessions are closed: nothing later on them can be acknowledged over it.
      await previous
      return true
    }
  }

  private async nextBatchReady (): Promise<void> {
    for (;;) {
      if (this.stopping) return
      if (this.buffer.length >= this.config.batchMax) return
      const waited = this.firstWaiting === undefined ? undefined : Date.now() - this.firstWaiting
      if (waited !== undefined && waited >= this.config.batchWaitMs) return
      await new Promise<void>((resolve) => {
        const timer = waited === undefined ? undefined : setTimeout(resolve, this.config.batchWaitMs - waited)
        this.notify = () => { clearTimeout(timer); resolve() }
      })
      this.notify = undefined
    }
  }

  private decode (batch: Delivery[]): Item[] {
    return batch.map((delivery) => {
      const decoded = decodeMessage(delivery.message.content, this.omit)
      if (decoded.kind === 'event') return { delivery, event: decoded.event }
      if (decoded.kind === 'vehicle') return { delivery, vehicle: decoded.body }
      if (decoded.kind === 'omit') return { delivery, outcome: { kind: 'omitted' } }
      return { delivery, outcome: { kind: 'dead', code: decoded.code, reason: decoded.reason } }
    })
  }

  /** Writes the batch's events, applies its loads, and sends its dead letters (confirmed). */
  private async settle (items: Item[]): Promise<void> {
    const writes = items.filter((item) => item.event !== undefined)
    if (writes.length > 0) {
      await this.write(writes)
      this.counters.batches++
    }
    // Loads and unloads, one after another in their order (each is its own transaction).
    for (const item of items) if (item.vehicle !== undefined) await this.load(item)
    const dead = items.filter((item) => item.outcome?.kind === 'dead')
    await Promise.all(dead.map(async (item) => {
      const outcome = item.outcome as { code: string, reason: string }
      await this.link.deadLetter(item.delivery, outcome.reason)
    }))
  }

  /**
   * Everything confirmed: acknowledge. One multiple-ack when the whole batch is settled and so is
   * everything before it (a message left unsettled while stopping must return to the queue).
   * Returns whether everything up to this batch is acknowledged.
   */
  private acknowledge (items: Item[], previousClean: boolean): boolean {
    const settled = items.filter((item) => item.outcome?.kind !== 'unsettled')
    const clean = previousClean && settled.length === items.length
    if (clean) this.link.ack(items[items.length - 1].delivery, true)
    else for (const item of settled) this.link.ack(item.delivery, false)
    for (const item of settled) {
      const outcome = item.outcome as Outcome
      if (outcome.kind === 'stored') this.counters.stored++
      else if (outcome.kind === 'duplicate') this.counters.duplicates++
      else if (outcome.kind === 'omitted') this.counters.omitted++
      else if (outcome.kind === 'dead') this.counters.deadLetter(outcome.code)
      if (item.event !== undefined) this.attempts.delete(attemptKey(item.event))
    }
    return clean
  }

  /** Writes the items' events in one transaction; sets each item's outcome. */
  private async write (items: Item[]): Promise<void> {
    let delay = 100
    let waits = 0
    for (;;) {
      try {
        const results = await this.writer.applyEvents(items.map((item) => item.event as EventInput))
        for (const [i, result] of results.entries()) items[i].outcome = outcomeOf(result)
        if (waits > 0) this.logger.info({ messages: items.length, waits }, 'database back; batch written')
        return
      } catch (err) {
        if (isDatabaseUnavailable(err)) {
          // Not the messages' fault: keep them unacknowledged (no requeue, no attempt counted)
          // and try the same batch again until MySQL answers.
          if (this.stopping) {
            for (const item of items) item.outcome = { kind: 'unsettled' }
            return
          }
          waits++
          this.counters.databaseWaits++
          if (waits === 1 || waits % 20 === 0) this.logger.warn({ err, messages: items.length, waits }, 'database unavailable; holding the batch and retrying')
          await sleep(delay)
          delay = Math.min(delay * 2, 5000)
          continue
        }
        if (items.length > 1) {
          // Something in the batch fails: halve it until the culprit is alone.
          const half = Math.ceil(items.length / 2)
          await this.write(items.slice(0, half))
          await this.write(items.slice(half))
          return
        }
        const [item] = items
        const attempts = this.recordAttempt(item)
        if (attempts >= this.config.deliveryLimit) {
          const code = 'PROCESSING_FAILED'
          item.outcome = { kind: 'dead', code, reason: `${code}: failed ${attempts} times (${describeError(err)})` }
          this.logger.error({ err, attempts }, 'message keeps failing; dead-lettered')
          return
        }
        this.logger.warn({ err, attempts }, 'message failed; trying again')
        await sleep(Math.min(100 * 2 ** attempts, 5000))
      }
    }
  }

  /** A vehicle.load / vehicle.unload: refused ones are dead-lettered; MySQL being away holds it. */
  private async load (item: Item): Promise<void> {
    const loadParcels = this.writer.loadParcels
    if (loadParcels === undefined) {
      item.outcome = { kind: 'dead', code: 'TYPE_NOT_HANDLED', reason: 'TYPE_NOT_HANDLED: this consumer does not handle vehicle messages' }
      return
    }
    let delay = 100
    for (let attempts = 1; ; attempts++) {
      try {
        const outcome = await loadParcels(item.vehicle)
        item.outcome = outcome.ok ? { kind: 'stored' } : { kind: 'dead', code: outcome.code, reason: `${outcome.code}: ${outcome.message}` }
        return
      } catch (err) {
        if (this.stopping && isDatabaseUnavailable(err)) {
          item.outcome = { kind: 'unsettled' }
          return
        }
        if (!isDatabaseUnavailable(err) && attempts >= this.config.deliveryLimit) {
          item.outcome = { kind: 'dead', code: 'PROCESSING_FAILED', reason: `PROCESSING_FAILED: failed ${attempts} times (${describeError(err)})` }
          return
        }
        this.counters.databaseWaits++
        await sleep(delay)
        delay = Math.min(delay * 2, 5000)
      }
    }
  }

  /** Attempts so far for this message, counting the broker's redeliveries (a crash mid-attempt). */
  private recordAttempt (item: Item): number {
    const key = attemptKey(item.event as EventInput)
    const redelivered = Number(item.delivery.message.properties.headers?.['x-delivery-count'] ?? 0)
    const attempts = Math.max(this.attempts.get(key) ?? 0, Number.isFinite(redelivered) ? redelivered : 0) + 1
    if (this.attempts.size >= MAX_ATTEMPT_KEYS) this.attempts.clear()
    this.attempts.set(key, attempts)
    return attempts
  }

  logSummary (force = false): void {
    const line = JSON.stringify(this.counters.snapshot())
    if (!force && line === this.lastSummary) return
    this.lastSummary = line
    this.logger.info({ queue: this.config.queue, ...this.counters.snapshot() }, 'queue intake summary')
  }
}

const attemptKey = (event: EventInput): string => `${event.sno}\u0000${event.event_id}`

function outcomeOf (result: EventResult): Outcome {
  if (result.result === 'accepted') return { kind: 'stored' }
  if (result.result === 'duplicate') return { kind: 'duplicate' }
  const code = result.code ?? 'EVENT_REJECTED'
  return { kind: 'dead', code, reason: `${code}: ${result.message ?? 'rejected by the write path'}` }
}

/** An error as a reason header: its code or name and message, without any quoted values. */
function describeError (err: unknown): string {
  const e = err as { code?: unknown, name?: unknown, message?: unknown }
  const code = typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'Error'
  const message = typeof e.message === 'string' ? e.message.replace(/'(?:[^'\\]|\\.)*'/g, "'?'").slice(0, 200) : ''
  return message === '' ? code : `${code}: ${message}`
}
