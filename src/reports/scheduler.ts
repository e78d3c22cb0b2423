import { schedule as cronSchedule } from 'node-cron'
import type { FastifyBaseLogger as Logger } from 'fastify'
import type { ReportRunner } from './runner.js'
import type { ReportSchedule } from './slots.js'

/** One tick: the slot it fired for, then the slot before if that one is still missing. */
export async function reportTick (runner: ReportRunner, schedule: ReportSchedule, firedAt: Date, signal?: AbortSignal): Promise<void> {
  const slot = schedule.latest(firedAt)
  await runner.run(slot, { signal })
  const previous = schedule.previous(slot)
  if (!await runner.exists(previous)) await runner.run(previous, { signal })
}

/**
 * Runs the report at every REPORT_CRON tick, in REPORT_TIMEZONE. At start-up, and at every
 * tick, the slot before is checked as well: a report missed while the worker was down, or one
 * whose run failed, is made then.
 */
export function startReportScheduler (runner: ReportRunner, schedule: ReportSchedule, logger: Logger): { stop: () => Promise<void>, idle: () => Promise<void> } {
  const controller = new AbortController()
  let running: Promise<unknown> = Promise.resolve()

  const work = (label: string, job: () => Promise<unknown>): Promise<unknown> => {
    running = running.then(job).catch((err: unknown) => {
      if (!controller.signal.aborted) logger.error({ err, job: label }, 'report job failed')
    })
    return running
  }

  const catchUp = async (): Promise<void> => {
    if (controller.signal.aborted) return
    await runner.catchUp(new Date(), controller.signal)
  }

  const task = cronSchedule(schedule.cron, async (context) => {
    await work('tick', async () => { await reportTick(runner, schedule, context.date, controller.signal) })
  }, { name: 'reports', timezone: schedule.timezone, noOverlap: true })

  work('catch-up', catchUp).catch(() => {})
  logger.info({ cron: schedule.cron, timezone: schedule.timezone, next: schedule.next()?.toISOString() }, 'report schedule started')

  return {
    idle: async () => { await running },
    stop: async () => {
      controller.abort()
      await task.stop()
      await running
    }
  }
}
