import { unavailable } from '../http/errors.js'
import type { HubDirectory } from '../hubs/directory.js'
import type { OrderGenerator } from './generator.js'
import type { FakeResponseBody } from './schemas.js'
import type { Writer } from '../writes/writer.js'

export const FAKE_DEFAULT = 10
export const FAKE_MAX = 100

/** Creates demo orders through the write path: all of them in one transaction. */
export class FakeOrders {
  constructor (
    private readonly writer: Writer,
    private readonly hubs: HubDirectory,
    private readonly seed: number | undefined
  ) {}

  // faker and its zh_TW data (some 30 MB) are loaded with the first /fake, not at start.
  private generator: Promise<OrderGenerator> | undefined

  async create (count: number, now = new Date()): Promise<FakeResponseBody> {
    const hubs = await this.hubs.all()
    if (hubs.length < 3) throw unavailable('HUBS_MISSING', 'No logistics centres are loaded; run npm run db:seed', 60)
    const generator = await (this.generator ??= import('./generator.js').then(({ OrderGenerator }) => new OrderGenerator(this.seed)))
    const drafts = Array.from({ length: count }, () => generator.draft(hubs, now))
    const snos = await this.writer.createOrders(drafts)

    return {
      data: drafts.map(({ timeline }, i) => {
        const details = timeline.events.map((e) => ({ location_id: e.hub.id, order_sno: snos[i], tracking_status: e.status }))
        return { sno: snos[i], details, tracking_status: details[details.length - 1] }
      })
    }
  }
}
