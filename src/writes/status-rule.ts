import type { TrackingStatus } from '../tracking/statuses.js'

/** Statuses that end a parcel's journey for good: later events are recorded but move nothing. */
export const STICKY_STATUSES: readonly TrackingStatus[] = ['Delivered', 'Returned to Sender']

export interface OrderState {
  status: TrackingStatus
  location_id: number
  /** Time of the event that set `status`. */
  status_at: Date
  /** Time of the newest event. */
  last_event_at: Date
}

export interface StatusEvent {
  status: TrackingStatus
  location_id: number
  occurred_at: Date
}

/**
 * The monotonic rule, as a walk of the timeline in (occurred_at, id) order: each event sets the
 * status until a final one (Delivered, Returned to Sender) has, and then nothing moves it. Applied
 * one event at a time, newest id last, it gives the same status whatever order the events
 * arrived in (a redelivered or late event changes nothing it should not):
 * - an event newer than (or as new as) the one that set the status moves it, unless that one was final;
 * - an older event moves it only if it is final and older than anything final so far (a late
 *   Delivered scan still delivers the parcel; a late In Transit never takes it back).
 */
export function applyEvent (state: OrderState, event: StatusEvent): OrderState {
  const at = event.occurred_at.getTime()
  const last = Math.max(state.last_event_at.getTime(), at)
  const currentFinal = STICKY_STATUSES.includes(state.status)
  const eventFinal = STICKY_STATUSES.includes(event.status)
  const statusAt = state.status_at.getTime()
  const moves = currentFinal
    ? eventFinal && at < statusAt
    : at >= statusAt || eventFinal
  if (!moves) return last === state.last_event_at.getTime() ? state : { ...state, last_event_at: new Date(last) }
  return { status: event.status, location_id: event.location_id, status_at: event.occurred_at, last_event_at: new Date(last) }
}

/** The status a whole timeline gives, walked in (occurred_at, id) order (for checks and tests). */
export function statusOf (timeline: ReadonlyArray<StatusEvent & { id: number }>): TrackingStatus | undefined {
  const sorted = [...timeline].sort((a, b) => a.occurred_at.getTime() - b.occurred_at.getTime() || a.id - b.id)
  let status: TrackingStatus | undefined
  for (const event of sorted) {
    if (status !== undefined && STICKY_STATUSES.includes(status)) break
    status = event.status
  }
  return status
}
