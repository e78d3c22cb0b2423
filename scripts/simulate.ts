import { writeFileSync } from 'node:fs'
import { cliConfig, run } from './lib/cli.js'
import { Api, PositionPublisher, QueuePublisher } from '../src/simulator/links.js'
import { USAGE, parseOptions } from '../src/simulator/options.js'
import { formatSummary } from '../src/simulator/report.js'
import { Simulation } from '../src/simulator/simulation.js'
import { formatSpan } from '../src/simulator/clock.js'

/**
 * npm run simulate -- --speed 60 --vehicles 12 --parcels 300 [--seed 42] [--duration 10m] [-v]
 *
 * Parcels, vehicles and hub scans on a virtual clock, through the service's public interfaces
 * only: the HTTP API, the RabbitMQ queue and MQTT. docs/simulator.md says what it does.
 */
run(async () => {
  const config = cliConfig()
  let cli
  try {
    cli = parseOptions(process.argv.slice(2), config, process.env)
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`)
    process.exit(2)
  }
  if (cli.help) { console.log(USAGE); return }
  const { sim } = cli
  const api = new Api(cli.api, cli.token)
  await api.call('GET', '/health').catch((err: unknown) => {
    throw new Error(`The API does not answer at ${cli.api} (--api, API_URL or PORT): ${err instanceof Error ? err.message : String(err)}`)
  })
  const queue = await QueuePublisher.open(config.amqp.url, config.amqp.queue, config.amqp.deliveryLimit)
  const positions = await PositionPublisher.open(config.fleet.mqttUrl, `sim-${sim.runId}-${process.pid}`, config.fleet.topicPrefix)
  const simulation = new Simulation(sim, api, queue, positions)
  try {
    console.error(`run ${sim.runId}: ${sim.vehicles} vehicles, ${sim.parcels} parcels, ${sim.speed}× (1 real second = ${formatSpan(sim.speed * 1000)} virtual), seed ${sim.seed}` +
      `${sim.durationMs === undefined ? '' : `, for ${formatSpan(sim.durationMs)}`}; API ${cli.api}, queue ${config.amqp.queue}, MQTT ${config.fleet.topicPrefix}/<vehicle>/position; geofence ${sim.radiusM} m, dwell ${sim.dwellS} s`)
    await simulation.prepare()
    let interrupts = 0
    process.on('SIGINT', () => {
      if (++interrupts > 1) process.exit(130)
      console.error('stopping (Ctrl+C again to quit at once): waiting for what was sent, then the summary')
      simulation.stop('interrupted')
    })
    const summary = await simulation.run()
    console.log(formatSummary(summary))
    if (simulation.problems.length > 0) console.log(`Errors (${simulation.problems.length}, first ones): ${simulation.problems.slice(0, 3).join(' | ')}`)
    if (cli.json !== undefined) writeFileSync(cli.json, JSON.stringify(summary, null, 2))
  } finally {
    await Promise.all([queue.close(), positions.close()])
  }
})
