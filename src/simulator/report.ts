import { TRACKING_STATUSES } from '../tracking/statuses.js'
import { formatSpan } from './clock.js'
import type { Summary } from './simulation.js'

const n = (x: number): string => x.toLocaleString('en-US')

/** The summary as printed at the end of a run. */
export function formatSummary (s: Summary): string {
  const lines: string[] = []
  const ended = { done: 'every parcel done', duration: '--duration reached', interrupted: 'interrupted (Ctrl+C)' }[s.ended]
  lines.push(`Run ${s.run}: seed ${s.seed}, ${s.speed}× — ${formatSpan(s.realMs)} real = ${formatSpan(s.virtualMs)} virtual; ended: ${ended}`)
  const statuses = TRACKING_STATUSES.filter((st) => (s.byStatus[st] ?? 0) > 0 || (s.expectedByStatus[st] ?? 0) > 0)
  lines.push(`Parcels by status (GET/POST /query; the simulator's own expectation in brackets), ${n(s.snos.length)} of ${n(s.parcels)} created:`)
  lines.push('  ' + statuses.map((st) => `${st} ${n(s.byStatus[st] ?? 0)} [${n(s.expectedByStatus[st] ?? 0)}]`).join(', '))
  lines.push(`  /query agrees with the simulator for ${n(s.agree)}/${n(s.snos.length)}` +
    (s.disagreements.length === 0 ? '' : `; differs for ${s.disagreements.slice(0, 5).map((d) => `sno ${d.sno} (${d.shown}, expected ${d.expected})`).join(', ')}${s.disagreements.length > 5 ? ', …' : ''}`) +
    (s.notShown > 0 ? `; ${s.notShown} not found` : ''))
  const e = s.events
  lines.push(`Events sent: ${n(e.sent)} scans (${n(e.queue)} queue, ${n(e.http)} HTTP) + ${n(e.resent)} sent again; accepted ${n(e.accepted)}, duplicate ${n(e.duplicate)}, rejected ${n(e.rejected)}` +
    (e.rejected > 0 ? ` (${Object.entries(e.rejectedCodes).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''))
  lines.push(`  stored: ${n(e.sent - e.missing)} shown once by /query, ${n(e.missing)} missing, ${n(e.storedTwice)} shown twice`)
  lines.push(`  made by the service from the drive (geofences): ${Object.entries(s.geofenceEvents).map(([k, v]) => `${k} ${n(v)}`).join(', ') || 'none'}`)
  lines.push(`Positions: ${n(s.positions.published)} published over MQTT (QoS 1), ${n(s.positions.acknowledged)} acknowledged`)
  lines.push(`Loads: ${n(s.loads.queue + s.loads.http)} (${n(s.loads.queue)} queue, ${n(s.loads.http)} HTTP; ${n(s.loads.parcels)} parcels${s.loads.refused > 0 ? `; ${s.loads.refused} refused` : ''}), unloads at transit hubs ${n(s.unloads.queue + s.unloads.http)} (${n(s.unloads.parcels)} parcels)` +
    (s.loads.queueConsumer === 'dead-lettered' ? '; the queue consumer dead-letters vehicle.load, so loads went over HTTP' : ''))
  lines.push(`/fleet agrees on parcels on board for ${s.fleetAgrees}/${s.vehicles.length} vehicles` +
    (s.fleetAgrees === s.vehicles.length ? '' : ` (differs: ${s.vehicles.filter((v) => v.shown !== v.onboard).slice(0, 5).map((v) => `${v.id} ${String(v.shown)} vs ${v.onboard}`).join(', ')})`))
  lines.push(`Largest lag behind the virtual clock: ${formatSpan(s.maxLagMs)} real (${formatSpan(s.maxLagVirtualMs)} virtual)` +
    (s.behindWarnings > 0 ? `; fell behind by more than 1 s ${s.behindWarnings} time(s)` : ''))
  if (s.deadLettered !== 0) lines.push(`Dead-lettered by the queue consumer during the run: ${n(s.deadLettered)} (see the dead-letter queue's x-reject-reason)`)
  if (s.bench !== undefined) {
    const b = s.bench
    lines.push(`Bench: ${b.eventsPerS.toFixed(1)} scans/s, ${b.positionsPerS.toFixed(1)} positions/s, ${b.ordersPerS.toFixed(1)} orders/s (real time); ` +
      `scan → /query (${b.probes} probes): p50 ${b.p50Ms.toFixed(0)} ms, p99 ${b.p99Ms.toFixed(0)} ms, max ${b.maxMs.toFixed(0)} ms`)
  }
  return lines.join('\n')
}
