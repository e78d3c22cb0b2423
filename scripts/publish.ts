import { readFileSync } from 'node:fs'
import { connect } from 'amqplib'
import { deadLetterQueue, mainQueueArguments } from '../src/ingest/queue-link.js'
import { cliConfig, run } from './lib/cli.js'

/**
 * npm run queue:publish -- '<json message>' ['<json message>' …]   publishes to AMQP_QUEUE
 * npm run queue:publish -- --file messages.ndjson                  one message per line
 *
 * Each message is published persistent, and the command waits for the broker's confirm, as a
 * carrier's system would. It declares the queue as the consumer does, so the order of starting
 * does not matter.
 */
run(async () => {
  const args = process.argv.slice(2)
  const bodies = args[0] === '--file'
    ? readFileSync(args[1] ?? '/dev/stdin', 'utf8').split('\n').filter((line) => line.trim() !== '')
    : args
  if (bodies.length === 0) throw new Error('usage: npm run queue:publish -- \'{"type":"tracking.event",…}\' (or --file messages.ndjson)')
  const { amqp } = cliConfig()
  const connection = await connect(amqp.url)
  try {
    const channel = await connection.createConfirmChannel()
    await channel.assertQueue(deadLetterQueue(amqp.queue), { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    await channel.assertQueue(amqp.queue, { durable: true, arguments: mainQueueArguments(amqp.queue, amqp.deliveryLimit) })
    for (const body of bodies) {
      channel.sendToQueue(amqp.queue, Buffer.from(body), { persistent: true, contentType: 'application/json' })
    }
    await channel.waitForConfirms()
    console.log(`published ${bodies.length} message${bodies.length === 1 ? '' : 's'} to ${amqp.queue} (confirmed by the broker)`)
  } finally {
    await connection.close()
  }
})
