import { distanceM, offsetM } from '../fleet/geo.js'
import type { TrackingStatus } from '../tracking/statuses.js'
import { Agenda, HOUR, MINUTE, SECOND, VirtualClock, formatSpan } from './clock.js'
import { chooseLoad, chooseReposition, demandByHub } from './dispatcher.js'
import { Api, ApiError, type EventResult, type PositionPublisher, type QueuePublisher } from './links.js'
import { between, gaussian, seeded, stream, type Random } from './random.js'
import { Drive, HUBS, SCAN_GAPS, hubById, planParcel, planPath, pointOn, type ParcelPlan, type Path, type SimHub } from './world.js'

export interface SimOptions {
  speed: number
  vehicles: number
  parcels: number
  seed: number
  /** Real milliseconds after which the run ends (undefined: when every parcel is done). */
  durationMs: number | undefined
  verbose: boolean
  runId: string
  capacity: number
  /** Share of scans, loads and unloads sent over HTTP rather than the queue. */
  httpShare: number
  /** Share of scans sent a second time (as an at-least-once carrier would): each must come back a duplicate. */
  resendShare: number
  /** Virtual seconds between fixes while driving, and while parked. */
  fixIntervalS: number
  parkedFixIntervalS: number
  /** The service's geofence settings (GEOFENCE_RADIUS_M, GEOFENCE_DWELL_S). */
  radiusM: number
  dwellS: number
  /** Vehicles to use as they are registered (from GET /fleet) rather than registering new ones. */
  reuseVehicles: boolean
  /** Bench mode: sample scan → /query delays. */
  bench: boolean
  progressEveryMs: number
  /** Longest wait (real) after the end for the service to show every change. */
  settleMs: number
}

type Phase = 'unbooked' | 'booked' | 'waiting' | 'on board' | 'last mile' | 'done'
type Channel = 'queue' | 'http'

interface SentScan { eventId: string, status: TrackingStatus, location: number, at: number, channel: Channel, resent: number }

interface Parcel {
  index: number
  plan: ParcelPlan
  rng: Random
  sno: number | undefined
  ready: Promise<void>
  markReady: (err?: Error) => void
  /** Its last load or unload: the next one for it is sent after this one is done (HTTP answers may overtake each other). */
  chain: Promise<unknown>
  phase: Phase
  /** POST /orders failed: nothing more is sent for it. */
  failed: boolean
  /** Index in plan.hops of the hub it is at or last left. */
  hop: number
  hub: number
  nextHop: number
  waitingSince: number
  returning: boolean
  vehicle: Vehicle | undefined
  /** The status the service should show, from what was sent and what the geofences make of the drive. */
  expected: TrackingStatus
  /** The newest time sent or caused for it (ms); its next scan is dated after it. */
  lastStamp: number
  scans: SentScan[]
}

interface Vehicle {
  id: string
  index: number
  capacity: number
  rng: Random
  state: 'parked' | 'driving'
  /** Where it is parked, or where it is driving to. */
  hub: number
  from: number
  path: Path | undefined
  drive: Drive | undefined
  legStart: number
  onboard: Set<Parcel>
  idle: boolean
  minDepartAt: number
  /** When the service has decided its arrival where it is parked: no loading or leaving before. */
  checkedInAt: number
  /** Invalidates scheduled decisions and fix loops of an earlier stop. */
  epoch: number
  decisionAt: number
  /** Real ms of the first fix inside the destination's radius (the service's arrival time). */
  entryStamp: number | undefined
  departed: boolean
  lastStamp: number
}

export interface Summary {
  run: string
  seed: number
  speed: number
  ended: 'done' | 'duration' | 'interrupted'
  realMs: number
  virtualMs: number
  parcels: number
  snos: number[]
  byStatus: Record<string, number>
  expectedByStatus: Record<string, number>
  agree: number
  disagreements: Array<{ sno: number, expected: string, shown: string }>
  notShown: number
  events: {
    sent: number
    queue: number
    http: number
    resent: number
    accepted: number
    duplicate: number
    rejected: number
    rejectedCodes: Record<string, number>
    missing: number
    storedTwice: number
  }
  geofenceEvents: Record<string, number>
  positions: { published: number, acknowledged: number }
  loads: { queue: number, http: number, parcels: number, refused: number, queueConsumer: 'unknown' | 'applied' | 'dead-lettered' }
  unloads: { queue: number, http: number, parcels: number }
  orders: { created: number, failed: number }
  maxLagMs: number
  maxLagVirtualMs: number
  behindWarnings: number
  deadLettered: number
  vehicles: Array<{ id: string, onboard: number, shown: number | undefined }>
  fleetAgrees: number
  bench?: BenchFigures
}

export interface BenchFigures {
  eventsPerS: number
  positionsPerS: number
  ordersPerS: number
  probes: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const iso = (ms: number): string => new Date(ms).toISOString()
const count = <K extends string>(map: Record<K, number>, key: K, by = 1): void => { map[key] = (map[key] ?? 0) + by }
const hubName = (id: number): string => hubById.get(id)?.title ?? String(id)

/** Most messages published and not yet confirmed before the simulation stops handing out work. */
const MAX_OUTSTANDING = 5000
const HTTP_BATCH_MS = 50

/**
 * The actors: parcels booked, handed in, carried hop by hop and delivered (or not); vehicles
 * driving between hubs and parked at them; a dispatcher deciding each departure. Every decision
 * depends only on the seed and the virtual time, never on the service's answers or the real
 * clock, so a seed gives the same run whatever the machine (while it keeps up with the clock).
 */
export class Simulation {
  private clock: VirtualClock
  private readonly agenda = new Agenda()
  private readonly parcels: Parcel[] = []
  private readonly vehicles: Vehicle[] = []
  private readonly waiting = new Map<number, Set<Parcel>>()
  private readonly paths = new Map<string, Path>()
  private readonly pending = new Set<Promise<unknown>>()
  private httpBatch: Array<{ event: Record<string, unknown>, resolve: () => void, reject: (err: unknown) => void }> = []
  private httpTimer: NodeJS.Timeout | undefined
  private stopReason: Summary['ended'] | undefined
  private wake: (() => void) | undefined
  private maxLagMs = 0
  private lastBehindWarning = 0
  private behindWarnings = 0
  private readonly counters = {
    queueEvents: 0,
    httpEvents: 0,
    resent: 0,
    httpAccepted: 0,
    httpDuplicate: 0,
    rejected: 0,
    rejectedCodes: {} as Record<string, number>,
    loadsQueue: 0,
    loadsHttp: 0,
    loadedParcels: 0,
    loadRefused: 0,
    unloadsQueue: 0,
    unloadsHttp: 0,
    unloadedParcels: 0,
    ordersCreated: 0,
    ordersFailed: 0
  }

  private readonly probeDelays: number[] = []
  private probesActive = 0
  private scanCount = 0
  private deadAtStart = 0
  /** Whether the queue consumer applies vehicle.load (checked on the run's first queue load). */
  private queueLoads: 'unknown' | 'applied' | 'dead-lettered' = 'unknown'
  private loadCheck: Promise<boolean> | undefined
  private errors: string[] = []

  constructor (
    private readonly options: SimOptions,
    private readonly api: Api,
    private readonly queue: QueuePublisher,
    private readonly positions: PositionPublisher,
    private readonly out: { progress: (line: string) => void, log: (line: string) => void } = { progress: (l) => console.error(l), log: (l) => console.log(l) }
  ) {
    this.clock = new VirtualClock(options.speed, Date.now())
  }

  // ---------------------------------------------------------------- set-up

  /** Registers the vehicles (or takes existing ones) and plans every parcel; no virtual time passes. */
  async prepare (): Promise<void> {
    const { options } = this
    const hubs = [...HUBS].sort((a, b) => a.id - b.id)
    let ids: Array<{ id: string, home: number, capacity: number }>
    if (options.reuseVehicles) {
      const fleet = await this.api.call<{ vehicles: Array<{ id: string, capacity: number, home_location_id: number }> }>('GET', '/fleet')
      ids = fleet.vehicles.slice(0, options.vehicles).map((v) => ({ id: v.id, home: v.home_location_id, capacity: v.capacity }))
      if (ids.length < options.vehicles) throw new Error(`--reuse-vehicles: GET /fleet has ${ids.length} vehicles, ${options.vehicles} asked for (npm run db:seed -- --vehicles N registers more)`)
    } else {
      ids = Array.from({ length: options.vehicles }, (_, i) => ({ id: `SIM-${options.runId}-${String(i + 1).padStart(3, '0')}`, home: hubs[i % hubs.length].id, capacity: options.capacity }))
      await this.inBatches(ids, 16, async (v) => {
        try {
          await this.api.call('POST', '/vehicles', { id: v.id, name: `模擬車 ${v.id}`, capacity: v.capacity, home_location_id: v.home })
        } catch (err) {
          if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
            throw new Error(`POST /vehicles needs the admin token (ADMIN_TOKEN): ${err.message}. With only an ingest token, register vehicles first and pass --reuse-vehicles`)
          }
          throw err
        }
      })
    }
    for (const [index, v] of ids.entries()) {
      this.vehicles.push({
        id: v.id,
        index,
        capacity: v.capacity,
        rng: stream(options.seed, 1, index),
        state: 'parked',
        hub: v.home,
        from: v.home,
        path: undefined,
        drive: undefined,
        legStart: 0,
        onboard: new Set(),
        idle: true,
        minDepartAt: 0,
        checkedInAt: 0,
        epoch: 0,
        decisionAt: Infinity,
        entryStamp: undefined,
        departed: false,
        lastStamp: 0
      })
    }
    // Bookings spread over the first half of the run (at most 12 virtual hours), in a seeded order.
    const window = Math.min(12 * HOUR, options.durationMs === undefined ? 6 * HOUR : options.durationMs * options.speed / 2)
    const times = seeded(options.seed)
    for (let index = 0; index < options.parcels; index++) {
      const rng = stream(options.seed, 2, index)
      const plan = planParcel(rng, index, Math.round(times() * window))
      let markReady: (err?: Error) => void = () => {}
      const ready = new Promise<void>((resolve, reject) => { markReady = (err) => { if (err === undefined) resolve(); else reject(err) } })
      ready.catch(() => {})
      this.parcels.push({
        index,
        plan,
        rng,
        sno: undefined,
        ready,
        markReady,
        chain: ready,
        phase: 'unbooked',
        failed: false,
        hop: 0,
        hub: plan.sender,
        nextHop: plan.hops[1],
        waitingSince: 0,
        returning: false,
        vehicle: undefined,
        expected: 'Created',
        lastStamp: 0,
        scans: []
      })
    }
    this.deadAtStart = (await this.queue.depth()).dead
  }

  private async inBatches<T> (items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
    for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(work))
  }

  // ---------------------------------------------------------------- the run

  stop (reason: Summary['ended']): void {
    this.stopReason ??= reason
    this.wake?.()
  }

  async run (): Promise<Summary> {
    const { options } = this
    // The clock starts now: everything before was set-up.
    this.clock = new VirtualClock(options.speed, Date.now())
    const endAt = options.durationMs === undefined ? Infinity : this.clock.realStart + options.durationMs
    for (const p of this.parcels) this.agenda.at(p.plan.bookedAt, () => this.book(p))
    for (const v of this.vehicles) {
      this.startParked(v, 0)
      v.checkedInAt = this.checkInDelay()
      this.scheduleDecision(v, Math.round(between(v.rng, 0, 15 * MINUTE)))
    }
    let lastProgress = Date.now()
    while (this.stopReason === undefined) {
      const now = Date.now()
      if (now >= endAt) { this.stop('duration'); break }
      const due = this.clock.virtualAt(now)
      let ran = 0
      while (this.agenda.peek() <= due && this.stopReason === undefined && Date.now() < endAt) {
        const entry = this.agenda.pop()
        if (entry === undefined) break
        this.noteLag(Date.now() - this.clock.realAt(entry.at))
        entry.run()
        if (++ran % 500 === 0) await this.backPressure()
      }
      if (this.parcels.every((p) => p.phase === 'done')) { this.stop('done'); break }
      await this.backPressure()
      if (Date.now() - lastProgress >= options.progressEveryMs) {
        lastProgress = Date.now()
        this.out.progress(this.statusLine())
      }
      const next = Math.min(this.clock.realAt(this.agenda.peek()), endAt, lastProgress + options.progressEveryMs)
      const wait = Math.max(0, Math.min(next - Date.now(), 250))
      if (wait > 0) await new Promise<void>((resolve) => { const timer = setTimeout(resolve, wait); this.wake = () => { clearTimeout(timer); resolve() } })
      this.wake = undefined
    }
    const virtualMs = this.clock.virtualAt(Date.now())
    const realMs = Date.now() - this.clock.realStart
    this.out.progress(this.statusLine())
    return await this.finish(virtualMs, realMs)
  }

  private noteLag (lagMs: number): void {
    if (lagMs > this.maxLagMs) this.maxLagMs = lagMs
    // Behind by more than a second of real time (a minute of virtual time at 60×): said, not hidden.
    if (lagMs > 1000 && Date.now() - this.lastBehindWarning > 5000) {
      this.lastBehindWarning = Date.now()
      this.behindWarnings++
      this.out.progress(`behind the virtual clock by ${formatSpan(lagMs)} real (${formatSpan(lagMs * this.options.speed)} virtual): actions run late and are dated when they were due; ` +
        `outstanding: ${this.queue.outstanding} queue, ${this.positions.outstanding} MQTT, ${this.api.inFlight} HTTP`)
    }
  }

  private async backPressure (): Promise<void> {
    while (this.stopReason === undefined && (this.queue.outstanding > MAX_OUTSTANDING || this.positions.outstanding > MAX_OUTSTANDING || this.api.inFlight > 256)) {
      await sleep(5)
    }
  }

  private track<T> (promise: Promise<T>): void {
    const tracked = promise.catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err)
      if (this.errors.length < 20) this.errors.push(message)
      if (this.errors.length <= 3) this.out.progress(`error: ${message}`)
    }).finally(() => this.pending.delete(tracked))
    this.pending.add(tracked)
  }

  private log (t: number, line: string): void {
    if (this.options.verbose) this.out.log(`[${formatVirtual(t)}] ${line}`)
  }

  // ---------------------------------------------------------------- parcels

  private book (p: Parcel): void {
    p.phase = 'booked'
    const body = { recipient: p.plan.recipient, sender_location_id: p.plan.sender, receiver_location_id: p.plan.receiver, reference: `sim ${this.options.runId} #${p.index}` }
    this.log(p.plan.bookedAt, `parcel #${p.index} booked: ${hubName(p.plan.sender)} → ${p.plan.hops.slice(1, -1).map(hubName).join(' → ')} → ${hubName(p.plan.receiver)}`)
    this.track((async () => {
      try {
        const answer = await this.api.call<{ sno: number, details: Array<{ time: string }> }>('POST', '/orders', body, { 'idempotency-key': `sim-${this.options.runId}-${p.index}` })
        p.sno = answer.sno
        p.lastStamp = Math.max(p.lastStamp, Date.parse(answer.details[0]?.time ?? '') || 0)
        this.counters.ordersCreated++
        p.markReady()
      } catch (err) {
        this.counters.ordersFailed++
        p.failed = true
        p.phase = 'done'
        p.markReady(new Error(`parcel #${p.index} was not created`))
        throw err
      }
    })())
    this.agenda.at(p.plan.bookedAt + p.plan.handInAfter, () => this.handIn(p, p.plan.bookedAt + p.plan.handInAfter))
  }

  private handIn (p: Parcel, t: number): void {
    if (p.failed) return
    this.scan(p, 'Package Received', p.plan.sender, t, 'pr')
    this.wait(p, p.plan.sender, t)
  }

  private wait (p: Parcel, hub: number, t: number): void {
    p.phase = 'waiting'
    p.hub = hub
    p.waitingSince = t
    p.nextHop = p.returning ? p.plan.sender : p.plan.hops[p.hop + 1]
    let set = this.waiting.get(hub)
    if (set === undefined) this.waiting.set(hub, set = new Set())
    set.add(p)
    // An idle vehicle parked here comes to see (a few minutes later: the parcel is being sorted).
    for (const v of this.vehicles) {
      if (v.state === 'parked' && v.idle && v.hub === hub) this.scheduleDecision(v, t + 5 * MINUTE)
    }
  }

  private complete (p: Parcel, status: TrackingStatus, hub: number, t: number, suffix: string): void {
    this.scan(p, status, hub, t, suffix)
    p.phase = 'done'
  }

  /** A hub scan: a tracking event over the queue (or, for a share, POST /events), id from (run, parcel, step). */
  private scan (p: Parcel, status: TrackingStatus, location: number, t: number, step: string): void {
    const at = Math.max(Math.round(this.clock.realAt(t)), p.lastStamp + 1)
    p.lastStamp = at
    p.expected = status
    const channel: Channel = p.rng() < this.options.httpShare ? 'http' : 'queue'
    const scan: SentScan = { eventId: `sim:${this.options.runId}:${p.index}:${step}`, status, location, at, channel, resent: 0 }
    p.scans.push(scan)
    this.log(t, `parcel #${p.index}${p.sno === undefined ? '' : ` (sno ${p.sno})`}: ${status} at ${hubName(location)} (${channel})`)
    this.sendScan(p, scan, false)
    if (p.rng() < this.options.resendShare) {
      const later = t + between(p.rng, 1, 10) * MINUTE
      this.agenda.at(later, () => { scan.resent++; this.counters.resent++; this.sendScan(p, scan, true) })
    }
  }

  private sendScan (p: Parcel, scan: SentScan, resend: boolean): void {
    this.scanCount++
    const probe = this.options.bench && !resend && this.scanCount % 10 === 0 && this.probesActive < 8
    const send = async (): Promise<void> => {
      await p.ready
      const event = { event_id: scan.eventId, sno: p.sno, status: scan.status, location_id: scan.location, occurred_at: iso(scan.at) }
      const started = performance.now()
      if (probe) this.probesActive++
      try {
        if (scan.channel === 'queue') {
          if (!resend) this.counters.queueEvents++
          await this.queue.publish({ type: 'tracking.event', ...event })
        } else {
          if (!resend) this.counters.httpEvents++
          await new Promise<void>((resolve, reject) => {
            this.httpBatch.push({ event, resolve, reject })
            if (this.httpBatch.length >= 500) this.flushHttp()
            else this.httpTimer ??= setTimeout(() => this.flushHttp(), HTTP_BATCH_MS)
          })
        }
        if (probe) await this.probe(p, scan, started)
      } finally {
        if (probe) this.probesActive--
      }
    }
    this.track(send())
  }

  private flushHttp (): void {
    clearTimeout(this.httpTimer)
    this.httpTimer = undefined
    const batch = this.httpBatch.splice(0, 500)
    if (batch.length === 0) return
    if (this.httpBatch.length > 0) this.httpTimer = setTimeout(() => this.flushHttp(), 0)
    this.track((async () => {
      const settle = (i: number, err?: unknown): void => {
        if (err === undefined) batch[i].resolve()
        else batch[i].reject(err)
      }
      try {
        const { results } = await this.api.call<{ results: EventResult[] }>('POST', '/events', { events: batch.map((b) => b.event) })
        for (const [i, r] of results.entries()) {
          if (r.result === 'accepted') this.counters.httpAccepted++
          else if (r.result === 'duplicate') this.counters.httpDuplicate++
          else { this.counters.rejected++; count(this.counters.rejectedCodes, r.code ?? 'UNKNOWN') }
          settle(i)
        }
      } catch (err) {
        batch.forEach((_, i) => settle(i, err))
      }
    })())
  }

  /** Bench: how long from sending a scan until GET /query shows it. */
  private async probe (p: Parcel, scan: SentScan, started: number): Promise<void> {
    const deadline = started + 30_000
    while (performance.now() < deadline) {
      try {
        const body = await this.api.call<QueryAnswer>('GET', `/query?sno=${String(p.sno)}`)
        if (body.details.some((d) => d.status === scan.status && Date.parse(d.time) === scan.at)) {
          this.probeDelays.push(performance.now() - started)
          return
        }
      } catch {}
      await sleep(10)
    }
  }

  // ---------------------------------------------------------------- vehicles

  private scheduleDecision (v: Vehicle, at: number): void {
    const t = Math.max(at, v.checkedInAt)
    if (t >= v.decisionAt) return
    v.decisionAt = t
    const epoch = v.epoch
    this.agenda.at(t, () => {
      if (v.epoch !== epoch || v.decisionAt !== t || v.state !== 'parked') return
      v.decisionAt = Infinity
      this.decide(v, t)
    })
  }

  private pathBetween (from: number, to: number): Path {
    const key = `${from}>${to}`
    let path = this.paths.get(key)
    if (path === undefined) {
      path = planPath(hubById.get(from) as SimHub, hubById.get(to) as SimHub, Math.max(2000, this.options.radiusM * 5))
      this.paths.set(key, path)
    }
    return path
  }

  /** The dispatcher, for a vehicle parked and free to leave: what to load and where to go. */
  private decide (v: Vehicle, t: number): void {
    const here = this.waiting.get(v.hub) ?? new Set<Parcel>()
    const choice = chooseLoad(here, v.capacity, t)
    if (choice !== undefined) {
      for (const p of choice.parcels) {
        here.delete(p)
        p.phase = 'on board'
        p.vehicle = v
        v.onboard.add(p)
      }
      this.sendLoad(v, 'load', choice.parcels, t)
      const departAt = Math.max(v.minDepartAt, t + between(v.rng, 10, 20) * MINUTE)
      this.log(t, `${v.id} at ${hubName(v.hub)} loads ${choice.parcels.length} for ${hubName(choice.destination)}, leaves at ${formatVirtual(departAt)}`)
      v.idle = false
      this.agenda.at(departAt, () => this.depart(v, choice.destination, departAt))
      return
    }
    const waitingAll: Array<Parcel & { hub: number }> = []
    for (const set of this.waiting.values()) for (const p of set) waitingAll.push(p)
    const covered = new Set<number>()
    for (const other of this.vehicles) if (other !== v && (other.state === 'driving' || other.idle)) covered.add(other.hub)
    const target = chooseReposition(v.hub, demandByHub(waitingAll, t), covered, (to) => this.pathBetween(v.hub, to).length / 75_000)
    if (target !== undefined) {
      const departAt = Math.max(v.minDepartAt, t + 5 * MINUTE)
      this.log(t, `${v.id} at ${hubName(v.hub)} drives empty to ${hubName(target)}, where parcels wait`)
      v.idle = false
      this.agenda.at(departAt, () => this.depart(v, target, departAt))
      return
    }
    v.idle = true
    this.scheduleDecision(v, t + 30 * MINUTE)
  }

  private depart (v: Vehicle, destination: number, t: number): void {
    v.epoch++
    v.state = 'driving'
    v.idle = false
    v.decisionAt = Infinity
    v.from = v.hub
    v.hub = destination
    v.path = this.pathBetween(v.from, destination)
    v.drive = new Drive(v.path, between(v.rng, 60, 90))
    v.legStart = t
    v.entryStamp = undefined
    v.departed = false
    this.log(t, `${v.id} leaves ${hubName(v.from)} for ${hubName(destination)} with ${v.onboard.size} parcels (${(v.path.length / 1000).toFixed(0)} km, ${formatSpan(v.drive.duration)})`)
    this.driveFix(v, t, v.epoch)
  }

  private fixPayload (v: Vehicle, point: { lat: number, lng: number }, t: number, kmh: number, heading: number | undefined): { lat: number, lng: number, stamp: number } {
    const accuracy = Math.round(between(v.rng, 4, 15))
    const noisy = offsetM(point.lat, point.lng, Math.abs(gaussian(v.rng)) * accuracy / 2, v.rng() * 360)
    // Fix times strictly increase per vehicle: a fix not newer than the last decides nothing.
    const stamp = Math.max(Math.round(this.clock.realAt(t)), v.lastStamp + 1)
    v.lastStamp = stamp
    const lat = Math.round(noisy.lat * 1e6) / 1e6
    const lng = Math.round(noisy.lng * 1e6) / 1e6
    const fix: Record<string, unknown> = { lat, lng, ts: stamp, speed: kmh === 0 ? 0 : Math.max(0, Math.round(kmh + gaussian(v.rng) * 3)), accuracy }
    if (heading !== undefined) fix.heading = heading
    this.track(this.positions.publish(v.id, fix))
    return { lat, lng, stamp }
  }

  private driveFix (v: Vehicle, t: number, epoch: number): void {
    if (v.epoch !== epoch || v.drive === undefined || v.path === undefined) return
    const elapsed = t - v.legStart
    // (Within a millisecond: legStart + duration - legStart need not give duration back exactly.)
    if (elapsed >= v.drive.duration - 1) { this.arrive(v, v.legStart + v.drive.duration); return }
    const { d, kmh } = v.drive.distanceAt(elapsed)
    const point = pointOn(v.path, d)
    const fix = this.fixPayload(v, point, t, kmh, point.heading)
    const from = hubById.get(v.from) as SimHub
    const to = hubById.get(v.hub) as SimHub
    if (!v.departed && distanceM(fix.lat, fix.lng, from.lat, from.lng) > this.options.radiusM * 1.5) {
      // The service's departure: In Transit at the hub left, for the parcels on board, dated at this fix.
      v.departed = true
      for (const p of v.onboard) {
        p.expected = 'In Transit'
        p.lastStamp = Math.max(p.lastStamp, fix.stamp)
      }
    }
    if (v.entryStamp === undefined && distanceM(fix.lat, fix.lng, to.lat, to.lng) <= this.options.radiusM) v.entryStamp = fix.stamp
    const next = Math.min(t + this.fixIntervalMs(), v.legStart + v.drive.duration)
    this.agenda.at(next, () => this.driveFix(v, next, epoch))
  }

  private fixIntervalMs (): number {
    // At least 5 ms of real time between fixes, so that fix times stay distinct at any speed.
    return Math.max(this.options.fixIntervalS * SECOND, 5 * this.options.speed)
  }

  /** Parked at a hub: fixes near its centre until it leaves. */
  private startParked (v: Vehicle, t: number): void {
    v.state = 'parked'
    v.epoch++
    const epoch = v.epoch
    const hub = hubById.get(v.hub) as SimHub
    const tick = (at: number): void => {
      if (v.epoch !== epoch) return
      const fix = this.fixPayload(v, hub, at, 0, undefined)
      if (v.entryStamp === undefined && distanceM(fix.lat, fix.lng, hub.lat, hub.lng) <= this.options.radiusM) v.entryStamp = fix.stamp
      // Often enough to complete the geofence dwell; every 5 minutes once it has and the vehicle waits.
      const interval = at < v.minDepartAt ? Math.max(this.options.parkedFixIntervalS * SECOND, 5 * this.options.speed) : Math.max(5 * MINUTE, 5 * this.options.speed)
      this.agenda.at(at + interval, () => tick(at + interval))
    }
    tick(t)
  }

  private arrive (v: Vehicle, t: number): void {
    const hub = v.hub
    this.startParked(v, t)
    // Parked long enough for the service's dwell (GEOFENCE_DWELL_S, in real seconds: the service
    // sees the run at `speed` times) to pass, with a margin, and for the unloading.
    const dwellVirtual = this.options.dwellS * SECOND * this.options.speed
    v.minDepartAt = t + Math.max(dwellVirtual * 1.5 + 2 * this.options.parkedFixIntervalS * SECOND, 20 * MINUTE)
    const entry = v.entryStamp ?? Math.round(this.clock.realAt(t))
    const transfer: Parcel[] = []
    for (const p of [...v.onboard]) {
      p.hop = p.returning ? p.hop : p.hop + 1
      p.lastStamp = Math.max(p.lastStamp, entry)
      if (!p.returning && hub === p.plan.receiver) {
        // The service unloads it on arrival, with Out for Delivery (docs/fleet.md).
        v.onboard.delete(p)
        p.vehicle = undefined
        p.expected = 'Out for Delivery'
        p.phase = 'last mile'
        p.hub = hub
        this.lastMile(p, t)
      } else {
        p.expected = 'In Transit'
        transfer.push(p)
      }
    }
    this.log(t, `${v.id} arrives at ${hubName(hub)}${v.onboard.size + transfer.length === 0 ? '' : `; ${transfer.length} to unload`}`)
    if (transfer.length > 0) {
      const at = t + 2 * MINUTE
      this.agenda.at(at, () => this.unload(v, transfer, hub, at))
    }
    v.checkedInAt = t + this.checkInDelay()
    this.scheduleDecision(v, t + between(v.rng, 10, 20) * MINUTE)
  }

  /**
   * Loading starts once the service has decided the arrival (GEOFENCE_DWELL_S after the entry, in
   * its time, plus a fix and its processing): a parcel loaded during the dwell would get the
   * arrival's In Transit event too, which a vehicle being checked in does not give it.
   */
  private checkInDelay (): number {
    const { dwellS, speed, parkedFixIntervalS } = this.options
    return dwellS * SECOND * speed + 2 * parkedFixIntervalS * SECOND + Math.max(5 * MINUTE, 500 * speed)
  }

  private unload (v: Vehicle, parcels: Parcel[], hub: number, t: number): void {
    for (const p of parcels) {
      v.onboard.delete(p)
      p.vehicle = undefined
    }
    this.sendLoad(v, 'unload', parcels, t, hub)
    for (const p of parcels) {
      if (p.returning) {
        p.phase = 'last mile'
        const at = t + between(p.rng, ...SCAN_GAPS.returnedScan)
        this.agenda.at(at, () => this.complete(p, p.plan.fate.exceptionAtEnd ? 'Exception' : 'Returned to Sender', hub, at, 'end'))
      } else if (p.plan.fate.exceptionAtHop === p.hop - 1) {
        p.phase = 'last mile'
        const at = t + between(p.rng, ...SCAN_GAPS.exception)
        this.agenda.at(at, () => this.complete(p, 'Exception', hub, at, `x${p.hop}`))
      } else {
        this.wait(p, hub, t)
      }
    }
  }

  /** At the receiver hub: an Exception, or one failed delivery attempt, then Delivered or back to the sender. */
  private lastMile (p: Parcel, t: number): void {
    const hub = p.plan.receiver
    const { fate } = p.plan
    if (fate.exceptionAtHop === p.hop - 1) {
      const at = t + between(p.rng, ...SCAN_GAPS.exception)
      this.agenda.at(at, () => this.complete(p, 'Exception', hub, at, `x${p.hop}`))
      return
    }
    const attemptAt = t + between(p.rng, ...SCAN_GAPS.attempt)
    this.agenda.at(attemptAt, () => {
      if (fate.exceptionAtAttempt) { this.complete(p, 'Exception', hub, attemptAt, 'xa'); return }
      this.scan(p, 'Delivery Attempted', hub, attemptAt, 'att')
      const endAt = attemptAt + between(p.rng, ...SCAN_GAPS.delivered)
      this.agenda.at(endAt, () => {
        if (fate.returned) {
          p.returning = true
          this.wait(p, hub, endAt)
        } else {
          this.complete(p, fate.exceptionAtEnd ? 'Exception' : 'Delivered', hub, endAt, 'end')
        }
      })
    })
  }

  /** vehicle.load / vehicle.unload over the queue, or (a share) POST /vehicles/<id>/load|unload. */
  private sendLoad (v: Vehicle, kind: 'load' | 'unload', parcels: Parcel[], t: number, hub = v.hub): void {
    const drawn: Channel = v.rng() < this.options.httpShare ? 'http' : 'queue'
    const occurredAt = iso(Math.round(this.clock.realAt(t)))
    this.counters.loadedParcels += kind === 'load' ? parcels.length : 0
    this.counters.unloadedParcels += kind === 'unload' ? parcels.length : 0
    const before = Promise.all(parcels.map(async (p) => await p.chain))
    const done = (async () => {
      await before
      const snos = parcels.map((p) => p.sno as number)
      const message = { type: `vehicle.${kind}`, vehicle_id: v.id, snos, location_id: hub, occurred_at: occurredAt }
      let channel = drawn
      if (channel === 'queue') {
        // The first queue load is checked: a consumer that dead-letters loads must not leave
        // every parcel on the ground (and the run meaningless); they go over HTTP then.
        if (this.queueLoads === 'unknown' && this.loadCheck === undefined && kind === 'load') {
          this.loadCheck = this.checkQueueLoads(v.id, message)
          this.counters.loadsQueue++
          if (await this.loadCheck) return
        }
        if (this.loadCheck !== undefined) await this.loadCheck
        if (this.queueLoads !== 'applied') channel = 'http'
      }
      if (channel === 'queue') {
        if (kind === 'load') this.counters.loadsQueue++
        else this.counters.unloadsQueue++
        await this.queue.publish(message)
        return
      }
      if (kind === 'load') this.counters.loadsHttp++
      else this.counters.unloadsHttp++
      for (let attempt = 1; ; attempt++) {
        try {
          await this.api.call('POST', `/vehicles/${encodeURIComponent(v.id)}/${kind}`, { snos, location_id: hub, occurred_at: occurredAt })
          return
        } catch (err) {
          // A queue unload of the same parcel from its last vehicle may not have been consumed yet.
          if (err instanceof ApiError && err.code === 'PARCEL_ON_OTHER_VEHICLE' && attempt < 20) { await sleep(100 * attempt); continue }
          this.counters.loadRefused++
          throw err
        }
      }
    })()
    for (const p of parcels) p.chain = done.catch(() => {})
    this.track(done)
  }

  /**
   * Publishes the run's first queue load and watches what becomes of it: true once GET /fleet/<id>
   * shows a parcel of it on board; false (and every later load over HTTP) if the dead-letter
   * queue grows instead, after the load has been sent again over HTTP.
   */
  private async checkQueueLoads (vehicleId: string, message: { snos: number[], location_id: number, occurred_at: string }): Promise<boolean> {
    const before = (await this.queue.depth()).dead
    await this.queue.publish(message)
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      const [fleet, depth] = await Promise.all([
        this.api.call<{ manifest: Array<{ sno: number }> }>('GET', `/fleet/${encodeURIComponent(vehicleId)}`),
        this.queue.depth()
      ])
      if (fleet.manifest.some((m) => message.snos.includes(Number(m.sno)))) { this.queueLoads = 'applied'; return true }
      if (depth.dead > before) {
        this.queueLoads = 'dead-lettered'
        this.out.progress(`the queue consumer dead-lettered a vehicle.load message (see ${this.queue.queue}.dead, header x-reject-reason): loads and unloads go over POST /vehicles/<id>/load|unload for the rest of the run`)
        this.counters.loadsQueue--
        this.counters.loadsHttp++
        await this.api.call('POST', `/vehicles/${encodeURIComponent(vehicleId)}/load`, { snos: message.snos, location_id: message.location_id, occurred_at: message.occurred_at })
        return true
      }
      await sleep(50)
    }
    this.out.progress('a vehicle.load sent over the queue was neither applied nor dead-lettered within 15 s: is the queue consumer (node dist/ingest.js) running? Loads stay on the queue')
    this.queueLoads = 'applied'
    return true
  }

  // ---------------------------------------------------------------- progress and the end

  private phases (): Record<Phase, number> {
    const by: Record<Phase, number> = { unbooked: 0, booked: 0, waiting: 0, 'on board': 0, 'last mile': 0, done: 0 }
    for (const p of this.parcels) by[p.phase]++
    return by
  }

  statusLine (): string {
    const real = Date.now() - this.clock.realStart
    const by = this.phases()
    const done: Record<string, number> = {}
    for (const p of this.parcels) if (p.phase === 'done') count(done, p.failed ? 'not created' : p.expected)
    const moving = this.vehicles.filter((v) => v.state === 'driving').length
    const c = this.counters
    return `[${formatSpan(real)} real] virtual ${formatVirtual(this.clock.virtualAt(Date.now()))} | parcels: ${by.unbooked} to book, ${by.booked} booked, ${by.waiting} waiting, ${by['on board']} on board, ${by['last mile']} last mile, ` +
      `${by.done} done (${Object.entries(done).map(([k, n]) => `${k} ${n}`).join(', ') || '-'}) | events ${c.queueEvents + c.httpEvents} | fixes ${this.positions.acknowledged}/${this.positions.published} acknowledged | ` +
      `vehicles moving ${moving}/${this.vehicles.length} | lag max ${formatSpan(this.maxLagMs)}`
  }

  private async finish (virtualMs: number, realMs: number): Promise<Summary> {
    clearTimeout(this.httpTimer)
    this.flushHttp()
    // Everything sent is confirmed (broker, PUBACK, HTTP answer) before the service is read.
    const drainUntil = Date.now() + 60_000
    while (this.pending.size > 0 && Date.now() < drainUntil) {
      this.flushHttp()
      await Promise.race([Promise.allSettled([...this.pending]), sleep(1000)])
    }
    const settleUntil = Date.now() + this.options.settleMs
    while (Date.now() < settleUntil) {
      const depth = await this.queue.depth().catch(() => ({ ready: 0, dead: 0 }))
      if (depth.ready === 0) break
      await sleep(200)
    }
    const withSno = this.parcels.filter((p) => p.sno !== undefined)
    const shown = new Map<number, QueryAnswer>()
    const readAll = async (list: Parcel[]): Promise<void> => {
      const chunks: Parcel[][] = []
      for (let i = 0; i < list.length; i += 100) chunks.push(list.slice(i, i + 100))
      await this.inBatches(chunks, 4, async (chunk) => {
        const { data } = await this.api.call<{ data: QueryAnswer[] }>('POST', '/query', { snos: chunk.map((p) => p.sno) })
        for (const body of data) shown.set(Number(body.sno), body)
      })
    }
    await readAll(withSno)
    // The fleet subscriber and the queue consumer may still be committing the last fixes and messages.
    const disagreeing = (): Parcel[] => withSno.filter((p) => shown.get(p.sno as number)?.tracking_status !== p.expected || this.scansStored(p, shown).missing > 0)
    while (disagreeing().length > 0 && Date.now() < settleUntil) {
      await sleep(500)
      await readAll(disagreeing())
    }
    const byStatus: Record<string, number> = {}
    const expectedByStatus: Record<string, number> = {}
    const geofenceEvents: Record<string, number> = {}
    const disagreements: Summary['disagreements'] = []
    let agree = 0
    let missing = 0
    let storedTwice = 0
    let queueAccepted = 0
    let queueDuplicate = 0
    for (const p of withSno) {
      const body = shown.get(p.sno as number)
      count(expectedByStatus, p.expected)
      if (body === undefined) continue
      count(byStatus, body.tracking_status)
      if (body.tracking_status === p.expected) agree++
      else if (disagreements.length < 20) disagreements.push({ sno: p.sno as number, expected: p.expected, shown: body.tracking_status })
      for (const d of body.details) if (d.status === 'In Transit' || d.status === 'Out for Delivery') count(geofenceEvents, d.status)
      const stored = this.scansStored(p, shown)
      missing += stored.missing
      storedTwice += stored.twice
      queueAccepted += stored.queueStored
      queueDuplicate += stored.queueResentStored
    }
    const depth = await this.queue.depth().catch(() => ({ ready: 0, dead: this.deadAtStart }))
    const fleet = await this.api.call<{ vehicles: Array<{ id: string, parcels_on_board: number }> }>('GET', '/fleet').catch(() => ({ vehicles: [] }))
    const onBoard = new Map(fleet.vehicles.map((v) => [v.id, v.parcels_on_board]))
    const vehicles = this.vehicles.map((v) => ({ id: v.id, onboard: v.onboard.size, shown: onBoard.get(v.id) }))
    const c = this.counters
    const sent = c.queueEvents + c.httpEvents
    const summary: Summary = {
      run: this.options.runId,
      seed: this.options.seed,
      speed: this.options.speed,
      ended: this.stopReason ?? 'done',
      realMs,
      virtualMs,
      parcels: this.parcels.length,
      snos: withSno.map((p) => p.sno as number),
      byStatus,
      expectedByStatus,
      agree,
      disagreements,
      notShown: withSno.length - shown.size,
      events: {
        sent,
        queue: c.queueEvents,
        http: c.httpEvents,
        resent: c.resent,
        accepted: c.httpAccepted + queueAccepted,
        duplicate: c.httpDuplicate + queueDuplicate,
        rejected: c.rejected,
        rejectedCodes: c.rejectedCodes,
        missing,
        storedTwice
      },
      geofenceEvents,
      positions: { published: this.positions.published, acknowledged: this.positions.acknowledged },
      loads: { queue: c.loadsQueue, http: c.loadsHttp, parcels: c.loadedParcels, refused: c.loadRefused, queueConsumer: this.queueLoads },
      unloads: { queue: c.unloadsQueue, http: c.unloadsHttp, parcels: c.unloadedParcels },
      orders: { created: c.ordersCreated, failed: c.ordersFailed },
      maxLagMs: Math.round(this.maxLagMs),
      maxLagVirtualMs: Math.round(this.maxLagMs * this.options.speed),
      behindWarnings: this.behindWarnings,
      deadLettered: depth.dead - this.deadAtStart,
      vehicles,
      fleetAgrees: vehicles.filter((v) => v.shown === v.onboard).length
    }
    if (this.options.bench) {
      const delays = [...this.probeDelays].sort((a, b) => a - b)
      const pct = (q: number): number => delays.length === 0 ? NaN : delays[Math.min(delays.length - 1, Math.ceil(q * delays.length) - 1)]
      const seconds = realMs / 1000
      summary.bench = {
        eventsPerS: sent / seconds,
        positionsPerS: this.positions.acknowledged / seconds,
        ordersPerS: c.ordersCreated / seconds,
        probes: delays.length,
        p50Ms: pct(0.5),
        p99Ms: pct(0.99),
        maxMs: delays[delays.length - 1] ?? NaN
      }
    }
    return summary
  }

  get problems (): readonly string[] {
    return this.errors
  }

  /** Which of a parcel's scans /query shows: missing, shown twice, and (queue) shown once. */
  private scansStored (p: Parcel, shown: Map<number, QueryAnswer>): { missing: number, twice: number, queueStored: number, queueResentStored: number } {
    const body = shown.get(p.sno as number)
    const out = { missing: 0, twice: 0, queueStored: 0, queueResentStored: 0 }
    for (const scan of p.scans) {
      const copies = body === undefined ? 0 : body.details.filter((d) => d.status === scan.status && d.location_id === scan.location && Date.parse(d.time) === scan.at).length
      if (copies === 0) out.missing++
      if (copies > 1) out.twice++
      if (copies >= 1 && scan.channel === 'queue') { out.queueStored++; out.queueResentStored += scan.resent }
    }
    return out
  }
}

interface QueryAnswer { sno: string, tracking_status: TrackingStatus, details: Array<{ status: string, location_id: number, time: string }> }

/** Virtual time as "day 1 06:12" from the start (the virtual clock counts from 00:00 of day 1). */
export function formatVirtual (t: number): string {
  const minutes = Math.floor(t / MINUTE)
  const day = Math.floor(minutes / 1440) + 1
  const hh = String(Math.floor((minutes % 1440) / 60)).padStart(2, '0')
  const mm = String(minutes % 60).padStart(2, '0')
  return `day ${day} ${hh}:${mm}`
}
