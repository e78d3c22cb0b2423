import type { FastifyBaseLogger as Logger } from 'fastify'
import type { DatabaseConfig } from '../config.js'
import { createDatabase, type DatabaseHandle } from '../infra/db.js'
import { ChangeRelay, type Change } from '../writes/change-relay.js'

export type ChangeListener = (change: Change) => void

/**
 * This process's view of the change log for its live streams: while anyone listens, it follows
 * the log (MySQL is the source; nothing is lost when Redis or a broker blinks) and hands each
 * committed change to the listeners of its parcel and to those of every parcel. Per parcel the
 * changes come in commit order: writes of one parcel are serialised by its row lock.
 */
export class ChangeFeed {
  private readonly byParcel = new Map<number, Set<ChangeListener>>()
  private readonly everything = new Set<ChangeListener>()
  private relay: ChangeRelay | undefined
  private database: DatabaseHandle | undefined
  private starting: Promise<void> | undefined

  constructor (private readonly config: DatabaseConfig, private readonly logger: Logger, private readonly intervalMs = 100) {}

  get listeners (): number {
    let n = this.everything.size
    for (const set of this.byParcel.values()) n += set.size
    return n
  }

  /** Listens to one parcel's changes (or every parcel's, with `null`); resolves once following the log. */
  async subscribe (sno: number | null, listener: ChangeListener): Promise<() => void> {
    if (sno === null) this.everything.add(listener)
    else {
      let set = this.byParcel.get(sno)
      if (set === undefined) this.byParcel.set(sno, set = new Set())
      set.add(listener)
    }
    await this.start()
    return () => { this.unsubscribe(sno, listener) }
  }

  private unsubscribe (sno: number | null, listener: ChangeListener): void {
    if (sno === null) this.everything.delete(listener)
    else {
      const set = this.byParcel.get(sno)
      set?.delete(listener)
      if (set?.size === 0) this.byParcel.delete(sno)
    }
    if (this.listeners === 0) this.stop().catch(() => {})
  }

  private async start (): Promise<void> {
    if (this.relay !== undefined) return
    this.starting ??= (async () => {
      this.database = createDatabase({ ...this.config, poolSize: 1, queueLimit: 10 })
      const relay = new ChangeRelay(this.database.db, this.logger, {
        name: 'live',
        exclusive: false,
        intervalMs: this.intervalMs,
        deliver: async (changes) => { this.dispatch(changes); return true }
      })
      await relay.tick() // takes the log's current end as the starting point
      relay.start()
      this.relay = relay
    })().finally(() => { this.starting = undefined })
    await this.starting
  }

  async stop (): Promise<void> {
    const relay = this.relay
    const database = this.database
    this.relay = undefined
    this.database = undefined
    await relay?.stop()
    await database?.close()
  }

  private dispatch (changes: readonly Change[]): void {
    for (const change of changes) {
      for (const listener of this.byParcel.get(change.sno) ?? []) listener(change)
      for (const listener of this.everything) listener(change)
    }
  }
}
