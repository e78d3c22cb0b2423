import t from 'tap'
import { ReportSchedule, slotIso, slotKeys, REPORT_KEY } from '../../src/reports/slots.js'

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
