import t from 'tap'
import { plainSno } from '../../src/tracking/hit-shortcut.js'
import { seeded } from '../../src/simulator/random.js'

// What the shortcut took before: the plain form by a regular expression, then Number().
const PLAIN = /^[1-9]\d{0,15}$/
function reference (url: string): number {
  if (!url.startsWith('/query?sno=')) return -1
  const raw = url.slice('/query?sno='.length)
  return PLAIN.test(raw) ? Number(raw) : -1
}
// The shortcut answers a number only up to 2^53 - 1; above that both hand the request on.
const taken = (sno: number): number | 'handed on' => sno < 0 || sno > Number.MAX_SAFE_INTEGER ? 'handed on' : sno

t.test('the plain form of an order number, and nothing else', async (t) => {
  const cases: Array<[string, number | 'handed on']> = [
    ['/query?sno=1', 1],
    ['/query?sno=42', 42],
    ['/query?sno=9007199254740991', Number.MAX_SAFE_INTEGER],
    ['/query?sno=9007199254740992', 'handed on'],
    ['/query?sno=9999999999999999', 'handed on'],
    ['/query?sno=10000000000000000', 'handed on'],
    ['/query?sno=', 'handed on'],
    ['/query?sno=0', 'handed on'],
    ['/query?sno=007', 'handed on'],
    ['/query?sno=1a', 'handed on'],
    ['/query?sno=-1', 'handed on'],
    ['/query?sno=+1', 'handed on'],
    ['/query?sno=1.0', 'handed on'],
    ['/query?sno=1 ', 'handed on'],
    ['/query?sno=１', 'handed on'],
    ['/query?sno=1&extra=2', 'handed on'],
    ['/query/?sno=1', 'handed on'],
    ['/query?snoo=1', 'handed on'],
    ['/QUERY?sno=1', 'handed on']
  ]
  for (const [url, expected] of cases) t.equal(taken(plainSno(url)), expected, url)
})

t.test('the same decision as the regular expression and Number(), over 200,000 random URLs', async (t) => {
  const rnd = seeded(5)
  const alphabet = '0123456789012345678901234567890123456789x-+. &'
  let differ = 0
  for (let i = 0; i < 200_000; i++) {
    const length = Math.floor(rnd() * 20)
    let raw = ''
    for (let j = 0; j < length; j++) raw += alphabet[Math.floor(rnd() * alphabet.length)]
    const url = `/query?sno=${raw}`
    if (taken(plainSno(url)) !== taken(reference(url))) differ++
  }
  t.equal(differ, 0, 'no URL decided differently')
})
