import { badRequest } from '../http/errors.js'

/**
 * Order numbers are positive integers up to 2^53 - 1 (the largest a JSON client can hold
 * exactly). Leading zeros are allowed and ignored: 003 is order 3.
 */
export function parseSno (raw: unknown): number {
  if (raw === undefined || raw === '') throw badRequest('SNO_REQUIRED', 'Query string parameter sno is required, e.g. /query?sno=3')
  if (typeof raw !== 'string') throw badRequest('SNO_INVALID', 'sno must be a single positive integer')
  if (!/^\d+$/.test(raw)) throw badRequest('SNO_INVALID', 'sno must be a positive integer')
  const digits = raw.replace(/^0+/, '')
  if (digits === '') throw badRequest('SNO_INVALID', 'sno must be a positive integer')
  if (digits.length > 16 || Number(digits) > Number.MAX_SAFE_INTEGER) {
    throw badRequest('SNO_OUT_OF_RANGE', `sno must be at most ${Number.MAX_SAFE_INTEGER}`)
  }
  return Number(digits)
}
