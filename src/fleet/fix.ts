import { MAX_FUTURE_MS, parseTime } from '../writes/validate.js'

/** One GPS fix, checked. */
export interface Fix {
  lat: number
  lng: number
  /** The device's time of the fix. */
  at: Date
  /** km/h */
  speed: number | null
  /** degrees, 0 = north */
  heading: number | null
  /** metres */
  accuracy: number | null
}

export type FixRefusal = 'PAYLOAD_INVALID' | 'COORDINATES_INVALID' | 'TIME_INVALID' | 'TIME_IN_FUTURE' | 'VEHICLE_NOT_FOUND' | 'TOPIC_INVALID'

export type ParsedFix = { ok: true, fix: Fix } | { ok: false, code: FixRefusal, message: string }

/** Vehicle ids: what a topic level and the vehicles table both hold. */
export const VEHICLE_ID = /^[A-Za-z0-9_.-]{1,32}$/
/** Fixes from before this are taken for a clock that was never set. */
const EARLIEST = Date.parse('2000-01-01T00:00:00Z')

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

function optional (raw: Record<string, unknown>, name: string, min: number, max: number): number | null | false {
  const value = raw[name]
  if (value === undefined || value === null) return null
  return finite(value) && value >= min && value <= max ? value : false
}

/**
 * A position payload `{ lat, lng, ts, speed?, heading?, accuracy? }` (MQTT and HTTP alike):
 * the fix, or why it is refused. `ts` is ISO-8601 with an offset or epoch milliseconds; more than
 * 5 minutes ahead of `now` is refused (TIME_IN_FUTURE).
 */
export function parseFix (raw: unknown, now = Date.now()): ParsedFix {
  if (!isObject(raw)) return { ok: false, code: 'PAYLOAD_INVALID', message: 'A position must be a JSON object { lat, lng, ts, speed?, heading?, accuracy? }' }
  const { lat, lng } = raw
  if (!finite(lat) || !finite(lng)) return { ok: false, code: 'PAYLOAD_INVALID', message: 'lat and lng must be numbers' }
  if (lat < -90 || lat > 90 || lng < -180 || lng > 180) return { ok: false, code: 'COORDINATES_INVALID', message: 'lat must be within ±90 and lng within ±180' }
  let at: Date | undefined
  if (typeof raw.ts === 'number') at = Number.isSafeInteger(raw.ts) && raw.ts >= 0 ? new Date(raw.ts) : undefined
  else at = parseTime(raw.ts)
  if (at === undefined) return { ok: false, code: 'TIME_INVALID', message: 'ts must be an ISO-8601 time with an offset or epoch milliseconds' }
  if (at.getTime() < EARLIEST) return { ok: false, code: 'TIME_INVALID', message: 'ts is before 2000' }
  if (at.getTime() > now + MAX_FUTURE_MS) return { ok: false, code: 'TIME_IN_FUTURE', message: 'ts may be at most 5 minutes in the future' }
  const speed = optional(raw, 'speed', 0, 500)
  const heading = optional(raw, 'heading', 0, 360)
  const accuracy = optional(raw, 'accuracy', 0, 1_000_000)
  if (speed === false || heading === false || accuracy === false) {
    return { ok: false, code: 'PAYLOAD_INVALID', message: 'speed (0-500 km/h), heading (0-360°) and accuracy (metres, ≥ 0) must be numbers when present' }
  }
  return { ok: true, fix: { lat, lng, at, speed, heading, accuracy } }
}

/** The vehicle id of a topic `<prefix>/<vehicle_id>/position`, or undefined. */
export function vehicleOfTopic (topic: string, prefix: string): string | undefined {
  if (!topic.startsWith(prefix + '/') || !topic.endsWith('/position')) return undefined
  const id = topic.slice(prefix.length + 1, -'/position'.length)
  return VEHICLE_ID.test(id) ? id : undefined
}
