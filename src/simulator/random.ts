/** A seeded uniform random source in [0, 1) (mulberry32): the same seed, the same run. */
export type Random = () => number

export function seeded (seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * An independent stream per actor (a parcel, a vehicle), so that one actor's draws never shift
 * another's: what happens to parcel 17 does not depend on how many fixes vehicle 3 published.
 */
export function stream (seed: number, kind: number, index: number): Random {
  return seeded(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(kind + 1, 0xc2b2ae35) ^ Math.imul(index + 1, 0x27d4eb2f))
}

export const between = (random: Random, least: number, most: number): number => least + (most - least) * random()

/** A normal deviate (Box–Muller), for GPS noise. */
export function gaussian (random: Random): number {
  const u = Math.max(random(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
}
