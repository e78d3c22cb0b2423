import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { sql } from 'kysely'
import type { Access } from '../http/auth.js'
import { badRequest, notFound } from '../http/errors.js'
import { acceptJsonBodies } from '../http/json-body.js'
import type { Db } from '../infra/db.js'

export const WEBHOOK_EVENTS = ['tracking.updated'] as const

interface WebhookRow {
  id: number
  url: string
  events: string
  status: string
  disabled_reason: string | null
  start_change_id: number
  failing_since: Date | null
  created_at: Date
}

const view = (w: WebhookRow): Record<string, unknown> => ({
  id: Number(w.id),
  url: w.url,
  events: w.events.split(','),
  status: w.status,
  disabled_reason: w.disabled_reason,
  failing_since: w.failing_since?.toISOString() ?? null,
  created_at: w.created_at.toISOString()
})

function parseUrl (raw: unknown): string {
  if (typeof raw !== 'string' || raw.length > 2048) throw badRequest('URL_INVALID', 'url must be an http or https URL of at most 2048 characters')
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw badRequest('URL_INVALID', 'url must be an absolute http or https URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badRequest('URL_INVALID', 'url must use http or https')
  if (url.username !== '' || url.password !== '') throw badRequest('URL_INVALID', 'url must not carry credentials; deliveries are signed instead')
  return url.toString()
}

function parseEvents (raw: unknown): string[] {
  if (raw === undefined) return [...WEBHOOK_EVENTS]
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((e) => (WEBHOOK_EVENTS as readonly string[]).includes(e as string))) {
    throw badRequest('EVENTS_INVALID', `events must be a non-empty list of: ${WEBHOOK_EVENTS.join(', ')}`)
  }
  return [...new Set(raw as string[])]
}

const webhookId = (params: unknown): number => {
  const raw = (params as { id?: string }).id ?? ''
  if (!/^\d{1,15}$/.test(raw)) throw notFound('WEBHOOK_NOT_FOUND', 'No such webhook')
  return Number(raw)
}

/**
 * Webhook endpoints (admin only): register (the answer carries the signing secret, shown once),
 * list, look at one with its recent deliveries and their attempts, replay from a change id,
 * delete. Deliveries are made by the worker (src/webhooks/dispatcher.ts).
 */
export const webhookRoutes: FastifyPluginAsync<{ db: Db, access: Access }> = async (app, { db, access }) => {
  acceptJsonBodies(app)
  app.addHook('onRequest', access.guard('admin'))

  const find = async (id: number): Promise<WebhookRow> => {
    const row = (await sql<WebhookRow>`SELECT id, url, events, status, disabled_reason, start_change_id, failing_since, created_at FROM webhooks WHERE id = ${id}`.execute(db)).rows[0]
    if (row === undefined) throw notFound('WEBHOOK_NOT_FOUND', `No webhook with id ${id}`)
    return row
  }

  app.post('/webhooks', { bodyLimit: 8 * 1024 }, async (request, reply) => {
    const body = request.body as { url?: unknown, events?: unknown } | null
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('BODY_INVALID', 'Send {"url": "https://…", "events": ["tracking.updated"]}')
    const url = parseUrl(body.url)
    const events = parseEvents(body.events)
    const secret = `whsec_${randomBytes(32).toString('base64')}`
    // Changes committed from now on are delivered (replay reaches further back).
    const inserted = await sql`INSERT INTO webhooks (url, events, secret, start_change_id)
      SELECT ${url}, ${events.join(',')}, ${secret}, COALESCE(MAX(id), 0) FROM change_log`.execute(db)
    const row = await find(Number(inserted.insertId))
    return await reply.code(201).header('location', `/webhooks/${row.id}`).send({ ...view(row), secret })
  })

  app.get('/webhooks', async () => {
    const { rows } = await sql<WebhookRow>`SELECT id, url, events, status, disabled_reason, start_change_id, failing_since, created_at FROM webhooks ORDER BY id`.execute(db)
    return { webhooks: rows.map(view) }
  })

  app.get('/webhooks/:id', async (request) => {
    const row = await find(webhookId(request.params))
    const query = request.query as { status?: string, limit?: string }
    const limit = Math.min(Math.max(Number(query.limit ?? 50) || 50, 1), 500)
    const status = ['pending', 'delivered', 'failed'].includes(query.status ?? '') ? query.status as string : undefined
    const deliveries = (await sql<{ id: number, change_id: number, sno: number, seq: number, status: string, attempts: number, next_attempt_at: Date, last_status_code: number | null, last_error: string | null, delivered_at: Date | null }>`
      SELECT id, change_id, sno, seq, status, attempts, next_attempt_at, last_status_code, last_error, delivered_at FROM webhook_deliveries
      WHERE webhook_id = ${row.id} ${status === undefined ? sql`` : sql`AND status = ${status}`} ORDER BY id DESC LIMIT ${limit}`.execute(db)).rows
    const attempts = deliveries.length === 0
      ? []
      : (await sql<{ delivery_id: number, attempted_at: Date, status_code: number | null, error: string | null, duration_ms: number }>`
        SELECT delivery_id, attempted_at, status_code, error, duration_ms FROM webhook_attempts
        WHERE delivery_id IN (${sql.join(deliveries.map((d) => d.id))}) ORDER BY id DESC`.execute(db)).rows
    return {
      ...view(row),
      deliveries: deliveries.map((d) => ({
        id: Number(d.id),
        webhook_id: `msg_${row.id}_${d.change_id}`,
        change_id: Number(d.change_id),
        sno: Number(d.sno),
        seq: d.seq,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: d.status === 'pending' ? d.next_attempt_at.toISOString() : null,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        delivered_at: d.delivered_at?.toISOString() ?? null,
        // The last five attempts, newest first.
        last_attempts: attempts.filter((a) => Number(a.delivery_id) === Number(d.id)).slice(0, 5).map((a) => ({
          at: a.attempted_at.toISOString(), status_code: a.status_code, error: a.error, ms: a.duration_ms
        }))
      }))
    }
  })

  // Sends again every change after `since` (deliveries made before are reset, missing ones are
  // made), and turns a disabled endpoint back on: a replay says the endpoint works again.
  app.post('/webhooks/:id/replay', async (request, reply) => {
    const row = await find(webhookId(request.params))
    const raw = (request.query as { since?: string }).since
    if (raw === undefined || !/^\d{1,16}$/.test(raw)) throw badRequest('SINCE_INVALID', 'since must be a change id (0 for everything the change log holds)')
    const since = Number(raw)
    const made = await sql`INSERT IGNORE INTO webhook_deliveries (webhook_id, change_id, sno, seq)
      SELECT ${row.id}, id, sno, seq FROM change_log WHERE id > ${since}`.execute(db)
    const reset = await sql`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = NOW(3), last_error = NULL
      WHERE webhook_id = ${row.id} AND change_id > ${since}`.execute(db)
    await sql`UPDATE webhooks SET status = 'active', disabled_reason = NULL, failing_since = NULL WHERE id = ${row.id}`.execute(db)
    return await reply.code(202).send({ id: row.id, since, deliveries: Number(reset.numAffectedRows ?? 0n), new: Number(made.numAffectedRows ?? 0n) })
  })

  app.delete('/webhooks/:id', async (request, reply) => {
    const id = webhookId(request.params)
    const deleted = await sql`DELETE FROM webhooks WHERE id = ${id}`.execute(db)
    if (Number(deleted.numAffectedRows ?? 0n) === 0) throw notFound('WEBHOOK_NOT_FOUND', `No webhook with id ${id}`)
    return await reply.code(204).send()
  })
}
