import { ConfigError, loadConfig, loadEnvFile, type Config } from '../../src/config.js'
import { createDatabase, isDatabaseUnavailable, unreachableMessage, type DatabaseHandle } from '../../src/infra/db.js'

/** Configuration for command-line tools: no statement timeout (they do long, deliberate work). */
export function cliConfig (): Config {
  loadEnvFile()
  try {
    const config = loadConfig()
    return { ...config, db: { ...config.db, queryTimeoutMs: 0, acquireTimeoutMs: 60_000, poolSize: 4 } }
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(2)
    }
    throw err
  }
}

export async function withDatabase<T> (config: Config, work: (handle: DatabaseHandle) => Promise<T>): Promise<T> {
  const handle = createDatabase(config.db)
  try {
    return await work(handle)
  } finally {
    await handle.close()
  }
}

/** Runs a script's main and turns a failure into a one-line message and exit code 1. */
export function run (main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (isDatabaseUnavailable(err)) {
      // Which server, and which variable to look at, rather than a bare "connect ECONNREFUSED".
      try {
        console.error(unreachableMessage(loadConfig().db, err))
        process.exit(1)
      } catch {}
    }
    console.error(err instanceof Error ? err.message : err)
    process.exit(1)
  })
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, every 10% otherwise). */
export function progressBar (total: number, label: string): (done: number) => void {
  const started = Date.now()
  let lastDecile = -1
  return (done: number) => {
    const ratio = total === 0 ? 1 : done / total
    const seconds = (Date.now() - started) / 1000
    const rate = Math.round(done / Math.max(seconds, 0.001))
    const line = `${label} [${'#'.repeat(Math.round(ratio * 30)).padEnd(30, '.')}] ${done}/${total} ${(ratio * 100).toFixed(0)}% ${rate}/s`
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line}${done >= total ? '\n' : ''}`)
    } else if (Math.floor(ratio * 10) > lastDecile) {
      lastDecile = Math.floor(ratio * 10)
      process.stderr.write(`${line}\n`)
    }
  }
}
