import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, loadEnvFile } from './config.js'
import { buildApp } from './app.js'

/** One API process: `node dist/server.js`. PM2 runs several of these in cluster mode. */
async function main (): Promise<void> {
  loadEnvFile()
  const config = loadConfig()
  const app = await buildApp(config)

  closeWithGrace({ delay: config.server.shutdownTimeoutMs }, async ({ err, signal }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down: draining requests')
    await app.close()
  })

  await app.listen({ host: config.server.host, port: config.server.port })
  await app.reportDependencies()
  // Tells PM2 (wait_ready) that this worker takes traffic now, once its overload measure holds a
  // real sample (until then a reload would hand traffic to a process that cannot judge its load).
  await app.overload.sampled
  process.send?.('ready')
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message)
  } else {
    console.error('API failed to start:', err)
  }
  process.exit(1)
})
