import type { FastifyBaseLogger as Logger } from 'fastify'
import { CompiledQuery, sql } from 'kysely'
import { Webhook } from 'standardwebhooks'
import type { DatabaseConfig } from '../config.js'
import { createDatabase, type DatabaseHandle } from '../infra/db.js'
import { changeView } from '../live/routes.js'
import { ChangeRelay, type Change } from '../writes/change-relay.js'

export interface DispatcherOptions {
  /** The first retry's delay; later ones grow from it (5 s: 5 s, 30 s, 2 min, 5 min, 30 min, 1 h, 2 h, 4 h, 8 h…). */
  retryBaseMs: number
  /** After this long failing without a success, the endpoint is disabled. */
  giveUpAfterMs: number
  timeoutMs: number
  concurrency: number
  intervalMs: number
}

export const DEFAULT_DISPATCHER: DispatcherOptions = {
  retryBaseMs: 5000,
  giveUpAfterMs: 24 * 3_600_000,
  timeoutMs: 10_000,
  concurrency: 16,
  intervalMs: 250
}

/** Multiples of the base delay, attempt after attempt (the last one repeats). */
const BACKOFF = [1, 6, 24, 60, 360, 720, 1440, 2880, 5760]

interface Due {
  id: number
  webhook_id: number
  change_id: number
  sno: number
  seq: number
  attempts: number
  url: string
  secret: string
  failing_since: Date | null
  kind: string
  payload: string
  created_at: Date
}

/** The delay before attempt `attempts + 1`, with ±20 % jitter so that retries do not come in waves. */
export function retryDelayMs (attempts: number, baseMs: number, random = Math.random): number {
  const factor = BACKOFF[Math.min(attempts, BACKOFF.length) - 1] ?? 1
  return Math.round(baseMs * factor * (0.8 + 0.4 * random()))
}

/**
 * Webhook deliveries, at least once, from the change log. A relay (one leader among the worker
 * processes, its position saved) turns each committed change into one delivery per active
 * endpoint; the sender posts due deliveries signed per Standard Webhooks, for each endpoint
 * and parcel in the order of the parcel's change sequence (a change waits until the one
 * before it has been delivered or given up), retries with backoff and jitter, stops an endpoint
 * that answers 410 or has failed for a day, and records every attempt.
 */
export class WebhookDispatcher {
  private readonly lock: DatabaseHandle
  private readonly relay: ChangeRelay
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private readonly signers = new Map<string, Webhook>()

  constructor (private readonly database: DatabaseHandle, config: DatabaseConfig, private readonly logger: Logger, private readonly options: DispatcherOptions = DEFAULT_DISPATCHER) {
    this.lock = createDatabase({ ...config, poolSize: 1, queueLimit: 10 })
    this.relay = new ChangeRelay(this.lock.db, logger, {
      name: 'webhooks',
      intervalMs: options.intervalMs,
      deliver: async (changes) => { await this.fanOut(changes); return true }
    })
  }

  start (): void {
    this.relay.start()
    const loop = (delay: number): void => {
      if (this.stopped) return
      this.timer = setTimeout(() => {
        this.running = this.sendDue().then((sent) => loop(sent > 0 ? 0 : this.options.intervalMs), (err: unknown) => {
          this.logger.warn({ err }, 'webhook deliveries: a round failed; retrying')
          loop(this.options.intervalMs * 4)
        })
      }, delay)
      this.timer.unref()
    }
    loop(this.options.intervalMs)
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
    await this.relay.stop()
    await this.lock.close()
  }

  /** One round of the relay: new changes become deliveries (for tests; start() runs it by itself). */
  async collect (): Promise<void> {
    await this.relay.tick()
  }

  private async fanOut (changes: readonly Change[]): Promise<void> {
    const ids = changes.map((c) => c.id)
    await this.database.db.executeQuery(CompiledQuery.raw(
      `INSERT IGNORE INTO webhook_deliveries (webhook_id, change_id, sno, seq)
       SELECT w.id, c.id, c.sno, c.seq FROM change_log c JOIN webhooks w ON w.status = 'active' AND c.id > w.start_change_id
       WHERE c.id IN (${ids.map(() => '?').join(', ')})`, ids))
  }

  /** Sends what is due now (only while this process leads); the number of attempts made. */
  async sendDue (): Promise<number> {
    if (!this.relay.isLeader) return 0
    const { rows } = await sql<Due>`
      SELECT d.id, d.webhook_id, d.change_id, d.sno, d.seq, d.attempts, w.url, w.secret, w.failing_since, c.kind, c.payload, c.created_at
      FROM webhook_deliveries d
      JOIN webhooks w ON w.id = d.webhook_id AND w.status = 'active'
      JOIN change_log c ON c.id = d.change_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= NOW(3)
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
          WHERE e.webhook_id = d.webhook_id AND e.sno = d.sno AND e.status = 'pending' AND e.seq < d.seq)
      ORDER BY d.id LIMIT 200`.execute(this.database.db)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < rows.length) await this.attempt(rows[next++])
    }
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, rows.length) }, worker))
    return rows.length
  }

  private signer (secret: string): Webhook {
    let signer = this.signers.get(secret)
    if (signer === undefined) this.signers.set(secret, signer = new Webhook(secret))
    return signer
  }

  private async attempt (due: Due): Promise<void> {
    const db = this.database.db
    const now = new Date()
    const change: Change = { id: Number(due.change_id), sno: Number(due.sno), seq: due.seq, kind: due.kind, payload: due.payload, created_at: due.created_at }
    const body = JSON.stringify({ type: 'tracking.updated', timestamp: now.toISOString(), data: changeView(change) })
    const messageId = `msg_${due.webhook_id}_${due.change_id}`
    const started = performance.now()
    let status: number | undefined
    let error: string | undefined
    try {
      const res = await fetch(due.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'logistics-tracking-webhooks/1',
          'webhook-id': messageId,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': this.signer(due.secret).sign(messageId, now, body)
        }
      })
      status = res.status
      await res.body?.cancel()
    } catch (err) {
      error = ((err as Error).name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : (err as Error).message).slice(0, 250)
    }
    const ms = Math.round(performance.now() - started)
    await sql`INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms)
      VALUES (${due.id}, ${now}, ${status ?? null}, ${error ?? null}, ${ms})`.execute(db)

    if (status !== undefined && status >= 200 && status < 300) {
      await sql`UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status_code = ${status}, last_error = NULL, delivered_at = ${new Date()} WHERE id = ${due.id}`.execute(db)
      if (due.failing_since !== null) await sql`UPDATE webhooks SET failing_since = NULL WHERE id = ${due.webhook_id}`.execute(db)
      return
    }
    if (status === 410) {
      await sql`UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, last_status_code = 410, last_error = 'the endpoint answered 410 Gone' WHERE id = ${due.id}`.execute(db)
      await this.disable(due.webhook_id, 'the endpoint answered 410 Gone')
      return
    }
    const attempts = due.attempts + 1
    const failingSince = due.failing_since ?? now
    await sql`UPDATE webhook_deliveries SET attempts = ${attempts}, last_status_code = ${status ?? null}, last_error = ${error ?? `HTTP ${status}`},
      next_attempt_at = ${new Date(now.getTime() + retryDelayMs(attempts, this.options.retryBaseMs))} WHERE id = ${due.id}`.execute(db)
    if (due.failing_since === null) await sql`UPDATE webhooks SET failing_since = ${now} WHERE id = ${due.webhook_id} AND failing_since IS NULL`.execute(db)
    if (now.getTime() - failingSince.getTime() > this.options.giveUpAfterMs) {
      await this.disable(due.webhook_id, `failing since ${failingSince.toISOString()} without a success`)
    }
  }

  private async disable (webhookId: number, reason: string): Promise<void> {
    await sql`UPDATE webhooks SET status = 'disabled', disabled_reason = ${reason} WHERE id = ${webhookId}`.execute(this.database.db)
    this.logger.warn({ webhook: webhookId, reason }, 'webhook endpoint disabled')
  }
}
