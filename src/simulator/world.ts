import locations from '../hubs/locations.json' with { type: 'json' }
import { distanceM, offsetM } from '../fleet/geo.js'
import { ODDS, planRoute } from '../orders/timeline.js'
import { between, type Random } from './random.js'
import { HOUR, MINUTE } from './clock.js'

/** A hub as the product's own fixture describes it (src/hubs/locations.json). */
export interface SimHub { id: number, title: string, lat: number, lng: number, timezone: string }

export const HUBS: readonly SimHub[] = locations.map((h) => ({ id: h.id, title: h.title, lat: h.lat, lng: h.lng, timezone: h.timezone }))
export const hubById = new Map(HUBS.map((h) => [h.id, h]))

export interface Point { lat: number, lng: number }

const RAD = Math.PI / 180

/** The point a fraction `f` of the way along the great circle from a to b. */
export function along (a: Point, b: Point, f: number): Point {
  const [la1, lo1, la2, lo2] = [a.lat * RAD, a.lng * RAD, b.lat * RAD, b.lng * RAD]
  const d = distanceM(a.lat, a.lng, b.lat, b.lng) / 6_371_008.8
  if (d < 1e-9) return { lat: a.lat, lng: a.lng }
  const A = Math.sin((1 - f) * d) / Math.sin(d)
  const B = Math.sin(f * d) / Math.sin(d)
  const x = A * Math.cos(la1) * Math.cos(lo1) + B * Math.cos(la2) * Math.cos(lo2)
  const y = A * Math.cos(la1) * Math.sin(lo1) + B * Math.cos(la2) * Math.sin(lo2)
  const z = A * Math.sin(la1) + B * Math.sin(la2)
  return { lat: Math.atan2(z, Math.hypot(x, y)) / RAD, lng: Math.atan2(y, x) / RAD }
}

export function bearing (a: Point, b: Point): number {
  const [la1, la2, dLo] = [a.lat * RAD, b.lat * RAD, (b.lng - a.lng) * RAD]
  const y = Math.sin(dLo) * Math.cos(la2)
  const x = Math.cos(la1) * Math.sin(la2) - Math.sin(la1) * Math.cos(la2) * Math.cos(dLo)
  return (Math.atan2(y, x) / RAD + 360) % 360
}

/** A drive from one hub to another: waypoints and the distance of each from the start. */
export interface Path { points: Point[], at: number[], length: number }

/**
 * The great circle between two hubs, bent round any other hub it would pass within `clearM` of:
 * a vehicle passing through a third hub's geofence could be taken for a visit there (with a
 * short dwell time it would be), which a driver going past would not make.
 */
export function planPath (from: SimHub, to: SimHub, clearM: number): Path {
  const detours: Array<{ f: number, point: Point }> = []
  const steps = Math.max(2, Math.ceil(distanceM(from.lat, from.lng, to.lat, to.lng) / 100))
  for (const hub of HUBS) {
    if (hub.id === from.id || hub.id === to.id) continue
    let closest = Infinity
    let closestF = 0
    for (let i = 1; i < steps; i++) {
      const p = along(from, to, i / steps)
      const d = distanceM(p.lat, p.lng, hub.lat, hub.lng)
      if (d < closest) { closest = d; closestF = i / steps }
    }
    if (closest >= clearM) continue
    // A waypoint clearM from the hub, on the side of the line away from it.
    const away = closest < 1 ? bearing(from, to) + 90 : bearing(hub, along(from, to, closestF))
    detours.push({ f: closestF, point: offsetM(hub.lat, hub.lng, clearM, away) })
  }
  detours.sort((a, b) => a.f - b.f)
  const points = [{ lat: from.lat, lng: from.lng }, ...detours.map((d) => d.point), { lat: to.lat, lng: to.lng }]
  const at = [0]
  for (let i = 1; i < points.length; i++) at.push(at[i - 1] + distanceM(points[i - 1].lat, points[i - 1].lng, points[i].lat, points[i].lng))
  return { points, at, length: at[at.length - 1] }
}

/** The point `distance` metres along a path, and the heading there. */
export function pointOn (path: Path, distance: number): Point & { heading: number } {
  const d = Math.min(Math.max(distance, 0), path.length)
  let i = 1
  while (i < path.at.length - 1 && path.at[i] < d) i++
  const a = path.points[i - 1]
  const b = path.points[i]
  const span = path.at[i] - path.at[i - 1]
  const p = along(a, b, span === 0 ? 0 : (d - path.at[i - 1]) / span)
  return { ...p, heading: Math.round(bearing(a, b)) }
}

/**
 * Speeds of a drive: `slowM` at each end (through town, in and out of the hub's yard) at
 * `slowKmh`, the rest at the leg's cruise speed. Time to cover `d` metres and back.
 */
export class Drive {
  readonly slowM: number
  readonly duration: number
  constructor (readonly path: Path, readonly cruiseKmh: number, readonly slowKmh = 30) {
    this.slowM = Math.min(1500, path.length / 4)
    this.duration = this.timeAt(path.length)
  }

  private get slowMs (): number { return this.slowKmh / 3.6 / 1000 }
  private get cruiseMs (): number { return this.cruiseKmh / 3.6 / 1000 }

  /** Virtual ms from the start to `d` metres along. */
  timeAt (d: number): number {
    const { slowM, path } = this
    const first = Math.min(d, slowM)
    const middle = Math.min(Math.max(d - slowM, 0), path.length - 2 * slowM)
    const last = Math.max(d - (path.length - slowM), 0)
    return (first + last) / this.slowMs + middle / this.cruiseMs
  }

  /** Metres covered after `t` virtual ms, and the speed there (km/h). */
  distanceAt (t: number): { d: number, kmh: number } {
    const { slowM, path } = this
    const t1 = slowM / this.slowMs
    const t2 = t1 + (path.length - 2 * slowM) / this.cruiseMs
    if (t <= t1) return { d: t * this.slowMs, kmh: this.slowKmh }
    if (t <= t2) return { d: slowM + (t - t1) * this.cruiseMs, kmh: this.cruiseKmh }
    return { d: Math.min(path.length, path.length - slowM + (t - t2) * this.slowMs), kmh: this.slowKmh }
  }
}

/** What will become of a parcel, drawn when it is booked with /fake's odds (src/orders/timeline.ts ODDS). */
export interface Fate {
  /** Index of the hop (0 = first transit, transits.length = the receiver) where an Exception is scanned, if any. */
  exceptionAtHop: number | undefined
  /** The delivery attempt turns into an Exception. */
  exceptionAtAttempt: boolean
  /** After the failed attempt: sent back to the sender (Returned to Sender) rather than delivered. */
  returned: boolean
  /** The last scan (Delivered, or Returned to Sender at the sender) turns into an Exception. */
  exceptionAtEnd: boolean
}

export interface ParcelPlan {
  sender: number
  receiver: number
  /** Every hub on the way, sender first and receiver last. */
  hops: number[]
  fate: Fate
  bookedAt: number
  /** From booking to the hand-in scan (Package Received) at the sender hub. */
  handInAfter: number
  recipient: { name: string, address: string, phone: string }
}

const NAMES = ['李大同', '陳美玲', '王小明', '林志豪', '張雅婷', '黃建國', '吳佩君', '劉家豪', '蔡宜蓁', '楊子翔']

/**
 * A parcel's route (sender, 1–3 transit hubs, receiver: planRoute, as /fake plans) and fate:
 * each hop has ODDS.exception (5%) of ending in an Exception, one delivery attempt fails first
 * (as /fake's timelines have it), then ODDS.returned (5%) go back to the sender.
 */
export function planParcel (random: Random, index: number, bookedAt: number): ParcelPlan {
  const route = planRoute(random, HUBS)
  const hops = [route.sender.id, ...route.transits.map((h) => h.id), route.receiver.id]
  let exceptionAtHop: number | undefined
  for (let hop = 0; hop <= route.transits.length; hop++) {
    if (random() < ODDS.exception) { exceptionAtHop = hop; break }
  }
  const exceptionAtAttempt = random() < ODDS.exception
  const returned = random() < ODDS.returned
  const exceptionAtEnd = random() < ODDS.exception
  const receiver = hubById.get(route.receiver.id) as SimHub
  return {
    sender: route.sender.id,
    receiver: route.receiver.id,
    hops,
    fate: { exceptionAtHop, exceptionAtAttempt, returned, exceptionAtEnd },
    bookedAt,
    handInAfter: between(random, 0.5 * HOUR, 4 * HOUR),
    recipient: {
      name: NAMES[index % NAMES.length],
      address: `${receiver.title.replace('物流中心', '')}模擬路 ${1 + (index % 300)} 號`,
      phone: `09${String(10_000_000 + Math.floor(random() * 89_999_999)).slice(0, 8)}`
    }
  }
}

/** Hours after the previous scan, drawn per parcel (shorter than /fake's day-long gaps, so runs of a few virtual hours finish parcels). */
export const SCAN_GAPS = {
  exception: [10 * MINUTE, 1 * HOUR],
  attempt: [1 * HOUR, 4 * HOUR],
  delivered: [2 * HOUR, 8 * HOUR],
  returnedScan: [20 * MINUTE, 1 * HOUR]
} as const satisfies Record<string, readonly [number, number]>
