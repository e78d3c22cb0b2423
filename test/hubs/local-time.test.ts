import t from 'tap'
import { dateInZone, isoInZone, utcOffsetMinutes } from '../../src/hubs/local-time.js'

// isoInZone builds the string from the date's fields rather than with toISOString: it must give
// exactly what toISOString gives once shifted by the zone's offset, for any instant.
const reference = (date: Date, zone: string): string => {
  const offset = utcOffsetMinutes(date, zone)
  const abs = Math.abs(offset)
  const tag = offset === 0 ? '+00:00' : `${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
  return new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 23) + tag
}
const ZONES = ['Asia/Taipei', 'UTC', 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Chatham', 'America/Los_Angeles']

t.test('the same string as toISOString, shifted to the zone, over random instants', async (t) => {
  let seed = 12345
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  let differences = 0
  for (let i = 0; i < 20_000; i++) {
    // 1000-01-01 to 9999-12-31, and every millisecond value
    const ms = -30_610_224_000_000 + Math.floor(random() * (253_402_300_799_999 + 30_610_224_000_000))
    const date = new Date(ms)
    const zone = ZONES[i % ZONES.length]
    const iso = isoInZone(date, zone)
    if (iso !== reference(date, zone)) differences++
    if (dateInZone(date, zone) !== iso.slice(0, 10)) differences++
  }
  t.equal(differences, 0)
})

t.test('known instants', async (t) => {
  t.equal(isoInZone(new Date('2023-12-02T01:15:00.000Z'), 'Asia/Taipei'), '2023-12-02T09:15:00.000+08:00')
  t.equal(isoInZone(new Date('2023-12-31T20:00:00.007Z'), 'Asia/Taipei'), '2024-01-01T04:00:00.007+08:00', 'across a year, milliseconds padded')
  t.equal(dateInZone(new Date('2023-12-31T20:00:00.000Z'), 'Asia/Taipei'), '2024-01-01')
  t.equal(isoInZone(new Date('2024-03-10T10:30:00.050Z'), 'America/Los_Angeles'), '2024-03-10T03:30:00.050-07:00', 'after the DST change')
  t.equal(isoInZone(new Date('0999-06-01T00:00:00.000Z'), 'UTC'), '0999-06-01T00:00:00.000+00:00', 'a year before 1000 as toISOString writes it')
  t.throws(() => isoInZone(new Date(NaN), 'UTC'), RangeError, 'an invalid date throws as toISOString does')
})
