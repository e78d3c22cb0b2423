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
  /**
   * The zone's UTC offset (`-0400`, `+0530`) when this local time happens twice in the zone
   * (a fall-back night), so that the two slots have keys of their own; `''` otherwise.
   */
  offset: string
}

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
const LOOK_BACK_MINUTES = 35 * 24 * 60

/** `+0800`, `-0400`, `+0530`: the form used in keys. */
export function offsetTag (minutes: number): string {
  const abs = Math.abs(minutes)
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`
}

/**
 * Every instant whose local wall-clock time in `timezone` is `wallMs` (a local time written
 * as if it were UTC): none in a spring-forward gap, two on a fall-back night, one otherwise.
 */
export function instantsAtWallTime (wallMs: number, timezone: string): Date[] {
  const offsets = new Set([-DAY, 0, DAY].map((d) => utcOffsetMinutes(new Date(wallMs + d), timezone)))
  const found = new Set<number>()
  for (const offset of offsets) {
    const t = wallMs - offset * MINUTE
    if (utcOffsetMinutes(new Date(t), timezone) === offset) found.add(t)
  }
  return [...found].sort((a, b) => a - b).map((t) => new Date(t))
}

export function slotAt (at: Date, timezone: string): Slot {
  const offsetMinutes = utcOffsetMinutes(at, timezone)
  const wallMs = at.getTime() + offsetMinutes * MINUTE
  const local = new Date(wallMs).toISOString()
  const repeated = instantsAtWallTime(wallMs, timezone).length > 1
  return { at, timezone, date: dateInZone(at, timezone), time: local.slice(11, 13) + local.slice(14, 16), offset: repeated ? offsetTag(offsetMinutes) : '' }
}

/** ISO-8601 with the zone's offset, e.g. 2026-11-22T08:00:00.000+08:00. */
export const slotIso = (slot: Slot): string => isoInZone(slot.at, slot.timezone)

/** `2026-11-22T0800`, or `2026-11-01T0130-0400` for a local time that happens twice. */
export const slotId = (slot: Slot): string => `${slot.date}T${slot.time}${slot.offset}`

/**
 * Slot-derived keys: a rerun overwrites its own objects and never makes a second copy. A local
 * time that happens twice (DST fall-back) carries its UTC offset, so the two instants never
 * share a key: reports/2026-11-01/0130-0400-summary.json and reports/2026-11-01/0130-0500-….
 */
export function slotKeys (slot: Slot): { summary: string, export: string } {
  const base = `reports/${slot.date}/${slot.time}${slot.offset}`
  return { summary: `${base}-summary.json`, export: `${base}-orders.csv.gz` }
}

/** Report keys: date, HHMM, the optional UTC offset of a repeated local time, the kind. */
export const REPORT_KEY = /^reports\/(\d{4}-\d{2}-\d{2})\/(\d{4})([+-]\d{4})?-(summary\.json|orders\.csv\.gz)$/

/**
 * A slot named on the command line: `2026-11-22T08:00` (local time in the zone), or with the
 * UTC offset (`2026-11-01T01:30-04:00`, `…T0130-0400`) when the local time happens twice.
 * Returns the instant; the caller checks that it is a slot of the schedule.
 */
export function parseSlotTime (value: string, timezone: string): Date {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):?(\d{2})(?:(Z)|([+-])(\d{2}):?(\d{2}))?$/.exec(value)
  if (match === null) throw new Error(`--slot must look like 2026-11-22T08:00 (local time in ${timezone}), optionally followed by the UTC offset (2026-11-01T01:30-04:00)`)
  const [y, mo, d, h, mi] = match.slice(1, 6).map(Number)
  const wallMs = Date.UTC(y, mo - 1, d, h, mi)
  if (new Date(wallMs).getUTCDate() !== d || h > 23 || mi > 59) throw new Error(`--slot ${value} is not a valid date and time`)
  const candidates = instantsAtWallTime(wallMs, timezone)
  const label = (at: Date): string => isoInZone(at, timezone).replace(':00.000', '')
  if (match[6] !== undefined || match[7] !== undefined) {
    const offset = match[6] !== undefined ? 0 : (match[7] === '-' ? -1 : 1) * (Number(match[8]) * 60 + Number(match[9]))
    const at = candidates.find((c) => utcOffsetMinutes(c, timezone) === offset)
    if (at === undefined) {
      throw new Error(`--slot ${value}: ${timezone} is not at UTC${offsetTag(offset)} at that local time${candidates.length > 0 ? ` (it is ${candidates.map(label).join(' or ')})` : ''}`)
    }
    return at
  }
  if (candidates.length === 0) throw new Error(`--slot ${value}: that local time does not exist in ${timezone} (the clocks skip it)`)
  if (candidates.length > 1) {
    throw new Error(`--slot ${value} happens twice in ${timezone}; add the UTC offset: ${candidates.map(label).join(' or ')}`)
  }
  return candidates[0]
}

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

  /** Whether `at` is one of the schedule's slots. */
  isSlot (at: Date): boolean {
    return at.getTime() % MINUTE === 0 && this.matcher.match(at)
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
