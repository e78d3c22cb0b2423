import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp } from '../../src/app.js'
import type { Config } from '../../src/config.js'
import type { DatabaseHandle } from '../../src/infra/db.js'
import { testConfig } from './config.js'
import { freshDatabase } from './database.js'
import { clearKeys } from './redis.js'
import type { Redis } from 'ioredis'

export interface TestContext {
  app: FastifyInstance
  config: Config
  database: DatabaseHandle
  /** A plain client on the same Redis, without the app's key prefix. */
  redis: Redis
}

/** Builds the app on the file's own database and key prefix; everything is closed at the end. */
export async function buildTestApp (t: Test, name: string, env: Record<string, string | undefined> = {}): Promise<TestContext> {
  const config = testConfig(name, env)
  const database = await freshDatabase(t, config)
  const redis = await clearKeys(t, config)
  const app = await buildApp(config)
  t.teardown(async () => await app.close())
  await app.ready()
  return { app, config, database, redis }
}

/** Polls until `check` holds (for work the app finishes after answering, such as cache fills). */
export async function eventually (check: () => Promise<boolean> | boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return false
}
