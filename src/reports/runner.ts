import { AsyncLocalStorage } from 'node:async_hooks'
import { AbortMultipartUploadCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { Db } from '../infra/db.js'
import type { RedisClient } from '../infra/redis.js'
import { withRetry, type RetryOptions } from '../infra/retry.js'
import { objectExists } from '../infra/s3.js'
import { exportOrders } from './export.js'
import { acquireLease, type Lease } from './lock.js'
import { slotId, slotIso, slotKeys, type ReportSchedule, type Slot } from './slots.js'
import { buildSummary, type ReportSummary } from './summary.js'

export interface ReportOutcome {
  status: 'done' | 'exists' | 'locked'
  slot: string
  keys: { summary: string, export: string }
  summary?: ReportSummary
  exportBytes?: number
  ms: number
}

export interface RunnerDeps {
  db: Db
  s3: S3Client
  bucket: string
  /** For the per-slot lease; without Redis the run goes ahead (the keys make a rerun harmless). */
  redis: RedisClient | undefined
  schedule: ReportSchedule
  logger: Logger
  retry?: Partial<RetryOptions>
  leaseMs?: number
  /** 0–9; 6 by default. */
  gzipLevel?: number
}

/** The lease of the run whose S3 request this is (async context: reaches lib-storage's parts too). */
const runLease = new AsyncLocalStorage<Lease>()

/** Requests that only read, or clean up (an abort after a lost lease must still go out). */
const UNFENCED = new Set(['HeadObjectCommand', 'GetObjectCommand', 'ListObjectsV2Command', 'HeadBucketCommand', 'AbortMultipartUploadCommand', 'ListPartsCommand', 'ListMultipartUploadsCommand'])

/**
 * Fencing: every S3 write of a report run (each part of the export, its completion, the
 * summary), and each retry of one, first checks that the run's lease is still its own in
 * Redis; if it expired or another runner took it, the write is not sent and the run stops.
 */
function fenceWrites (s3: S3Client): void {
  s3.middlewareStack.add((next, context) => async (args) => {
    const lease = runLease.getStore()
    if (lease !== undefined && !UNFENCED.has(context.commandName ?? '')) await lease.assertHeld()
    return await next(args)
  }, { step: 'finalizeRequest', priority: 'low', name: 'reportLeaseFence', override: true })
}

/**
 * Makes the report of one slot exactly once: a Redis lease keeps a second worker out while it
 * runs, the summary object (written last) marks it done, and every step is retried with
 * backoff. The export is uploaded first, so a summary never points at a missing export.
 */
export class ReportRunner {
  /** Multipart uploads (id → key) whose abort has to be repeated. */
  private readonly orphans = new Map<string, string>()

  constructor (private readonly deps: RunnerDeps) {
    fenceWrites(deps.s3)
  }

  async exists (slot: Slot): Promise<boolean> {
    return await objectExists(this.deps.s3, this.deps.bucket, slotKeys(slot).summary)
  }

  async run (slot: Slot, options: { force?: boolean, signal?: AbortSignal } = {}): Promise<ReportOutcome> {
    const started = performance.now()
    const keys = slotKeys(slot)
    const outcome = (status: ReportOutcome['status'], extra: Partial<ReportOutcome> = {}): ReportOutcome =>
      ({ status, slot: slotIso(slot), keys, ms: Math.round(performance.now() - started), ...extra })
    const log = this.deps.logger.child({ slot: slotIso(slot) })

    // Aborted when the lease is found lost: retries stop, the upload is aborted.
    const fenced = new AbortController()
    const signal = options.signal === undefined ? fenced.signal : AbortSignal.any([options.signal, fenced.signal])
    const lease = await this.lease(slot, log, (err) => fenced.abort(err))
    if (lease === null) {
      log.info('another worker is making this report')
      return outcome('locked')
    }
    const work = async (): Promise<ReportOutcome> => {
      const retry = this.retryOptions(log, signal)
      if (options.force !== true && await withRetry(async () => await this.exists(slot), retry)) return outcome('exists')
      await this.abortOrphans()

      const exported = await withRetry(async () => await exportOrders(this.deps.db, this.deps.s3, { bucket: this.deps.bucket, key: keys.export }, {
        signal,
        gzipLevel: this.deps.gzipLevel,
        onOrphan: (id) => this.orphans.set(id, keys.export)
      }), retry)
      const previous = this.deps.schedule.previous(slot)
      const summary = await withRetry(async () => await buildSummary(this.deps.db, slot, previous), retry)
      await withRetry(async () => await this.deps.s3.send(new PutObjectCommand({
        Bucket: this.deps.bucket,
        Key: keys.summary,
        Body: JSON.stringify(summary, null, 2),
        ContentType: 'application/json; charset=utf-8'
      })), retry)
      await this.abortOrphans()
      const done = outcome('done', { summary, exportBytes: exported.bytes })
      // For /metrics (logistics_last_report_timestamp_seconds); losing it costs nothing else.
      await this.deps.redis?.set('metrics:report:last', String(Math.floor(Date.now() / 1000))).catch(() => {})
      log.info({ keys, exportBytes: exported.bytes, orders: summary.totalOrders, ms: done.ms }, 'report stored')
      if (summary.totalOrders === 0) log.info('there are no orders yet, so this report is empty; the next slot\'s will count what arrives until then')
      return done
    }
    try {
      return lease === undefined ? await work() : await runLease.run(lease, work)
    } catch (err) {
      const lost = lease?.lost
      if (lost !== undefined) {
        log.error({ err: lost, keys }, 'REPORT FAILED: the lease was lost, so this run stopped before its next write; the runner that holds it now makes the report')
        throw lost
      }
      log.error({ err, keys }, 'REPORT FAILED: it will be made again at the next tick or the next start')
      throw err
    } finally {
      await lease?.release()
    }
  }

  /** Makes the latest slot's report if it is missing (after downtime or a failed run). */
  async catchUp (now = new Date(), signal?: AbortSignal): Promise<ReportOutcome | null> {
    const slot = this.deps.schedule.latest(now)
    if (await this.exists(slot)) return null
    this.deps.logger.warn({ slot: slotIso(slot) }, 'report missing for the latest slot: making it now')
    return await this.run(slot, { signal })
  }

  /** Repeats the abort of multipart uploads that failed while S3 was unreachable. */
  private async abortOrphans (): Promise<void> {
    for (const [uploadId, key] of [...this.orphans]) {
      try {
        await this.deps.s3.send(new AbortMultipartUploadCommand({ Bucket: this.deps.bucket, Key: key, UploadId: uploadId }))
        this.orphans.delete(uploadId)
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchUpload') this.orphans.delete(uploadId)
      }
    }
  }

  private async lease (slot: Slot, log: Logger, onLost: (err: Error) => void): Promise<Lease | null | undefined> {
    const redis = this.deps.redis
    if (redis === undefined || redis.status !== 'ready') {
      log.warn('redis unavailable: running without the report lease')
      return undefined
    }
    try {
      return await acquireLease(redis, `reports:lock:${slotId(slot)}`, this.deps.leaseMs ?? 120_000, { onLost })
    } catch (err) {
      log.warn({ err }, 'could not take the report lease: running without it')
      return undefined
    }
  }

  private retryOptions (log: Logger, signal?: AbortSignal): RetryOptions {
    return {
      attempts: 6,
      baseDelayMs: 1000,
      maxDelayMs: 30_000,
      signal,
      onRetry: (err, attempt, delayMs) => log.error({ err, attempt, delayMs }, 'report step failed; retrying'),
      ...this.deps.retry
    }
  }
}
