import { Faker, base, en, zh_TW as zhTW } from '@faker-js/faker'
import { planTimeline, type Hub, type Random, type Timeline } from './timeline.js'

export interface RecipientDraft {
  name: string
  address: string
  phone: string
}

export interface OrderDraft {
  recipient: RecipientDraft
  timeline: Timeline
  /** The sender's own reference for the parcel (POST /orders). */
  reference?: string
}

/**
 * Makes demo orders: a zh_TW recipient and a timeline. One seeded source drives both, so a
 * given seed (FAKE_SEED) always yields the same recipients, routes and outcomes.
 */
export class OrderGenerator {
  readonly random: Random
  private readonly faker: Faker

  constructor (seed?: number) {
    this.faker = new Faker({ locale: [zhTW, en, base] })
    if (seed !== undefined) this.faker.seed(seed)
    this.random = () => this.faker.number.float()
  }

  recipient (): RecipientDraft {
    const { person, location, phone } = this.faker
    return {
      name: person.lastName() + person.firstName(),
      address: location.city() + location.streetAddress(),
      phone: phone.number({ style: 'mobile' })
    }
  }

  draft (hubs: readonly Hub[], now: Date): OrderDraft {
    return { recipient: this.recipient(), timeline: planTimeline(this.random, hubs, now) }
  }
}
