import type { Config } from '../../src/config.js'

/** Node's flags for the API processes as PM2 runs them (ecosystem.config.js); the benches give them to every server they start. */
export const { API_NODE_ARGS } = await import(new URL('../../ecosystem.config.js', import.meta.url).href) as { API_NODE_ARGS: string[] }

/** The median of some numbers (the mean of the middle two for an even count). */
export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Resolves once `url` answers 2xx; throws after `timeoutMs`. */
export async function waitFor (url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await fetch(url).catch(() => null))?.ok === true) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`)
}

/**
 * The environment of an API process a benchmark starts: production settings on the database
 * logistics_bench, its own Redis key prefix, and the rate limiter on, as in production, with
 * limits no single client reaches here.
 */
export function benchApiEnv (base: Config, keyPrefix: string, adminToken: string): Record<string, string> {
  const dbUrl = new URL(base.db.url)
  dbUrl.pathname = '/logistics_bench'
  return {
    NODE_ENV: 'production',
    ADMIN_TOKEN: adminToken,
    LOG_LEVEL: 'warn',
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: base.redis.url,
    REDIS_KEY_PREFIX: keyPrefix,
    RATE_LIMIT_PER_MINUTE: '10000000',
    RATE_LIMIT_NOT_FOUND_PER_MINUTE: '10000000',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    // Production refuses the embedded store's default secret; the benchmark never uses the store.
    S3_LOCAL_SECRET_ACCESS_KEY: 'bench-local-s3-secret-0123456789'
  }
}
