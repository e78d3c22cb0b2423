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

/** Minutes east of UTC for a zone at an instant, e.g. 480 for Asia/Taipei. */
export function utcOffsetMinutes (date: Date, timeZone: string): number {
  const part = offsetFormatter(timeZone).formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT'
  const match = /GMT([+-])(\d{2}):(\d{2})/.exec(part)
  if (match === null) return 0
  const minutes = Number(match[2]) * 60 + Number(match[3])
  return match[1] === '-' ? -minutes : minutes
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
