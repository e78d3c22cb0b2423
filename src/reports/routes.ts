import type { _Object } from '@aws-sdk/client-s3'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'
import { adminOnly, type Access } from '../http/auth.js'
import { ErrorResponse, HttpError, badRequest, notFound, unavailable } from '../http/errors.js'
import type { Config } from '../config.js'
import { REPORT_KEY } from './slots.js'
import type { ReportStorage } from './storage.js'

export const DOWNLOAD_URL_SECONDS = 300

const ReportEntry = Type.Object({
  slot: Type.String({ description: 'YYYY-MM-DDTHHMM in REPORT_TIMEZONE, followed by the UTC offset (-0400) when that local time happens twice' }),
  kind: Type.Union([Type.Literal('summary'), Type.Literal('export')]),
  key: Type.String(),
  size: Type.Integer(),
  last_modified: Type.String(),
  url: Type.String({ description: 'GET it (with the admin token) to download the object; add ?redirect=1 for a presigned S3 URL instead' })
})

function toEntry (object: _Object): Static<typeof ReportEntry> | null {
  const match = REPORT_KEY.exec(object.Key ?? '')
  if (match === null) return null
  return {
    slot: `${match[1]}T${match[2]}${match[3] ?? ''}`,
    kind: match[4] === 'summary.json' ? 'summary' : 'export',
    key: object.Key as string,
    size: object.Size ?? 0,
    last_modified: object.LastModified?.toISOString() ?? '',
    url: `/${object.Key as string}`
  }
}

/**
 * Orders slot names by time: by local date and time, then, for a local time that happened
 * twice, by instant (the larger UTC offset came first). A plain key sorts before both.
 */
export function compareSlots (a: string, b: string): number {
  const local = a.slice(0, 15).localeCompare(b.slice(0, 15))
  if (local !== 0) return local
  const offset = (slot: string): number => slot.length <= 15 ? Infinity : (slot[15] === '-' ? -1 : 1) * (Number(slot.slice(16, 18)) * 60 + Number(slot.slice(18, 20)))
  return offset(b) - offset(a) || 0
}

const storageDown = (): HttpError => unavailable('STORAGE_UNAVAILABLE', 'Report storage is not answering; try again shortly', 30)

/**
 * GET /reports and GET /reports/<date>/<file>: analysts' downloads, behind the admin token.
 * The AWS SDK (some 25 MB per process) is loaded on the first download request, not at start.
 */
export const reportRoutes: FastifyPluginAsyncTypebox<{ s3: Config['s3'], access: Access }> = async (app, { s3, access }) => {
  let storage: Promise<ReportStorage> | undefined
  const open = async (): Promise<ReportStorage> => await (storage ??= import('./storage.js').then(({ ReportStorage }) => new ReportStorage(s3)))
  app.addHook('onClose', async () => { if (storage !== undefined) (await storage).close() })
  app.addHook('preHandler', adminOnly(access))

  app.get('/reports', {
    schema: {
      querystring: Type.Object({ limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,2}|1000)$' })) }),
      response: { 200: Type.Object({ reports: Type.Array(ReportEntry) }), 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 503: ErrorResponse }
    },
    schemaErrorFormatter: () => badRequest('LIMIT_INVALID', 'limit must be an integer from 1 to 1000')
  }, async (request) => {
    const limit = Number(request.query.limit ?? 100)
    let objects: _Object[]
    try {
      objects = await (await open()).list()
    } catch {
      throw storageDown()
    }
    // Newest first, the summary before the export of the same slot.
    const reports = objects.map(toEntry).filter((e) => e !== null)
      .sort((a, b) => compareSlots(b.slot, a.slot) || b.kind.localeCompare(a.kind))
      .slice(0, limit)
    return { reports }
  })

  // The object itself, streamed through the API: every client that can send the admin token
  // gets the file (curl --location-trusted, wget --header, Python urllib resend Authorization on
  // a redirect, which S3 refuses next to a presigned URL's signature). ?redirect=1 asks for the
  // old answer instead: a 302 to a presigned S3 URL valid for 5 minutes, to fetch without the token.
  app.get('/reports/*', {
    schema: {
      querystring: Type.Object({ redirect: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('true'), Type.Literal('false')])) }),
      response: { 302: Type.Null(), 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse }
    },
    schemaErrorFormatter: () => badRequest('REDIRECT_INVALID', 'redirect must be 1 or 0')
  }, async (request, reply) => {
    const key = `reports/${(request.params as { '*': string })['*']}`
    if (!REPORT_KEY.test(key)) throw badRequest('REPORT_KEY_INVALID', 'Expected /reports/YYYY-MM-DD/HHMM-summary.json or /reports/YYYY-MM-DD/HHMM-orders.csv.gz')
    const reports = await open()
    const redirect = request.query.redirect === '1' || request.query.redirect === 'true'
    if (redirect) {
      const exists = await reports.exists(key).catch(() => { throw storageDown() })
      if (!exists) throw notFound('REPORT_NOT_FOUND', `No report at ${key}`)
      const url = await reports.downloadUrl(key, DOWNLOAD_URL_SECONDS).catch(() => { throw storageDown() })
      return reply.header('cache-control', 'no-store').redirect(url, 302)
    }
    const object = await reports.open(key).catch(() => { throw storageDown() })
    if (object === null) throw notFound('REPORT_NOT_FOUND', `No report at ${key}`)
    reply.header('cache-control', 'no-store')
      .header('content-type', key.endsWith('.json') ? 'application/json; charset=utf-8' : 'application/gzip')
      .header('content-disposition', `attachment; filename="${key.split('/').slice(1).join('-')}"`)
    if (object.size !== undefined) reply.header('content-length', object.size)
    if (object.lastModified !== undefined) reply.header('last-modified', object.lastModified.toUTCString())
    return await reply.send(object.body as never) // a stream: no response schema applies
  })
}
