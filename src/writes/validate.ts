import { TRACKING_STATUSES, type TrackingStatus } from '../tracking/statuses.js'
import type { EventInput, EventResult } from './types.js'

/** How far in the future an event's time may be (clock skew between devices and us). */
export const MAX_FUTURE_MS = 5 * 60_000
/** Events from before this are taken for a clock that was never set. */
const EARLIEST = Date.parse('2000-01-01T00:00:00Z')
const EVENT_ID = /^[\x21-\x7e]{1,64}$/
const VEHICLE_ID = /^[A-Za-z0-9_.-]{1,32}$/
// ISO-8601 date and time with seconds (fraction optional) and an explicit offset.
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

export type Parsed = { ok: true, event: EventInput } | { ok: false, rejection: EventResult }

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A positive integer up to 2^53 − 1, given as a number or as decimal digits. */
export function parseSno (value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : NaN
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/** Parses an ISO-8601 time that names its offset; undefined otherwise. */
export function parseTime (value: unknown): Date | undefined {
  if (typeof value !== 'string' || !ISO_WITH_OFFSET.test(value)) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : new Date(ms)
}

/**
 * One tracking event as sent (a POST /events item or a queue message's fields), checked field by
 * field: the event, or a rejection with a code and a message that says what is wrong.
 */
export function parseEvent (raw: unknown, now = Date.now()): Parsed {
  const eventId = isObject(raw) && typeof raw.event_id === 'string' ? raw.event_id : ''
  const reject = (code: NonNullable<EventResult['code']>, message: string): Parsed =>
    ({ ok: false, rejection: { event_id: eventId, result: 'rejected', code, message } })
  if (!isObject(raw)) return reject('EVENT_INVALID', 'An event must be a JSON object')
  if (!EVENT_ID.test(eventId)) return reject('EVENT_INVALID', 'event_id must be 1 to 64 printable ASCII characters')
  const sno = parseSno(raw.sno)
  if (sno === undefined) return reject('EVENT_INVALID', 'sno must be a positive integer')
  if (typeof raw.status !== 'string' || !(TRACKING_STATUSES as readonly string[]).includes(raw.status)) {
    return reject('STATUS_INVALID', `status must be one of: ${TRACKING_STATUSES.join(', ')}`)
  }
  const location = raw.location_id
  if (typeof location !== 'number' || !Number.isSafeInteger(location) || location < 1) return reject('EVENT_INVALID', 'location_id must be a positive integer')
  const occurredAt = parseTime(raw.occurred_at)
  if (occurredAt === undefined) return reject('TIME_INVALID', 'occurred_at must be an ISO-8601 time with an offset, such as 2026-11-29T08:15:00+08:00')
  if (occurredAt.getTime() > now + MAX_FUTURE_MS) return reject('TIME_INVALID', 'occurred_at may be at most 5 minutes in the future')
  if (occurredAt.getTime() < EARLIEST) return reject('TIME_INVALID', 'occurred_at is before 2000')
  const vehicle = raw.vehicle_id
  if (vehicle !== undefined && vehicle !== null && (typeof vehicle !== 'string' || !VEHICLE_ID.test(vehicle))) {
    return reject('EVENT_INVALID', 'vehicle_id must be 1 to 32 letters, digits, dots, dashes or underscores')
  }
  const event: EventInput = { event_id: eventId, sno, status: raw.status as TrackingStatus, location_id: location, occurred_at: occurredAt }
  if (typeof vehicle === 'string') event.vehicle_id = vehicle
  return { ok: true, event }
}
