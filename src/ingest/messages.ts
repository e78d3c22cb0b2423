import { parseEvent } from '../writes/validate.js'
import type { EventInput } from '../writes/types.js'

/**
 * What one queue message asks for, decided from its body alone: an event to store, a type to
 * acknowledge and skip (EVENTS_TO_OMIT), or poison that can never succeed (dead-lettered at
 * once with its reason). Reasons carry a code and a message, never the message's content.
 */
export type Decoded =
  | { kind: 'event', event: EventInput }
  /** A vehicle.load / vehicle.unload message, checked by the fleet's loadParcels. */
  | { kind: 'vehicle', body: unknown }
  | { kind: 'omit', type: string }
  | { kind: 'poison', code: string, reason: string }

export const EVENT_TYPE = 'tracking.event'
const VEHICLE_TYPES = new Set(['vehicle.load', 'vehicle.unload'])

const poison = (code: string, message: string): Decoded => ({ kind: 'poison', code, reason: `${code}: ${message}` })

export function decodeMessage (content: Buffer, omit: ReadonlySet<string>, now = Date.now()): Decoded {
  let body: unknown
  try {
    body = JSON.parse(content.toString('utf8'))
  } catch {
    return poison('MESSAGE_NOT_JSON', 'the body is not valid JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return poison('MESSAGE_NOT_OBJECT', 'the body must be a JSON object with a "type"')
  const type = (body as { type?: unknown }).type
  if (typeof type !== 'string') return poison('TYPE_MISSING', 'the message has no "type"')
  if (omit.has(type)) return { kind: 'omit', type }
  if (VEHICLE_TYPES.has(type)) return { kind: 'vehicle', body }
  if (type !== EVENT_TYPE) return poison('TYPE_UNKNOWN', `unknown message type (expected ${EVENT_TYPE}, vehicle.load or vehicle.unload)`)
  const parsed = parseEvent(body, now)
  if (!parsed.ok) return poison(parsed.rejection.code ?? 'EVENT_INVALID', parsed.rejection.message ?? 'invalid event')
  return { kind: 'event', event: parsed.event }
}
