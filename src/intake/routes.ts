import type { FastifyInstance } from 'fastify'
import type { Db } from '../infra/db.js'
import type { Access } from '../http/auth.js'
import { IdempotencyStore } from './idempotency.js'
import { acceptJsonBodies } from '../http/json-body.js'
import { orderRoutes } from './orders-routes.js'
import { eventRoutes } from './events-routes.js'

/**
 * The write API for carriers and devices: POST /orders and POST /events, behind the ingest
 * right (an INGEST_TOKENS token or ADMIN_TOKEN; loopback only when no token is configured).
 * The only routes that read bodies: the JSON parser is registered in this plugin's scope alone.
 */
export async function intakeRoutes (app: FastifyInstance, { db, access }: { db: Db, access: Access }): Promise<void> {
  acceptJsonBodies(app)
  const store = new IdempotencyStore(db, app.log)
  await app.register(orderRoutes, { db, access, store })
  await app.register(eventRoutes, { access, store })
}
