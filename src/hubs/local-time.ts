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

const pad2 = (n: number): string => n < 10 ? `0${n}` : String(n)

/**
 * `new Date(ms).toISOString().slice(0, 23)` (2023-12-02T09:15:00.000), built from the date's
 * fields: V8 formats toISOString through printf, which was a tenth of the CPU of a /query miss
 * (two per event). Years outside 0000-9999 and invalid dates go to toISOString itself.
 */
function isoWithoutZone (ms: number): string {
  const d = new Date(ms)
  const year = d.getUTCFullYear()
  if (!(year >= 1000 && year <= 9999)) return d.toISOString().slice(0, 23)
  const milli = d.getUTCMilliseconds()
  return `${year}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`
}

/** ISO-8601 with the zone's offset: 2023-12-02T09:15:00.000+08:00. Its first ten characters are dateInZone's. */
export function isoInZone (date: Date, timeZone: string): string {
  const offset = utcOffsetMinutes(date, timeZone)
  const local = isoWithoutZone(date.getTime() + offset * 60_000)
  if (offset === 0) return `${local}+00:00`
  const abs = Math.abs(offset)
  const hh = String(Math.floor(abs / 60)).padStart(2, '0')
  const mm = String(abs % 60).padStart(2, '0')
  return `${local}${offset < 0 ? '-' : '+'}${hh}:${mm}`
}

/** The calendar date (YYYY-MM-DD) of an instant in a zone. */
export function dateInZone (date: Date, timeZone: string): string {
  return isoWithoutZone(date.getTime() + utcOffsetMinutes(date, timeZone) * 60_000).slice(0, 10)
}

/** YYYY-MM-DD plus a number of days. */
export function addDays (day: string, days: number): string {
  const date = new Date(`${day}T00:00:00.000Z`)
  date.setUTCDate(date.getUTCDate() + days)
  return date.toISOString().slice(0, 10)
}
