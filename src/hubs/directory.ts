import type { Db } from '../infra/db.js'
import type { Location } from '../db/schema.js'
import { listHubs } from './hubs.js'

/**
 * The hubs, held in memory: 16 rows of reference data that every /query answer and every
 * /fake order needs. Re-read at most every `maxAgeMs`, and at once when an id is not known
 * (a hub added since), so a change to the table shows within a minute.
 */
export class HubDirectory {
  private byId = new Map<number, Location>()
  private list: Location[] = []
  private loadedAt = 0
  private loading: Promise<void> | undefined

  constructor (private readonly db: Db, private readonly maxAgeMs = 60_000) {}

  /** All hubs, fresh enough. */
  async all (): Promise<Location[]> {
    if (Date.now() - this.loadedAt > this.maxAgeMs) await this.reload()
    return this.list
  }

  /** The hubs with these ids (reloading once if any is missing or the copy is old). */
  async resolve (ids: Iterable<number>): Promise<Map<number, Location>> {
    const stale = Date.now() - this.loadedAt > this.maxAgeMs
    if (stale || [...ids].some((id) => !this.byId.has(id))) await this.reload()
    return this.byId
  }

  /** Whether a hub with this id exists (an unknown id re-reads the table at most once a second). */
  async has (id: number): Promise<boolean> {
    if (!this.byId.has(id) && Date.now() - this.loadedAt > 1000) await this.reload()
    else if (Date.now() - this.loadedAt > this.maxAgeMs) await this.reload()
    return this.byId.has(id)
  }

  private async reload (): Promise<void> {
    this.loading ??= listHubs(this.db).then((hubs) => {
      this.list = hubs
      this.byId = new Map(hubs.map((h) => [h.id, h]))
      this.loadedAt = Date.now()
    }).finally(() => { this.loading = undefined })
    await this.loading
  }
}
