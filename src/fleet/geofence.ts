/** A vehicle near one hub: dwelling (inside, not yet long enough) or inside (arrived). */
export interface Zone {
  state: 'dwelling' | 'inside'
  /** When the vehicle entered the radius; for an arrival, the visit's identity. */
  since: Date
}

export interface Transition {
  kind: 'arrival' | 'departure'
  /** When the visit began (entry into the radius): with vehicle and hub, names the visit. */
  visit: Date
  /** The event's time: the entry for an arrival, the first fix beyond 1.5 × radius for a departure. */
  at: Date
}

export interface GeofenceRules {
  radiusM: number
  dwellMs: number
}

/**
 * One fix against one hub's geofence (fixes newer than every fix seen before, in time order):
 * - outside: inside the radius starts a dwell (an arrival at once if the dwell is 0);
 * - dwelling: a fix beyond the radius ends the dwell (no event); one still inside when the dwell
 *   time has passed since entry is the arrival, dated at the entry;
 * - inside: only a fix beyond 1.5 × the radius is the departure (the margin absorbs GPS jitter at
 *   the edge, so one visit gives one arrival and one departure).
 * A fix whose accuracy is worse than the radius decides nothing (the caller skips it).
 */
export function step (zone: Zone | undefined, distanceM: number, at: Date, rules: GeofenceRules): { zone: Zone | undefined, transition?: Transition } {
  if (zone === undefined) {
    if (distanceM > rules.radiusM) return { zone }
    if (rules.dwellMs === 0) return { zone: { state: 'inside', since: at }, transition: { kind: 'arrival', visit: at, at } }
    return { zone: { state: 'dwelling', since: at } }
  }
  if (zone.state === 'dwelling') {
    if (distanceM > rules.radiusM) return { zone: undefined }
    if (at.getTime() - zone.since.getTime() >= rules.dwellMs) {
      return { zone: { state: 'inside', since: zone.since }, transition: { kind: 'arrival', visit: zone.since, at: zone.since } }
    }
    return { zone }
  }
  if (distanceM > rules.radiusM * 1.5) return { zone: undefined, transition: { kind: 'departure', visit: zone.since, at } }
  return { zone }
}

/**
 * The tracking-event id of a visit's arrival or departure: derived from (vehicle, hub, visit
 * start, kind), so replaying or re-deciding the same visit gives the same id (a duplicate).
 * At most 61 characters (vehicle ids are at most 32).
 */
export function visitEventId (vehicleId: string, hubId: number, visit: Date, kind: Transition['kind']): string {
  return `v:${vehicleId}:${hubId}:${visit.getTime()}:${kind === 'arrival' ? 'a' : 'd'}`
}
