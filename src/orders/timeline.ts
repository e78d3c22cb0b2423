import { FINAL_STATUSES, type TrackingStatus } from '../tracking/statuses.js'
import { addDays, dateInZone } from '../hubs/local-time.js'

/** A uniform random number in [0, 1); seeded in tests and with FAKE_SEED. */
export type Random = () => number

export interface Hub {
  id: number
  timezone: string
}

export interface Route {
  sender: Hub
  receiver: Hub
  transits: Hub[]
}

export interface TimelineEvent {
  status: TrackingStatus
  hub: Hub
  occurredAt: Date
}

export interface Timeline {
  route: Route
  events: TimelineEvent[]
  /** The promised date, or the delivery date once delivered (YYYY-MM-DD, receiver's zone). */
  estimatedDelivery: string
}

/** The original generator's odds. */
export const ODDS = {
  exception: 0.05,
  stillOnTheWay: 0.5,
  returned: 0.05
} as const

const HOUR = 3_600_000

/** Hours from the previous event to an event of this status: [least, most]. */
const GAP_HOURS: Record<TrackingStatus, [number, number]> = {
  Created: [0, 0],
  'Package Received': [0.5, 4],
  'In Transit': [4, 18],
  'Out for Delivery': [6, 20],
  'Delivery Attempted': [1, 6],
  Delivered: [12, 30],
  'Returned to Sender': [24, 72],
  Exception: [1, 12]
}

const between = (random: Random, [least, most]: [number, number]): number => least + (most - least) * random()

function pickDistinct (random: Random, hubs: readonly Hub[], count: number): Hub[] {
  const pool = [...hubs]
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (pool.length - i))
    ;[pool[i], pool[j]] = [pool[j], pool[i]]
  }
  return pool.slice(0, count)
}

/** A sender hub, a receiver hub and 1–3 transit hubs, all different. */
export function planRoute (random: Random, hubs: readonly Hub[]): Route {
  if (hubs.length < 3) throw new Error('At least 3 hubs are needed to plan a route')
  const transitCount = Math.min(1 + Math.floor(random() * 3), hubs.length - 2)
  const [sender, receiver, ...transits] = pickDistinct(random, hubs, transitCount + 2)
  return { sender, receiver, transits }
}

/** The statuses and hubs of a parcel's journey, by the original generator's rules. */
export function planSteps (random: Random, route: Route): Array<{ status: TrackingStatus, hub: Hub }> {
  const steps: Array<{ status: TrackingStatus, hub: Hub }> = [
    { status: 'Created', hub: route.sender },
    { status: 'Package Received', hub: route.sender }
  ]
  // Each hop either happens or turns into an Exception that ends the journey.
  const hop = (status: TrackingStatus, hub: Hub): boolean => {
    const failed = random() < ODDS.exception
    steps.push({ status: failed ? 'Exception' : status, hub })
    return !failed
  }
  for (const transit of route.transits) {
    if (!hop('In Transit', transit)) return steps
  }
  if (random() < ODDS.stillOnTheWay) return steps
  if (!hop('Out for Delivery', route.receiver)) return steps
  if (!hop('Delivery Attempted', route.receiver)) return steps
  if (random() < ODDS.returned) hop('Returned to Sender', route.sender)
  else hop('Delivered', route.receiver)
  return steps
}

/** Days promised for a route: a day to collect, a day per transit hub. */
export function promisedDays (route: Route): number {
  return 1 + route.transits.length
}

/**
 * A whole timeline: hours between hops, the newest event at most a week old (at most half a
 * day for parcels still moving), nothing in the future.
 */
export function planTimeline (random: Random, hubs: readonly Hub[], now: Date): Timeline {
  const route = planRoute(random, hubs)
  const steps = planSteps(random, route)
  // Seconds from the first event, growing by a realistic gap per hop.
  const offsets = [0]
  for (let i = 1; i < steps.length; i++) {
    offsets.push(offsets[i - 1] + Math.round(between(random, GAP_HOURS[steps[i].status]) * 3600))
  }
  const finished = FINAL_STATUSES.includes(steps[steps.length - 1].status)
  const quietHours = between(random, finished ? [0, 7 * 24] : [0, 12])
  const lastAt = Math.floor((now.getTime() - quietHours * HOUR) / 1000) * 1000
  const startAt = lastAt - offsets[offsets.length - 1] * 1000
  const events = steps.map((step, i) => ({ status: step.status, hub: step.hub, occurredAt: new Date(startAt + offsets[i] * 1000) }))

  const created = events[0]
  const lastEvent = events[events.length - 1]
  const estimatedDelivery = lastEvent.status === 'Delivered'
    ? dateInZone(lastEvent.occurredAt, route.receiver.timezone)
    : addDays(dateInZone(created.occurredAt, route.receiver.timezone), promisedDays(route))
  return { route, events, estimatedDelivery }
}
