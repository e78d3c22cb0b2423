import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger as Logger } from 'fastify'

export interface OverloadOptions {
  /** Refuse while the event loop is late by more than this (0: never). */
  maxEventLoopDelayMs: number
  /** Refuse while the V8 heap holds more than this (0: never). */
  maxHeapUsedBytes: number
  sampleIntervalMs?: number
  /** How often refusals are summed up in the log. */
  logIntervalMs?: number
}

/**
 * Load shedding that only sheds real overload. A timer is due every `sampleIntervalMs`; how late
 * it fires is how long the event loop could not run. The process counts as overloaded when the
 * last sample was later than the limit, or when the sample due now is already overdue by more
 * than the limit (a stall still under way, seen by the requests it held back). A pause shorter
 * than the limit (GC, a lazy module load, a busy neighbour) refuses nothing, and there is no
 * window that reads as infinitely late when it has no sample. Refusals are logged as a count per
 * interval, not one line per request.
 */
export class OverloadGuard {
  private lagMs = 0
  private heapUsed = 0
  private due = 0
  private timer: NodeJS.Timeout | undefined
  private logTimer: NodeJS.Timeout | undefined
  private refused = 0
  private firstSample!: () => void
  /** Resolves once the first sample is in (what PM2's "ready" waits for). */
  readonly sampled = new Promise<void>((resolve) => { this.firstSample = resolve })

  constructor (private readonly options: OverloadOptions, private readonly logger: Logger) {}

  get enabled (): boolean {
    return this.options.maxEventLoopDelayMs > 0 || this.options.maxHeapUsedBytes > 0
  }

  start (): void {
    if (!this.enabled) {
      this.firstSample()
      return
    }
    const interval = this.options.sampleIntervalMs ?? 100
    // The next sample is due one interval after this one was taken, not after the work that
    // follows it: a stall that falls between the two (reading the heap is a system call) still
    // shows as lateness instead of vanishing.
    const schedule = (sampledAt: number): void => {
      this.due = sampledAt + interval
      this.timer = setTimeout(() => {
        const now = performance.now()
        this.lagMs = Math.max(0, now - this.due)
        this.heapUsed = process.memoryUsage().heapUsed
        this.firstSample()
        schedule(now)
      }, interval)
      this.timer.unref()
    }
    schedule(performance.now())
    this.logTimer = setInterval(() => { this.report() }, this.options.logIntervalMs ?? 10_000).unref()
  }

  stop (): void {
    clearTimeout(this.timer)
    clearInterval(this.logTimer)
    this.report()
  }

  /** True when a request should be refused now; counts the refusal. */
  refuse (): boolean {
    const overloaded = this.overloaded()
    if (overloaded) this.refused += 1
    return overloaded
  }

  /** Whether requests are to be refused now (counts nothing); `now`: performance.now() if the caller has it. */
  overloaded (now = performance.now()): boolean {
    if (!this.enabled) return false
    const maxDelay = this.options.maxEventLoopDelayMs
    const maxHeap = this.options.maxHeapUsedBytes
    const late = maxDelay > 0 && (this.lagMs > maxDelay || (this.due > 0 && now - this.due > maxDelay))
    return late || (maxHeap > 0 && this.heapUsed > maxHeap)
  }

  private report (): void {
    if (this.refused === 0) return
    this.logger.warn({ refused: this.refused, eventLoopLagMs: Math.round(this.lagMs), heapUsedMb: Math.round(this.heapUsed / 1048576) },
      'overloaded: requests refused with 503 in the last interval')
    this.refused = 0
  }
}
