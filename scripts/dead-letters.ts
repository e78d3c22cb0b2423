import { connect } from 'amqplib'
import { deadLetterQueue } from '../src/ingest/queue-link.js'
import { cliConfig, run } from './lib/cli.js'

/**
 * npm run queue:dead            lists the dead-lettered messages with their reasons (they stay)
 * npm run queue:dead -- --limit 20
 *
 * Reads `<AMQP_QUEUE>.dead` without removing anything: every message is looked at and put back.
 * Bodies are shown cut to 200 characters (they may hold personal data: mind where you paste them).
 */
run(async () => {
  const limitArg = process.argv.indexOf('--limit')
  const limit = limitArg > 0 ? Number(process.argv[limitArg + 1]) : 50
  const { amqp } = cliConfig()
  const queue = deadLetterQueue(amqp.queue)
  const connection = await connect(amqp.url)
  try {
    const channel = await connection.createChannel()
    const { messageCount } = await channel.checkQueue(queue)
    console.log(`${queue}: ${messageCount} message${messageCount === 1 ? '' : 's'}`)
    const seen = []
    for (let i = 0; i < Math.min(limit, messageCount); i++) {
      const message = await channel.get(queue, { noAck: false })
      if (message === false) break
      seen.push(message)
      const reason = String(message.properties.headers?.['x-reject-reason'] ?? message.properties.headers?.['x-death']?.[0]?.reason ?? 'unknown')
      console.log(`- ${reason}\n  ${message.content.toString('utf8').slice(0, 200)}`)
    }
    // Back in the queue, in their order, for whoever deals with them.
    for (const message of seen) channel.nack(message, false, true)
    await channel.close()
  } finally {
    await connection.close()
  }
})
