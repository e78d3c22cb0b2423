import { createTask, type ScheduledTask } from 'node-cron'
import { dateInZone, isoInZone, utcOffsetMinutes } from '../hubs/local-time.js'

/** One scheduled report: the instant it is for, named by its local date and time. */
export interface Slot {
  at: Date
  timezone: string
  /** YYYY-MM-DD in the report zone. */
  date: string
  /** HHMM in the report zone. */
  time: string
}

const MINUTE = 60_000
const LOOK_BACK_MINUTES = 35 * 24 * 60

export function slotAt (at: Date, timezone: string): Slot {
  const local = new Date(at.getTime() + utcOffsetMinutes(at, timezone) * MINUTE).toISOString()
  return { at, timezone, date: dateInZone(at, timezone), time: local.slice(11, 13) + local.slice(14, 16) }
}

/** ISO-8601 with the zone's offset, e.g. 2026-11-22T08:00:00.000+08:00. */
export const slotIso = (slot: Slot): string => isoInZone(slot.at, slot.timezone)

/** Slot-derived keys: a rerun overwrites its own objects and never makes a second copy. */
export function slotKeys (slot: Slot): { summary: string, export: string } {
  const base = `reports/${slot.date}/${slot.time}`
  return { summary: `${base}-summary.json`, export: `${base}-orders.csv.gz` }
}

export const REPORT_KEY = /^reports\/(\d{4}-\d{2}-\d{2})\/(\d{4})-(summary\.json|orders\.csv\.gz)$/

/** The REPORT_CRON schedule in REPORT_TIMEZONE: which slot is the latest, which came before. */
export class ReportSchedule {
  private readonly matcher: ScheduledTask

  constructor (readonly cron: string, readonly timezone: string) {
    // A task that is never started: node-cron's own matcher, so that slots agree with its ticks.
    this.matcher = createTask(cron, () => {}, { timezone })
  }

  /** The latest slot at or before `now`. */
  latest (now = new Date()): Slot {
    return this.scanBack(Math.floor(now.getTime() / MINUTE) * MINUTE)
  }

  /** The slot before `slot`. */
  previous (slot: Slot): Slot {
    return this.scanBack(slot.at.getTime() - MINUTE)
  }

  /** When the next slot falls. */
  next (): Date | null {
    return this.matcher.getNextRun()
  }

  private scanBack (fromMs: number): Slot {
    for (let i = 0, t = fromMs; i < LOOK_BACK_MINUTES; i++, t -= MINUTE) {
      if (this.matcher.match(new Date(t))) return slotAt(new Date(t), this.timezone)
    }
    throw new Error(`REPORT_CRON "${this.cron}" has no slot in the last 35 days`)
  }
}
