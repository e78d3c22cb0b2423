import t from 'tap'
import { ReportSchedule, parseSlotTime, slotId, slotIso, slotKeys, REPORT_KEY } from '../../src/reports/slots.js'

const at = (iso: string): Date => new Date(iso)

t.test('slots and keys in Asia/Taipei', async (t) => {
  const s = new ReportSchedule('0 0,8,16 * * *', 'Asia/Taipei')
  const slot = s.latest(at('2026-11-22T01:30:00Z')) // 09:30 in Taipei
  t.equal(slotIso(slot), '2026-11-22T08:00:00.000+08:00')
  t.same(slotKeys(slot), { summary: 'reports/2026-11-22/0800-summary.json', export: 'reports/2026-11-22/0800-orders.csv.gz' })
  t.equal(slotIso(s.previous(slot)), '2026-11-22T00:00:00.000+08:00')
  t.equal(slotIso(s.previous(s.previous(slot))), '2026-11-21T16:00:00.000+08:00', 'across midnight')
  t.equal(slotIso(s.latest(at('2026-11-22T00:00:00Z'))), '2026-11-22T08:00:00.000+08:00', 'a slot is its own latest')
  t.equal(slotKeys(s.latest(at('2026-11-21T16:00:00Z'))).summary, 'reports/2026-11-22/0000-summary.json', 'midnight Taipei is the next day')
  t.match(slotKeys(slot).summary, REPORT_KEY)
})

t.test('the same instant in other zones', async (t) => {
  const instant = at('2026-11-22T01:30:00Z')
  t.equal(slotIso(new ReportSchedule('0 0,8,16 * * *', 'UTC').latest(instant)), '2026-11-22T00:00:00.000+00:00')
  t.equal(slotIso(new ReportSchedule('0 0,8,16 * * *', 'America/New_York').latest(instant)), '2026-11-21T16:00:00.000-05:00')
  t.equal(slotKeys(new ReportSchedule('0 0,8,16 * * *', 'Asia/Kolkata').latest(instant)).summary, 'reports/2026-11-22/0000-summary.json')
  t.equal(slotIso(new ReportSchedule('0 0,8,16 * * *', 'Asia/Kolkata').latest(instant)), '2026-11-22T00:00:00.000+05:30', 'half-hour offsets')
})

t.test('daylight saving time changes', async (t) => {
  const ny = new ReportSchedule('0 0,8,16 * * *', 'America/New_York')
  // 2026-03-08: clocks go from 02:00 to 03:00; the 08:00 slot is 12:00 UTC, not 13:00.
  t.equal(ny.latest(at('2026-03-08T12:30:00Z')).at.toISOString(), '2026-03-08T12:00:00.000Z')
  t.equal(slotIso(ny.previous(ny.latest(at('2026-03-08T12:30:00Z')))), '2026-03-08T00:00:00.000-05:00', 'seven hours earlier in UTC')
  t.equal(slotIso(ny.latest(at('2026-11-01T13:30:00Z'))), '2026-11-01T08:00:00.000-05:00', 'after the autumn change')
})

t.test('other schedules', async (t) => {
  t.equal(slotIso(new ReportSchedule('30 6 * * 1', 'UTC').latest(at('2026-11-22T12:00:00Z'))), '2026-11-16T06:30:00.000+00:00', 'weekly, Mondays 06:30')
  t.equal(slotIso(new ReportSchedule('*/15 * * * *', 'UTC').latest(at('2026-11-22T12:14:59Z'))), '2026-11-22T12:00:00.000+00:00')
  t.throws(() => new ReportSchedule('0 0 1 1 *', 'UTC').latest(at('2026-11-22T12:00:00Z')), /no slot in the last 35 days/, 'yearly schedules are not report slots')
})

t.test('a local time that happens twice (DST fall-back) gives two slots with keys of their own', async (t) => {
  // America/New_York, 2026-11-01: 01:30 EDT (05:30Z), then 01:30 EST (06:30Z).
  const ny = new ReportSchedule('30 1 * * *', 'America/New_York')
  const second = ny.latest(at('2026-11-01T07:00:00Z'))
  const first = ny.previous(second)
  t.equal(first.at.toISOString(), '2026-11-01T05:30:00.000Z', 'node-cron matches the first 01:30')
  t.equal(second.at.toISOString(), '2026-11-01T06:30:00.000Z', 'and the second')
  t.not(slotKeys(first).summary, slotKeys(second).summary, 'two keys')
  t.same(slotKeys(first), { summary: 'reports/2026-11-01/0130-0400-summary.json', export: 'reports/2026-11-01/0130-0400-orders.csv.gz' })
  t.same(slotKeys(second), { summary: 'reports/2026-11-01/0130-0500-summary.json', export: 'reports/2026-11-01/0130-0500-orders.csv.gz' })
  t.equal(slotId(first), '2026-11-01T0130-0400')
  t.match(slotKeys(second).export, REPORT_KEY)
  t.equal(slotKeys(ny.previous(first)).summary, 'reports/2026-10-31/0130-summary.json', 'the night before keeps the plain key')
  t.equal(slotKeys(ny.latest(at('2026-11-03T12:00:00Z'))).summary, 'reports/2026-11-03/0130-summary.json', 'an ordinary night keeps the plain key')

  // America/Havana falls back from 01:00 to 00:00 on the first Sunday of November: with the
  // default schedule, midnight happens twice every year.
  const havana = new ReportSchedule('0 0,8,16 * * *', 'America/Havana')
  const late = havana.latest(at('2026-11-01T05:30:00Z'))
  const early = havana.previous(late)
  t.equal(slotIso(early), '2026-11-01T00:00:00.000-04:00')
  t.equal(slotIso(late), '2026-11-01T00:00:00.000-05:00')
  t.same([slotKeys(early).summary, slotKeys(late).summary], ['reports/2026-11-01/0000-0400-summary.json', 'reports/2026-11-01/0000-0500-summary.json'])
  t.equal(slotIso(havana.previous(early)), '2026-10-31T16:00:00.000-04:00')
  t.equal(slotKeys(havana.latest(at('2026-11-01T14:00:00Z'))).summary, 'reports/2026-11-01/0800-summary.json')
})

t.test('--slot local times are converted with the offset of their own instant', async (t) => {
  const iso = (value: string, zone: string): string => parseSlotTime(value, zone).toISOString()
  t.equal(iso('2026-11-22T08:00', 'Asia/Taipei'), '2026-11-22T00:00:00.000Z')
  t.equal(iso('2026-11-22T0800', 'Asia/Taipei'), '2026-11-22T00:00:00.000Z')
  // Spring forward in New York is at 07:00Z; 03:00 EDT that morning is 07:00Z, not 08:00Z.
  t.equal(iso('2026-03-08T03:00', 'America/New_York'), '2026-03-08T07:00:00.000Z')
  t.equal(iso('2026-03-08T01:30', 'America/New_York'), '2026-03-08T06:30:00.000Z')
  t.throws(() => parseSlotTime('2026-03-08T02:30', 'America/New_York'), /does not exist/, 'a skipped local time')
  t.throws(() => parseSlotTime('2026-11-01T01:30', 'America/New_York'), /happens twice.*2026-11-01T01:30-04:00 or 2026-11-01T01:30-05:00/, 'a repeated one needs its offset')
  t.equal(iso('2026-11-01T01:30-04:00', 'America/New_York'), '2026-11-01T05:30:00.000Z')
  t.equal(iso('2026-11-01T0130-0500', 'America/New_York'), '2026-11-01T06:30:00.000Z')
  t.throws(() => parseSlotTime('2026-11-01T01:30+08:00', 'America/New_York'), /not at UTC\+0800/)
  // Sydney falls back at 03:00 AEDT to 02:00 AEST (a positive offset going down).
  t.equal(iso('2026-04-05T02:30+11:00', 'Australia/Sydney'), '2026-04-04T15:30:00.000Z')
  t.equal(iso('2026-04-05T02:30+10:00', 'Australia/Sydney'), '2026-04-04T16:30:00.000Z')
  t.throws(() => parseSlotTime('2026-02-30T08:00', 'UTC'), /not a valid date/)
  t.throws(() => parseSlotTime('tomorrow', 'UTC'), /must look like/)
})
