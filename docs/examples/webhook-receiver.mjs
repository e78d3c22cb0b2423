// A webhook receiver that checks every delivery as the Standard Webhooks spec says.
//   WEBHOOK_SECRET=whsec_… node docs/examples/webhook-receiver.mjs   (listens on :8088)
// It needs the `standardwebhooks` package (npm install standardwebhooks; it is installed here).
import { createServer } from 'node:http'
import { Webhook } from 'standardwebhooks'

const webhook = new Webhook(process.env.WEBHOOK_SECRET)
const seen = new Set() // webhook-id: a delivery may come more than once; act on it once

createServer((req, res) => {
  let body = ''
  req.on('data', (chunk) => { body += chunk })
  req.on('end', () => {
    let event
    try {
      event = webhook.verify(body, req.headers) // checks the signature and that the timestamp is recent
    } catch (err) {
      console.log('refused:', err.message)
      return res.writeHead(400).end()
    }
    const id = req.headers['webhook-id']
    if (!seen.has(id)) {
      seen.add(id)
      const { sno, seq, tracking_status: status, occurred_at: at } = event.data
      console.log(`${id}: parcel ${sno} change ${seq}: ${status} (${at})`)
    }
    res.writeHead(204).end()
  })
}).listen(Number(process.env.PORT ?? 8088), () => console.log('listening on', process.env.PORT ?? 8088))
