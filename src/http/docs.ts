import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/** The docs page loads its own script and styles from this server, and nothing else. */
const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"

/**
 * GET /openapi.json (OpenAPI 3.1) is made from the routes' own TypeBox schemas as they are
 * registered, so it cannot drift from what the API checks and answers; GET /docs shows it with
 * Swagger UI, served from the package (nothing is fetched from the internet). Register before
 * the routes.
 */
export async function registerDocs (app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Logistics tracking API',
        version,
        description: 'Parcel tracking: lookups, the write path for carriers and devices, the fleet, live streams and webhooks.'
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, or an INGEST_TOKENS token for orders, events, loading and positions' } }
      }
    }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { deepLinking: true, defaultModelsExpandDepth: 0 },
    uiHooks: {
      onRequest: (_request, reply, done) => { reply.header('content-security-policy', DOCS_CSP); done() }
    },
    staticCSP: false
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
