import type { TrackingStatus } from '../tracking/statuses.js'

/** One tracking event, validated (src/writes/validate.ts), as every writer hands it in. */
export interface EventInput {
  /** The id its source gave it: unique per parcel, at most 64 characters. */
  event_id: string
  sno: number
  status: TrackingStatus
  location_id: number
  occurred_at: Date
  vehicle_id?: string
}

export type RejectCode = 'ORDER_NOT_FOUND' | 'LOCATION_NOT_FOUND' | 'STATUS_INVALID' | 'TIME_INVALID' | 'EVENT_INVALID'

export interface EventResult {
  event_id: string
  result: 'accepted' | 'duplicate' | 'rejected'
  code?: RejectCode
  message?: string
}

/** A change as the change log records it (one row per order per kind of change). */
export interface ChangeRecord {
  sno: number
  seq: number
  kind: 'order.created' | 'tracking.event'
  payload: Record<string, unknown>
}
