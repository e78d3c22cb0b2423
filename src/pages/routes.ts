import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { notFound, unavailable } from '../http/errors.js'
import { compareSlots } from '../reports/routes.js'
import { REPORT_KEY } from '../reports/slots.js'
import type { ReportStorage } from '../reports/storage.js'
import type { Db } from '../infra/db.js'
import { fleetStreamRoute } from './fleet-stream.js'
import { mapOutline, project } from './map.js'

/**
 * What a page may load: its own scripts, styles and data, from this origin only. The API's
 * `default-src 'none'` stays for everything else.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const require = createRequire(import.meta.url)
const ASSETS_DIR = new URL('../../src/pages/assets/', import.meta.url)

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8'
}

/** The only files served under /pages/assets/: the pages' own, and the chart library from node_modules. */
const ASSETS: Record<string, () => string> = {
  'pages.css': () => new URL('pages.css', ASSETS_DIR).pathname,
  'common.js': () => new URL('common.js', ASSETS_DIR).pathname,
  'map.js': () => new URL('map.js', ASSETS_DIR).pathname,
  'track.js': () => new URL('track.js', ASSETS_DIR).pathname,
  'fleet-map.js': () => new URL('fleet-map.js', ASSETS_DIR).pathname,
  'dashboard.js': () => new URL('dashboard.js', ASSETS_DIR).pathname,
  // chart.js exports no subpaths: its bundle sits next to the CommonJS entry.
  'chart.umd.min.js': () => path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js')
}

const PAGES: Record<string, string> = {
  '/track': 'track.html',
  '/fleet/map': 'fleet-map.html',
  '/dashboard': 'dashboard.html'
}

interface Asset { body: Buffer, gzip: Buffer, etag: string, type: string }

function prepare (body: Buffer, type: string): Asset {
  return { body, gzip: gzipSync(body, { level: 9 }), etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`, type }
}

/** Files are read and gzipped once per process, on first use. */
const assets = new Map<string, Asset>()
function asset (name: string, file: string): Asset {
  let found = assets.get(name)
  if (found === undefined) {
    found = prepare(readFileSync(file), TYPES[name.slice(name.lastIndexOf('.') + 1)])
    assets.set(name, found)
  }
  return found
}

function send (request: FastifyRequest, reply: FastifyReply, file: Asset): FastifyReply {
  reply.header('content-security-policy', PAGE_CSP)
    .header('content-type', file.type)
    .header('cache-control', 'no-cache')
    .header('etag', file.etag)
    .header('vary', 'accept-encoding')
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send()
  if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
    return reply.header('content-encoding', 'gzip').send(file.gzip)
  }
  return reply.send(file.body)
}

/** The summary a public page may show: counts and rates; no order numbers. */
export function publicSummary (summary: Record<string, unknown>): Record<string, unknown> {
  const { stale, ...rest } = summary
  const count = stale as { count?: unknown, thresholdHours?: unknown } | undefined
  return { ...rest, stale: count === undefined ? undefined : { thresholdHours: count.thresholdHours, count: count.count } }
}

async function readAll (body: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

const LATEST_TTL_MS = 30_000

/**
 * The web pages (/track, /fleet/map, /dashboard), their scripts and what they need that the API
 * did not have: the map with the hubs, the latest report's summary for everyone (GET
 * /reports/<key> is for admins), and GET /fleet/stream.
 */
export async function pagesRoutes (app: FastifyInstance, { s3, db, live }: { s3: Config['s3'], db: Db, live: Config['live'] }): Promise<void> {
  fleetStreamRoute(app, { db, live })
  let storage: Promise<ReportStorage> | undefined
  const open = async (): Promise<ReportStorage> => await (storage ??= import('../reports/storage.js').then(({ ReportStorage }) => new ReportStorage(s3)))
  app.addHook('onClose', async () => { if (storage !== undefined) (await storage).close() })

  for (const [url, file] of Object.entries(PAGES)) {
    app.get(url, { schema: { hide: true } }, async (request, reply) => send(request, reply, asset(file, new URL(file, ASSETS_DIR).pathname)))
  }

  app.get('/pages/assets/:name', { schema: { hide: true } }, async (request, reply) => {
    const name = (request.params as { name: string }).name
    const locate = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined
    if (locate === undefined) throw notFound('ASSET_NOT_FOUND', `No page asset named ${name}`)
    return send(request, reply, asset(name, locate()))
  })

  // The map with the hubs placed on it (~25 KB, ~10 KB gzipped), made again when the hubs are re-read.
  let mapFile: { hubs: unknown, file: Asset } | undefined
  app.get('/pages/map.json', { schema: { hide: true } }, async (request, reply) => {
    const list = await app.hubs.all()
    if (mapFile?.hubs !== list) {
      const outline = mapOutline()
      const hubs = list.map((h) => {
        const [x, y] = project(outline, Number(h.lat), Number(h.lng))
        return { id: h.id, title: h.title, city: h.city, timezone: h.timezone, lat: Number(h.lat), lng: Number(h.lng), x, y }
      })
      mapFile = { hubs: list, file: prepare(Buffer.from(JSON.stringify({ ...outline, hubs })), 'application/json; charset=utf-8') }
    }
    return send(request, reply, mapFile.file)
  })

  let latest: { at: number, value: Promise<Record<string, unknown> | null> } | undefined
  const readLatest = async (): Promise<Record<string, unknown> | null> => {
    const reports = await open()
    const summaries = (await reports.list()).map((o) => ({ key: o.Key ?? '', match: REPORT_KEY.exec(o.Key ?? '') }))
      .filter((o) => o.match !== null && o.match[4] === 'summary.json')
      .map((o) => ({ key: o.key, slot: `${o.match![1]}T${o.match![2]}${o.match![3] ?? ''}` }))
      .sort((a, b) => compareSlots(b.slot, a.slot))
    if (summaries.length === 0) return null
    const object = await reports.open(summaries[0].key)
    if (object === null) return null
    const summary = JSON.parse(await readAll(object.body)) as Record<string, unknown>
    return { slot: summaries[0].slot, summary: publicSummary(summary) }
  }

  app.get('/pages/latest-report.json', { schema: { hide: true } }, async (_request, reply) => {
    if (latest === undefined || Date.now() - latest.at > LATEST_TTL_MS) {
      const value = readLatest()
      latest = { at: Date.now(), value }
      value.catch(() => { if (latest?.value === value) latest = undefined })
    }
    let found: Record<string, unknown> | null
    try {
      found = await latest.value
    } catch {
      throw unavailable('STORAGE_UNAVAILABLE', 'Report storage is not answering; try again shortly', 30)
    }
    if (found === null) {
      latest = undefined // asked again next time: the first report may come at any moment
      throw notFound('REPORT_NOT_FOUND', 'No report has been made yet')
    }
    reply.header('cache-control', 'no-cache')
    return found
  })
}
