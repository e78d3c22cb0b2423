import { HOUR } from './clock.js'

/** A parcel waiting at a hub for a vehicle towards its next hop. */
export interface WaitingParcel { readonly nextHop: number, readonly waitingSince: number }

/** What one parcel's wait weighs: the hours it has waited, plus one so that a fresh parcel counts too. */
const weight = (p: WaitingParcel, now: number): number => (now - p.waitingSince + HOUR) / HOUR

/**
 * The load for a vehicle leaving a hub now: of the parcels waiting there, grouped by next hop,
 * the group whose oldest `capacity` parcels weigh most (parcel-hours of waiting), oldest first.
 * Greedy minimisation of the parcels' total waiting time: each departure relieves the most
 * waiting it can; a group large enough to fill the vehicle wins over a single old parcel only
 * when its summed wait is larger. Ties go to the lower hub id (runs are reproducible).
 */
export function chooseLoad<P extends WaitingParcel> (waiting: Iterable<P>, capacity: number, now: number): { destination: number, parcels: P[] } | undefined {
  const groups = new Map<number, P[]>()
  for (const p of waiting) {
    const group = groups.get(p.nextHop)
    if (group === undefined) groups.set(p.nextHop, [p])
    else group.push(p)
  }
  let best: { destination: number, parcels: P[], score: number } | undefined
  for (const [destination, group] of groups) {
    const parcels = [...group].sort((a, b) => a.waitingSince - b.waitingSince).slice(0, capacity)
    const score = parcels.reduce((sum, p) => sum + weight(p, now), 0)
    if (best === undefined || score > best.score + 1e-9 || (Math.abs(score - best.score) <= 1e-9 && destination < best.destination)) {
      best = { destination, parcels, score }
    }
  }
  return best === undefined || best.parcels.length === 0 ? undefined : { destination: best.destination, parcels: best.parcels }
}

/**
 * Where an empty vehicle should go: the hub with the most parcel-hours waiting per hour of
 * driving (plus one, for the stop), among hubs no other vehicle is at or on its way to.
 */
export function chooseReposition (from: number, demand: ReadonlyMap<number, number>, covered: ReadonlySet<number>, driveHours: (to: number) => number): number | undefined {
  let best: { hub: number, score: number } | undefined
  for (const [hub, hours] of demand) {
    if (hub === from || covered.has(hub) || hours <= 0) continue
    const score = hours / (1 + driveHours(hub))
    if (best === undefined || score > best.score + 1e-9 || (Math.abs(score - best.score) <= 1e-9 && hub < best.hub)) best = { hub, score }
  }
  return best?.hub
}

/** The parcel-hours waiting at each hub (for chooseReposition). */
export function demandByHub (waiting: Iterable<{ hub: number } & WaitingParcel>, now: number): Map<number, number> {
  const demand = new Map<number, number>()
  for (const p of waiting) demand.set(p.hub, (demand.get(p.hub) ?? 0) + weight(p, now))
  return demand
}
