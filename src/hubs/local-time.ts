/**
 * Event times are stored in UTC and shown in the hub's own zone, so that a customer in Taipei
 * reads the time on the parcel label and no timestamp is ambiguous.
 */

const offsetFormatters = new Map<string, Intl.DateTimeFormat>()

function offsetFormatter (timeZone: string): Intl.DateTimeFormat {
  let formatter = offsetFormatters.get(timeZone)
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' })
    offsetFormatters.set(timeZone, formatter)
  }
  return formatter
}

// Offsets change only at DST and policy changes, always on quarter hours: remember them per
// zone and quarter hour (Intl's formatToParts is the costliest step in formatting a timeline).
const QUARTER_HOUR = 900_000
const offsets = new Map<string, Map<number, number>>()

/** Minutes east of UTC for a zone at an instant, e.g. 480 for Asia/Taipei. */
export function utcOffsetMinutes (date: Date, timeZone: string): number {
  let zone = offsets.get(timeZone)
  if (zone === undefined) {
    zone = new Map()
    offsets.set(timeZone, zone)
  }
  const quarter = Math.floor(date.getTime() / QUARTER_HOUR)
  let minutes = zone.get(quarter)
  if (minutes === undefined) {
    const part = offsetFormatter(timeZone).formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT'
    const match = /GMT([+-])(\d{2}):(\d{2})/.exec(part)
    minutes = match === null ? 0 : (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3]))
    if (zone.size >= 100_000) zone.clear()
    zone.set(quarter, minutes)
  }
  return minutes
}

/** ISO-8601 with the zone's offset: 2023-12-02T09:15:00.000+08:00. */
export function isoInZone (date: Date, timeZone: string): string {
  const offset = utcOffsetMinutes(date, timeZone)
  const local = new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 23)
  if (offset === 0) return `${local}+00:00`
  const abs = Math.abs(offset)
  const hh = String(Math.floor(abs / 60)).padStart(2, '0')
  const mm = String(abs % 60).padStart(2, '0')
  return `${local}${offset < 0 ? '-' : '+'}${hh}:${mm}`
}

/** The calendar date (YYYY-MM-DD) of an instant in a zone. */
export function dateInZone (date: Date, timeZone: string): string {
  return new Date(date.getTime() + utcOffsetMinutes(date, timeZone) * 60_000).toISOString().slice(0, 10)
}

/** YYYY-MM-DD plus a number of days. */
export function addDays (day: string, days: number): string {
  const date = new Date(`${day}T00:00:00.000Z`)
  date.setUTCDate(date.getUTCDate() + days)
  return date.toISOString().slice(0, 10)
}
