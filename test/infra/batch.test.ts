import t from 'tap'
import { Batcher } from '../../src/infra/batch.js'

function recording (failures = 0): { batcher: Batcher<number, string>, calls: number[][] } {
  const calls: number[][] = []
  const batcher = new Batcher<number, string>(async (keys) => {
    calls.push(keys)
    await new Promise((resolve) => setTimeout(resolve, 5))
    if (calls.length <= failures) throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' })
    return new Map(keys.filter((k) => k % 10 !== 0).map((k) => [k, `v${k}`]))
  }, 'none', 4)
  return { batcher, calls }
}

t.test('keys of one turn go in one call, duplicates once, each caller gets its own value', async (t) => {
  const { batcher, calls } = recording()
  const results = await Promise.all([1, 2, 2, 3, 10].map(async (k) => await batcher.load(k)))
  t.same(calls, [[1, 2, 3, 10]])
  t.same(results, ['v1', 'v2', 'v2', 'v3', 'none'], 'a key the call did not return gets the missing value')
})

t.test('more keys than the batch size are split', async (t) => {
  const { batcher, calls } = recording()
  const results = await Promise.all([1, 2, 3, 4, 5, 6].map(async (k) => await batcher.load(k)))
  t.same(calls, [[1, 2, 3, 4], [5, 6]])
  t.same(results, ['v1', 'v2', 'v3', 'v4', 'v5', 'v6'])
})

t.test('keys asked in later turns go in later calls', async (t) => {
  const { batcher, calls } = recording()
  const first = batcher.load(1)
  await new Promise((resolve) => setImmediate(resolve))
  const second = batcher.load(2)
  t.same(await Promise.all([first, second]), ['v1', 'v2'])
  t.same(calls, [[1], [2]])
})

t.test('a failed call fails every caller in it, and the next call is made afresh', async (t) => {
  const { batcher, calls } = recording(1)
  const results = await Promise.allSettled([batcher.load(1), batcher.load(2), batcher.load(2)])
  t.equal(results.length, 3)
  t.ok(results.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'ECONNREFUSED'))
  t.equal(await batcher.load(2), 'v2')
  t.same(calls, [[1, 2], [2]])
})
