import t from 'tap'
import { HUBS } from '../../src/hubs/hubs.js'
import { dateInZone, addDays } from '../../src/hubs/local-time.js'
import { OrderGenerator } from '../../src/orders/generator.js'
import { planTimeline, type Hub, type Timeline } from '../../src/orders/timeline.js'

const hubs: readonly Hub[] = HUBS
const now = new Date('2026-11-23T12:00:00.000Z')
const N = 6000

function sample (seed: number): Timeline[] {
  const generator = new OrderGenerator(seed)
  return Array.from({ length: N }, () => planTimeline(generator.random, hubs, now))
}

const timelines = sample(20261123)
const last = (tl: Timeline): string => tl.events[tl.events.length - 1].status
const share = (predicate: (tl: Timeline) => boolean): number => timelines.filter(predicate).length / N

/**
 * Expected shares, from the contract's rules: 1–3 transit hubs with a 5% exception at each;
 * half of the rest stop in transit; then 5% exception at each of Out for Delivery, Delivery
 * Attempted and the final step; the final step is Returned to Sender 5% of the time.
 */
const pTransitOk = (0.95 + 0.95 ** 2 + 0.95 ** 3) / 3
const pFinalStep = pTransitOk * 0.5 * 0.95 * 0.95
const expected = {
  'In Transit': pTransitOk * 0.5,
  Delivered: pFinalStep * 0.95 * 0.95,
  'Returned to Sender': pFinalStep * 0.05 * 0.95,
  Exception: (1 - pTransitOk) + pTransitOk * 0.5 * (0.05 + 0.95 * 0.05) + pFinalStep * 0.05
}

t.test('outcomes follow the original generator\'s odds', async (t) => {
  let total = 0
  for (const [status, p] of Object.entries(expected)) {
    const observed = share((tl) => last(tl) === status)
    const tolerance = 4 * Math.sqrt(p * (1 - p) / N) // four standard errors
    t.ok(Math.abs(observed - p) <= tolerance, `${status}: ${(observed * 100).toFixed(2)}% (expected ${(p * 100).toFixed(2)}% ± ${(tolerance * 100).toFixed(2)})`)
    total += observed
  }
  t.equal(Math.round(total * N), N, 'every timeline ends in one of these four')
  for (const transits of [1, 2, 3]) {
    const observed = share((tl) => tl.route.transits.length === transits)
    t.ok(Math.abs(observed - 1 / 3) < 4 * Math.sqrt((1 / 3) * (2 / 3) / N), `${transits} transit hub(s): ${(observed * 100).toFixed(1)}%`)
  }
})

t.test('every timeline keeps the rules', async (t) => {
  const problems: string[] = []
  for (const [i, { route, events, estimatedDelivery }] of timelines.entries()) {
    const fail = (why: string): number => problems.push(`#${i}: ${why}`)
    const ids = [route.sender, route.receiver, ...route.transits].map((h) => h.id)
    if (new Set(ids).size !== ids.length) fail('hubs repeat')
    if (events[0].status !== 'Created' || events[0].hub !== route.sender) fail('does not start with Created at the sender')
    if (events[1].status !== 'Package Received' || events[1].hub !== route.sender) fail('no Package Received at the sender')
    const transit = events.filter((e) => e.status === 'In Transit')
    transit.forEach((e, k) => { if (e.hub !== route.transits[k]) fail('In Transit out of route order') })
    for (const e of events) {
      if ((e.status === 'Out for Delivery' || e.status === 'Delivery Attempted' || e.status === 'Delivered') && e.hub !== route.receiver) fail(`${e.status} away from the receiver`)
      if (e.status === 'Returned to Sender' && e.hub !== route.sender) fail('returned elsewhere than the sender')
    }
    const exceptions = events.filter((e) => e.status === 'Exception').length
    if (exceptions > 1 || (exceptions === 1 && last({ route, events, estimatedDelivery }) !== 'Exception')) fail('an Exception does not end the timeline')
    const statuses = events.map((e) => e.status)
    if (statuses.includes('Delivered') && !statuses.includes('Delivery Attempted')) fail('Delivered without an attempt')
    for (let k = 1; k < events.length; k++) {
      if (events[k].occurredAt <= events[k - 1].occurredAt) fail('times do not increase')
    }
    if (events[events.length - 1].occurredAt > now) fail('an event in the future')
    if (now.getTime() - events[0].occurredAt.getTime() > 30 * 86_400_000) fail('older than a month')
    const created = dateInZone(events[0].occurredAt, route.receiver.timezone)
    const expectedDate = last({ route, events, estimatedDelivery }) === 'Delivered'
      ? dateInZone(events[events.length - 1].occurredAt, route.receiver.timezone)
      : addDays(created, 1 + route.transits.length)
    if (estimatedDelivery !== expectedDate) fail(`estimated delivery ${estimatedDelivery}, expected ${expectedDate}`)
    if (problems.length > 10) break
  }
  t.same(problems, [], `${N} timelines checked`)
})

t.test('the same seed gives the same orders', async (t) => {
  const a = new OrderGenerator(7)
  const b = new OrderGenerator(7)
  const c = new OrderGenerator(8)
  const draftsA = Array.from({ length: 20 }, () => a.draft(hubs, now))
  const draftsB = Array.from({ length: 20 }, () => b.draft(hubs, now))
  const draftsC = Array.from({ length: 20 }, () => c.draft(hubs, now))
  t.same(draftsA, draftsB)
  t.notSame(draftsA, draftsC)
})

t.test('recipients look like Taiwanese ones', async (t) => {
  const generator = new OrderGenerator(3)
  for (let i = 0; i < 200; i++) {
    const r = generator.recipient()
    if (!/^\p{Script=Han}{2,4}$/u.test(r.name)) t.fail(`name ${r.name}`)
    if (!/^09\d{8}$/.test(r.phone)) t.fail(`phone ${r.phone}`)
    if (!/^\p{Script=Han}+[縣市]\p{Script=Han}+\d+號$/u.test(r.address)) t.fail(`address ${r.address}`)
  }
  t.pass('200 names, phones and addresses checked')
})
