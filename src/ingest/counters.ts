/** What the consumer has done since it started; logged as one summary line now and then. */
export class IngestCounters {
  received = 0
  stored = 0
  duplicates = 0
  omitted = 0
  /** Batches written (one transaction each). */
  batches = 0
  /** Waits for MySQL to come back (the batch kept unacknowledged meanwhile). */
  databaseWaits = 0
  /** Re-established broker connections. */
  reconnects = 0
  readonly deadLettered = new Map<string, number>()

  deadLetter (code: string): void {
    this.deadLettered.set(code, (this.deadLettered.get(code) ?? 0) + 1)
  }

  get deadLetteredTotal (): number {
    let total = 0
    for (const n of this.deadLettered.values()) total += n
    return total
  }

  snapshot (): Record<string, unknown> {
    return {
      received: this.received,
      stored: this.stored,
      duplicates: this.duplicates,
      omitted: this.omitted,
      deadLettered: Object.fromEntries(this.deadLettered),
      batches: this.batches,
      databaseWaits: this.databaseWaits,
      reconnects: this.reconnects
    }
  }
}
