import { offsetM } from '../../src/fleet/geo.js'
import { seeded } from '../../src/simulator/random.js'

export interface ScriptedFix { lat: number, lng: number, ts: number, speed: number, accuracy: number }

/**
 * A drive into a hub and out again, one fix every 5 s, about 10 minutes of fix time: approach
 * from 2 km, 2 minutes hovering at the radius with ±50 m of jitter (in and out of it), 4 minutes
 * parked near the centre (±50 m), 2 minutes hovering at the radius again on the way out, then
 * away to 2 km. Exactly one arrival and one departure must come of it.
 */
export function driveIntoHub (hub: { lat: number, lng: number }, start: number, radiusM: number, seed = 1): ScriptedFix[] {
  const rnd = seeded(seed)
  const jitter = (): number => (rnd() * 2 - 1) * 50
  const fixes: ScriptedFix[] = []
  let t = start
  const at = (distance: number, bearing: number, speed: number): void => {
    const p = offsetM(hub.lat, hub.lng, Math.max(0, distance), bearing)
    fixes.push({ lat: p.lat, lng: p.lng, ts: t, speed, accuracy: 10 })
    t += 5000
  }
  for (let d = 2000; d > radiusM + 60; d -= 70) at(d, 90, 50) // approach (~25 fixes)
  for (let i = 0; i < 24; i++) at(radiusM + jitter(), 90 + jitter() / 10, 8) // 2 min at the edge
  for (let i = 0; i < 48; i++) at(Math.abs(jitter()), rnd() * 360, 0) // 4 min parked
  for (let i = 0; i < 24; i++) at(radiusM + jitter(), 270 + jitter() / 10, 8) // 2 min at the edge
  for (let d = radiusM + 60; d <= 2000; d += 70) at(d, 270, 50) // away
  return fixes
}

/** Passing a hub 200 m from its centre at 50 km/h without stopping: no arrival. */
export function passBy (hub: { lat: number, lng: number }, start: number): ScriptedFix[] {
  const fixes: ScriptedFix[] = []
  const side = offsetM(hub.lat, hub.lng, 200, 0)
  for (let i = -40; i <= 40; i++) {
    const p = offsetM(side.lat, side.lng, i * 70, 90) // 70 m per 5 s ≈ 50 km/h
    fixes.push({ lat: p.lat, lng: p.lng, ts: start + (i + 40) * 5000, speed: 50, accuracy: 8 })
  }
  return fixes
}

export function shuffled<T> (list: readonly T[], seed: number): T[] {
  const rnd = seeded(seed)
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}
