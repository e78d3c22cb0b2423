import { badRequest } from '../http/errors.js'
import { MAX_ADDRESS, MAX_NAME, MAX_PHONE, MAX_REFERENCE } from './schemas.js'

/** A POST /orders body that passed every check that needs no database. */
export interface OrderInput {
  recipient: { name: string, address: string, phone: string }
  senderId: number
  receiverId: number
  /** YYYY-MM-DD, a real calendar day; its range is checked against the hubs' zones later. */
  estimatedDelivery: string | undefined
  reference: string | undefined
}

const ORDER_KEYS = new Set(['recipient', 'sender_location_id', 'receiver_location_id', 'estimated_delivery', 'reference'])
const RECIPIENT_KEYS = new Set(['name', 'address', 'phone'])
// Control characters (names and addresses are one line) and lone surrogates (which MySQL's
// utf8mb4 cannot store) are refused.
const CONTROL = /\p{Cc}/u
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const PHONE = /^[0-9+()#. -]+$/
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

function unknownKey (value: Record<string, unknown>, allowed: Set<string>): string | undefined {
  return Object.keys(value).find((key) => !allowed.has(key))
}

/** A one-line text of 1..max characters (code points), trimmed. */
function text (value: unknown, field: string, max: number, code: string): string {
  if (typeof value !== 'string') throw badRequest(code, `${field} must be a string`)
  const trimmed = value.trim()
  const length = [...trimmed].length
  if (length === 0 || length > max) throw badRequest(code, `${field} must be 1 to ${max} characters`)
  if (LONE_SURROGATE.test(trimmed) || CONTROL.test(trimmed)) throw badRequest(code, `${field} may not hold control characters or broken Unicode`)
  return trimmed
}

function hubId (value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw badRequest('LOCATION_INVALID', `${field} must be a positive integer (a hub id)`)
  return value
}

/** A YYYY-MM-DD that names a real day. */
export function isCalendarDate (value: string): boolean {
  const match = DATE.exec(value)
  if (match === null) return false
  const date = new Date(`${value}T00:00:00.000Z`)
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value && Number(match[1]) >= 2000
}

/**
 * Checks a POST /orders body field by field; throws a 400 with the code of the first problem:
 * BODY_INVALID, PROPERTY_UNKNOWN, RECIPIENT_INVALID, LOCATION_INVALID, SAME_LOCATION, DATE_INVALID,
 * REFERENCE_INVALID. Messages name fields, never echo values (they are personal data).
 */
export function parseOrderInput (body: unknown): OrderInput {
  if (!isObject(body)) throw badRequest('BODY_INVALID', 'The body must be a JSON object with recipient, sender_location_id and receiver_location_id')
  const extra = unknownKey(body, ORDER_KEYS)
  if (extra !== undefined) throw badRequest('PROPERTY_UNKNOWN', `Unknown property "${extra.slice(0, 40)}"; allowed: ${[...ORDER_KEYS].join(', ')}`)
  const { recipient } = body
  if (!isObject(recipient)) throw badRequest('RECIPIENT_INVALID', 'recipient must be an object with name, address and phone')
  const extraRecipient = unknownKey(recipient, RECIPIENT_KEYS)
  if (extraRecipient !== undefined) throw badRequest('PROPERTY_UNKNOWN', `Unknown property "recipient.${extraRecipient.slice(0, 40)}"; allowed: name, address, phone`)
  const name = text(recipient.name, 'recipient.name', MAX_NAME, 'RECIPIENT_INVALID')
  const address = text(recipient.address, 'recipient.address', MAX_ADDRESS, 'RECIPIENT_INVALID')
  const phone = text(recipient.phone, 'recipient.phone', MAX_PHONE, 'RECIPIENT_INVALID')
  if (!PHONE.test(phone) || phone.replace(/\D/g, '').length < 3) {
    throw badRequest('RECIPIENT_INVALID', 'recipient.phone must be digits (at least 3), spaces and + ( ) # . -')
  }
  const senderId = hubId(body.sender_location_id, 'sender_location_id')
  const receiverId = hubId(body.receiver_location_id, 'receiver_location_id')
  if (senderId === receiverId) throw badRequest('SAME_LOCATION', 'sender_location_id and receiver_location_id must be different hubs')
  let estimatedDelivery: string | undefined
  if (body.estimated_delivery !== undefined && body.estimated_delivery !== null) {
    if (typeof body.estimated_delivery !== 'string' || !isCalendarDate(body.estimated_delivery)) {
      throw badRequest('DATE_INVALID', 'estimated_delivery must be a date as YYYY-MM-DD')
    }
    estimatedDelivery = body.estimated_delivery
  }
  const reference = body.reference === undefined || body.reference === null
    ? undefined
    : text(body.reference, 'reference', MAX_REFERENCE, 'REFERENCE_INVALID')
  return { recipient: { name, address, phone }, senderId, receiverId, estimatedDelivery, reference }
}
