import { schedule as cronSchedule } from 'node-cron'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { ReportOutcome, ReportRunner } from './runner.js'
import { slotId, slotIso, type ReportSchedule, type Slot } from './slots.js'

/** One tick: the slot it fired for, then the slot before if that one is still missing. */
export async function reportTick (runner: ReportRunner, schedule: ReportSchedule, firedAt: Date, signal?: AbortSignal): Promise<void> {
  const slot = schedule.latest(firedAt)
  await runner.run(slot, { signal })
  const previous = schedule.previous(slot)
  if (!await runner.exists(previous)) await runner.run(previous, { signal })
}

export interface SchedulerOptions {
  /** The clock (tests drive it). */
  now?: () => Date
  /** How often the worker looks for a slot whose time passed without a report: every minute. */
  checkEveryMs?: number
  /** A slot whose run failed is tried again by the periodic check after this long (10 min). */
  retryFailedMs?: number
  /** Called with every run's outcome. */
  onOutcome?: (outcome: ReportOutcome) => void
}

const KEEP_DONE = 16

/**
 * Runs the report at every REPORT_CRON tick, in REPORT_TIMEZONE, and does not depend on the
 * tick alone: node-cron drops a tick that fires late (a busy or paused process), so the worker
 * also checks every minute, and whenever node-cron reports a missed tick, that the latest slot
 * and the one before have their reports, and makes any that is missing. At start-up the same
 * check makes a report missed while the worker was down. A slot seen done is remembered, so
 * the minute check costs nothing between slots.
 */
export function startReportScheduler (runner: ReportRunner, schedule: ReportSchedule, logger: Logger, options: SchedulerOptions = {}): { stop: () => Promise<void>, idle: () => Promise<void>, check: () => Promise<void> } {
  const now = options.now ?? (() => new Date())
  const retryFailedMs = options.retryFailedMs ?? 600_000
  const controller = new AbortController()
  const done = new Set<string>()
  const failedAt = new Map<string, number>()
  let running: Promise<unknown> = Promise.resolve()
  let queued: Promise<unknown> | undefined

  const markDone = (slot: Slot): void => {
    done.add(slotId(slot))
    failedAt.delete(slotId(slot))
    while (done.size > KEEP_DONE) done.delete(done.values().next().value as string)
  }

  const makeIfMissing = async (slot: Slot, reason: string): Promise<void> => {
    const id = slotId(slot)
    if (done.has(id) || controller.signal.aborted) return
    const failed = failedAt.get(id)
    if (reason === 'check' && failed !== undefined && now().getTime() - failed < retryFailedMs) return
    if (await runner.exists(slot)) {
      markDone(slot)
      return
    }
    if (reason !== 'tick' && reason !== 'start') logger.warn({ slot: slotIso(slot), reason }, 'the report of a slot whose time has passed is missing: making it now')
    try {
      const outcome = await runner.run(slot, { signal: controller.signal })
      if (outcome.status !== 'locked') markDone(slot)
      options.onOutcome?.(outcome)
    } catch (err) {
      failedAt.set(id, now().getTime())
      throw err
    }
  }

  /** The slot before the latest first (it is older), then the latest. */
  const check = async (reason: string): Promise<void> => {
    const latest = schedule.latest(now())
    let failure: unknown
    for (const slot of [schedule.previous(latest), latest]) {
      try {
        await makeIfMissing(slot, reason)
      } catch (err) {
        failure ??= err
      }
    }
    if (failure !== undefined) throw failure
  }

  /** Checks run one at a time; a check asked for while one waits to start is the same check. */
  const enqueue = (reason: string): Promise<unknown> => {
    if (queued !== undefined) return queued
    const next = running.then(async () => {
      queued = undefined
      if (controller.signal.aborted) return
      await check(reason)
    }).catch((err: unknown) => {
      if (!controller.signal.aborted) logger.error({ err, reason }, 'report job failed')
    })
    queued = next
    running = next
    return next
  }

  const task = cronSchedule(schedule.cron, async () => { await enqueue('tick') }, { name: 'reports', timezone: schedule.timezone, noOverlap: true })
  task.on('execution:missed', (context) => {
    logger.warn({ at: context.date }, 'node-cron dropped a late tick: checking the slot now')
    enqueue('missed').catch(() => {})
  })
  const timer = setInterval(() => { enqueue('check').catch(() => {}) }, options.checkEveryMs ?? 60_000)
  timer.unref()

  enqueue('start').catch(() => {})
  logger.info({ cron: schedule.cron, timezone: schedule.timezone, next: schedule.next()?.toISOString() }, 'report schedule started')

  return {
    idle: async () => { await running },
    check: async () => { await enqueue('check') },
    stop: async () => {
      controller.abort()
      clearInterval(timer)
      await task.stop()
      await running
    }
  }
}
