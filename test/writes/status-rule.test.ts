import t from 'tap'
import fc from 'fast-check'
import { applyEvent, statusOf, type OrderState } from '../../src/writes/status-rule.js'
import { TRACKING_STATUSES } from '../../src/tracking/statuses.js'

const at = (hour: number): Date => new Date(Date.UTC(2026, 10, 29, hour))
const start: OrderState = { status: 'Created', location_id: 1, status_at: at(0), last_event_at: at(0) }

t.test('the contract\'s cases', async (t) => {
  const transit = applyEvent(start, { status: 'In Transit', location_id: 4, occurred_at: at(5) })
  t.equal(transit.status, 'In Transit', 'a newer event moves the status')
  t.equal(applyEvent(transit, { status: 'Package Received', location_id: 1, occurred_at: at(2) }).status, 'In Transit', 'an older event does not')
  const delivered = applyEvent(transit, { status: 'Delivered', location_id: 3, occurred_at: at(9) })
  const after = applyEvent(delivered, { status: 'Exception', location_id: 3, occurred_at: at(12) })
  t.equal(after.status, 'Delivered', 'Delivered is final')
  t.same(after.last_event_at, at(12), 'the later event still counts as the newest')
  const returned = applyEvent(transit, { status: 'Returned to Sender', location_id: 1, occurred_at: at(10) })
  t.equal(applyEvent(returned, { status: 'In Transit', location_id: 4, occurred_at: at(11) }).status, 'Returned to Sender', 'Returned to Sender is final')
})

t.test('applied one by one in any arrival order, the rule gives the status of the timeline', async (t) => {
  const event = fc.record({
    status: fc.constantFrom(...TRACKING_STATUSES.filter((s) => s !== 'Created')),
    location_id: fc.integer({ min: 1, max: 24 }),
    hour: fc.integer({ min: 1, max: 40 })
  })
  fc.assert(fc.property(fc.array(event, { maxLength: 12 }), (events) => {
    let state = start
    const timeline = [{ status: 'Created' as const, location_id: 1, occurred_at: at(0), id: 0 }]
    events.forEach((e, i) => {
      const occurred = at(e.hour)
      state = applyEvent(state, { status: e.status, location_id: e.location_id, occurred_at: occurred })
      timeline.push({ status: e.status as never, location_id: e.location_id, occurred_at: occurred, id: i + 1 })
    })
    return state.status === statusOf(timeline)
  }), { numRuns: 2000 })
  t.pass('2000 random timelines, each in its own arrival order')
})
