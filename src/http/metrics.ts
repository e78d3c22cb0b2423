import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import { Counter, Gauge, Registry } from 'prom-client'
import { collectProcessMetrics } from './process-metrics.js'
import { RequestDurations } from './request-durations.js'
import type { Access } from './auth.js'
import type { Db } from '../infra/db.js'
import type { RedisGuard } from '../infra/redis.js'
import type { TrackingService } from '../tracking/service.js'
import type { QueryHitShortcut } from '../tracking/hit-shortcut.js'
import { INGEST_METRICS_SET } from '../ingest/counters.js'

export interface MetricsSources {
  db: Db
  guard: RedisGuard
  tracking: TrackingService
  shortcut: QueryHitShortcut
  access: Access
  /** Whether to count garbage collections (METRICS_GC). */
  gc: boolean
}

/** Redis hashes where the other processes (queue consumer, worker) leave their counters. */
export const PROCESS_METRICS_PREFIX = 'metrics:'

/** Scrapes within this long of each other share one round of MySQL and Redis reads. */
const SOURCE_CACHE_MS = 5000

interface ClusterFigures {
  backlog: Map<string, number>
  deliveries: Map<string, number>
  fleet: Map<string, number>
  processes: Map<string, number>
  lastReport: number | undefined
}

/**
 * GET /metrics in Prometheus text format (prom-client). This process's requests by route and
 * status with latency histograms, and where its /query answers came from; the platform's figures
 * from where they live: the change-log backlog of each relay, webhook deliveries by status and the
 * fleet's intake from MySQL, the queue consumer's intake and dead letters and the time of the
 * last report from Redis (those processes leave them there). Per request, one series looked up
 * by key and counted (RequestDurations); everything else is read at scrape time.
 */
export function registerMetrics (app: FastifyInstance, sources: MetricsSources): RequestDurations {
  const registry = new Registry()
  registry.setDefaultLabels({ instance: process.env.NODE_APP_INSTANCE ?? String(process.pid) })
  if (collectProcessMetrics(registry, 'logistics_', sources.gc) && !sources.gc) {
    app.log.warn('prom-client\'s collectors were not found by name: all its default metrics are on, the GC histogram too (METRICS_GC)')
  }

  const requests = new RequestDurations('logistics_http_request_duration_seconds', 'HTTP requests by route, method and status, with their latency',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
  registry.registerMetric(requests as never)
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    requests.observe(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  // Registered by construction; its values are read from the tracking service at scrape time.
  new Counter({ // eslint-disable-line no-new
    name: 'logistics_query_answers_total',
    help: '/query answers by where they came from: near (this process), redis, database (misses)',
    labelNames: ['source'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const [source, n] of Object.entries(sources.tracking.stats)) this.inc({ source }, n)
    }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'logistics_query_near_renewals_total',
    help: 'Copies in this process read again from Redis before they expired: asked, and renewed (Redis still held the answer)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect () {
      this.reset()
      this.inc({ outcome: 'asked' }, sources.tracking.renewals.asked)
      this.inc({ outcome: 'renewed' }, sources.tracking.renewals.renewed)
    }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'logistics_query_shortcut_answers_total',
    help: '/query answers from this process sent before Fastify (src/tracking/hit-shortcut.ts): a part of source="near" above',
    registers: [registry],
    collect () {
      this.reset()
      this.inc(sources.shortcut.answered)
    }
  })

  let figures: { at: number, value: Promise<ClusterFigures> } | undefined
  const cluster = async (): Promise<ClusterFigures> => {
    if (figures === undefined || Date.now() - figures.at > SOURCE_CACHE_MS) figures = { at: Date.now(), value: readCluster(sources) }
    return await figures.value
  }
  const gauge = (name: string, help: string, labelNames: string[], read: (f: ClusterFigures) => Map<string, number> | number | undefined): void => {
    const metric: Gauge<string> = new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect () {
        metric.reset()
        const value = read(await cluster())
        if (typeof value === 'number') metric.set(value)
        else if (value instanceof Map) {
          for (const [label, n] of value) metric.set(labelNames.length === 0 ? {} : { [labelNames[0]]: label }, n)
        }
      }
    })
  }
  gauge('logistics_change_log_backlog', 'Committed changes a relay has not delivered yet (cache invalidation, webhooks)', ['relay'], (f) => f.backlog)
  gauge('logistics_webhook_deliveries', 'Webhook deliveries by status', ['status'], (f) => f.deliveries)
  gauge('logistics_fleet_intake_total', 'GPS fixes taken in, late and refused, by reason and source (since the database was made)', ['counter'], (f) => f.fleet)
  gauge('logistics_queue_intake_total', 'Queue consumer: messages received, stored, duplicates, omitted, dead-lettered by reason (summed over consumer processes since their start)', ['counter'], (f) => f.processes)
  gauge('logistics_last_report_timestamp_seconds', 'When the last report was stored (Unix time)', [], (f) => f.lastReport)

  app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true }, onRequest: sources.access.guard('admin') }, async (_request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
  // For answers sent without Fastify's hooks (src/tracking/hit-shortcut.ts).
  return requests
}

async function readCluster ({ db, guard }: MetricsSources): Promise<ClusterFigures> {
  const figures: ClusterFigures = { backlog: new Map(), deliveries: new Map(), fleet: new Map(), processes: new Map(), lastReport: undefined }
  const rows = async <T>(query: Promise<{ rows: T[] }>): Promise<T[]> => await query.then((r) => r.rows, () => [])
  const [backlog, deliveries, fleet] = await Promise.all([
    rows(sql<{ name: string, n: number }>`SELECT r.name, GREATEST(COALESCE((SELECT MAX(id) FROM change_log), 0) - r.last_id, 0) AS n FROM change_relay r`.execute(db)),
    rows(sql<{ status: string, n: number }>`SELECT status, COUNT(*) AS n FROM webhook_deliveries GROUP BY status`.execute(db)),
    rows(sql<{ name: string, count: number }>`SELECT name, count FROM fleet_counters`.execute(db))
  ])
  for (const r of backlog) figures.backlog.set(r.name, Number(r.n))
  for (const r of deliveries) figures.deliveries.set(r.status, Number(r.n))
  for (const r of fleet) figures.fleet.set(r.name, Number(r.count))
  await guard.attempt(async (redis) => {
    // Each consumer process keeps its counters in a hash of its own (expiring when it stops
    // reporting) and lists that hash in a set.
    const members = await redis.smembers(INGEST_METRICS_SET)
    for (const key of members) {
      const counts = await redis.hgetall(key)
      if (Object.keys(counts).length === 0) await redis.srem(INGEST_METRICS_SET, key)
      for (const [name, value] of Object.entries(counts)) figures.processes.set(name, (figures.processes.get(name) ?? 0) + Number(value))
    }
    const last = await redis.get(`${PROCESS_METRICS_PREFIX}report:last`)
    if (last !== null) figures.lastReport = Number(last)
  })
  return figures
}
