/**
 * The virtual clock: `speed` virtual milliseconds pass per real millisecond, from the moment the
 * run starts. Nothing slows it: an action due at virtual time v runs as soon as the real clock
 * reaches `realAt(v)`, and when the process cannot keep up it runs late and the lag is measured
 * (and reported), never absorbed by stretching time.
 *
 * What the service is told: every timestamp sent (a fix's `ts`, an event's `occurred_at`) is the
 * real time at which its virtual moment falls due, `realAt(v)`. The service refuses times more
 * than 5 minutes ahead of its own clock and dates each new order's `Created` event itself, so
 * virtual dates (hours ahead after a few seconds at 60×) could not be sent; the service sees the
 * run as a time-lapse instead, with every interval divided by the speed.
 */
export class VirtualClock {
  constructor (readonly speed: number, readonly realStart: number) {}

  /** Virtual ms elapsed since the start at real time `real`. */
  virtualAt (real: number): number {
    return (real - this.realStart) * this.speed
  }

  /** The real (epoch ms) moment when virtual time `v` falls due; the timestamp sent for it. */
  realAt (v: number): number {
    return this.realStart + v / this.speed
  }

  now (): number {
    return this.virtualAt(Date.now())
  }
}

interface Entry { at: number, seq: number, run: () => void }

/** Actions in virtual-time order (ties in the order they were scheduled: deterministic). */
export class Agenda {
  private heap: Entry[] = []
  private seq = 0

  get size (): number {
    return this.heap.length
  }

  at (at: number, run: () => void): void {
    const entry = { at, seq: this.seq++, run }
    const heap = this.heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i], heap[parent])) break
      ;[heap[i], heap[parent]] = [heap[parent], heap[i]]
      i = parent
    }
  }

  /** Virtual time of the next action, or Infinity. */
  peek (): number {
    return this.heap[0]?.at ?? Infinity
  }

  pop (): Entry | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (top === undefined || last === undefined || heap.length === 0) return top
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && before(heap[l], heap[m])) m = l
      if (r < heap.length && before(heap[r], heap[m])) m = r
      if (m === i) break
      ;[heap[i], heap[m]] = [heap[m], heap[i]]
      i = m
    }
    return top
  }
}

const before = (a: Entry, b: Entry): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE

/** 90 → "1m 30s", 36000 → "10h 0m", virtual or real. */
export function formatSpan (ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 0)}s`
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d > 0) return `${d}d ${h}h ${m}m`
  if (h > 0) return `${h}h ${m}m`
  return `${m}m ${s % 60}s`
}

/** "10m", "90s", "1h30m", "2h" or a bare number of seconds → ms. */
export function parseSpan (text: string): number | undefined {
  const parts = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$/.exec(text.trim())
  if (parts === null || text.trim() === '') return undefined
  const [, h, m, s] = parts
  const ms = (Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(s ?? 0)) * 1000
  return ms > 0 ? ms : undefined
}
