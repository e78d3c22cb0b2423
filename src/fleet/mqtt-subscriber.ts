import { EventEmitter } from 'node:events'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import mqttPacket, { type Packet } from 'mqtt-packet'

/**
 * A small MQTT 5 subscriber for QoS 1 with acknowledgements the caller controls.
 *
 * Why not mqtt.js here: mqtt.js sends a PUBACK when its message handler calls back and reads the
 * next packet only after that, so "acknowledge once the fix is committed" means one transaction
 * per message (measured: scripts/bench/fleet.ts, docs/fleet.md). This client hands every message
 * over at once with an `ack()` to call later, so a whole batch commits in one transaction and is
 * acknowledged after it. It speaks MQTT 5 to set Receive Maximum (how many unacknowledged
 * messages the broker may send; Mosquitto's 20 applies to 3.1.1 clients) and a session expiry,
 * which with Clean Start off and a fixed client id keeps the subscription and the unacknowledged
 * messages on the broker across a restart. mqtt.js stays the choice for publishing (tests, bench).
 */
export interface MqttSubscriberOptions {
  url: string
  clientId: string
  topics: string[]
  /** Unacknowledged messages the broker may have outstanding with us. */
  receiveMaximum: number
  /** How long the broker keeps the session while we are away (seconds). */
  sessionExpiryS?: number
  keepaliveS?: number
  /** Longest wait between reconnection attempts. */
  maxReconnectMs?: number
}

export interface InboundMessage {
  topic: string
  payload: Buffer
  /** A redelivery (the broker sent it before, unacknowledged). */
  dup: boolean
  /** Acknowledges (PUBACK) on the connection it came on; a no-op after that connection is gone. */
  ack: () => void
}

export declare interface MqttSubscriber {
  on: ((event: 'message', listener: (message: InboundMessage) => void) => this) &
  ((event: 'connect', listener: (info: { sessionPresent: boolean }) => void) => this) &
  ((event: 'offline', listener: (err: Error | undefined) => void) => this)
}

export class MqttSubscriber extends EventEmitter {
  private socket: Socket | undefined
  private generation = 0
  private closed = false
  private attempts = 0
  private timer: NodeJS.Timeout | undefined
  private ping: NodeJS.Timeout | undefined
  private lastInbound = 0
  private nextId = 1
  connected = false

  constructor (private readonly options: MqttSubscriberOptions) {
    super()
  }

  start (): void {
    this.open()
  }

  /** Disconnects cleanly (the session and its unacknowledged messages stay on the broker). */
  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    clearInterval(this.ping)
    const socket = this.socket
    if (socket === undefined || socket.destroyed) return
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve())
      if (this.connected) socket.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0 } as Packet, { protocolVersion: 5 }))
      else socket.destroy()
      setTimeout(() => { socket.destroy() }, 1000).unref()
    })
  }

  private open (): void {
    const url = new URL(this.options.url)
    const port = Number(url.port !== '' ? url.port : url.protocol === 'mqtts:' ? 8883 : 1883)
    const generation = ++this.generation
    const socket = url.protocol === 'mqtts:'
      ? tlsConnect({ host: url.hostname, port, servername: url.hostname })
      : netConnect({ host: url.hostname, port })
    this.socket = socket
    socket.setNoDelay(true)
    const parser = mqttPacket.parser({ protocolVersion: 5 })
    const send = (packet: Record<string, unknown>): void => {
      if (generation === this.generation && !socket.destroyed) socket.write(mqttPacket.generate(packet as unknown as Packet, { protocolVersion: 5 }))
    }
    const keepalive = this.options.keepaliveS ?? 30
    parser.on('packet', (packet: Packet) => {
      this.lastInbound = Date.now()
      switch (packet.cmd) {
        case 'connack': {
          const code = packet.reasonCode ?? packet.returnCode ?? 0
          if (code !== 0) {
            socket.destroy(new Error(`MQTT broker refused the connection (reason code ${code})`))
            return
          }
          this.connected = true
          this.attempts = 0
          send({ cmd: 'subscribe', messageId: this.messageId(), subscriptions: this.options.topics.map((topic) => ({ topic, qos: 1 })) })
          this.emit('connect', { sessionPresent: packet.sessionPresent })
          return
        }
        case 'publish': {
          const qos = packet.qos
          const messageId = packet.messageId
          let acked = false
          this.emit('message', {
            topic: packet.topic,
            payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
            dup: packet.dup,
            ack: () => {
              if (acked) return
              acked = true
              if (qos === 1) send({ cmd: 'puback', messageId, reasonCode: 0 })
              else if (qos === 2) send({ cmd: 'pubrec', messageId, reasonCode: 0 })
            }
          } satisfies InboundMessage)
          return
        }
        case 'pubrel':
          send({ cmd: 'pubcomp', messageId: packet.messageId, reasonCode: 0 })
          return
        case 'suback': {
          const refused = (packet.granted as number[]).filter((g) => g >= 0x80)
          if (refused.length > 0) socket.destroy(new Error('MQTT broker refused the subscription'))
          return
        }
        case 'disconnect':
          socket.destroy(new Error(`MQTT broker disconnected us (reason code ${packet.reasonCode ?? 0})`))
      }
    })
    parser.on('error', (err) => socket.destroy(err))
    socket.on('connect', () => {
      const properties: Record<string, unknown> = {
        sessionExpiryInterval: this.options.sessionExpiryS ?? 7 * 86_400,
        receiveMaximum: this.options.receiveMaximum
      }
      const packet: Record<string, unknown> = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, clientId: this.options.clientId, keepalive, properties }
      if (url.username !== '') packet.username = decodeURIComponent(url.username)
      if (url.password !== '') packet.password = Buffer.from(decodeURIComponent(url.password))
      send(packet)
      this.lastInbound = Date.now()
      clearInterval(this.ping)
      this.ping = setInterval(() => {
        if (Date.now() - this.lastInbound > keepalive * 1500) socket.destroy(new Error('MQTT broker stopped answering'))
        else send({ cmd: 'pingreq' })
      }, keepalive * 500)
      this.ping.unref()
    })
    socket.on('data', (chunk: Buffer) => parser.parse(chunk))
    socket.on('error', () => { /* reported on close */ })
    socket.on('close', () => {
      if (generation !== this.generation) return
      const wasConnected = this.connected
      this.connected = false
      clearInterval(this.ping)
      if (wasConnected || this.attempts === 0) this.emit('offline', undefined)
      if (this.closed) return
      const delay = Math.min(this.options.maxReconnectMs ?? 5000, 100 * 2 ** Math.min(this.attempts++, 8))
      this.timer = setTimeout(() => this.open(), delay)
    })
  }

  private messageId (): number {
    this.nextId = this.nextId >= 65535 ? 1 : this.nextId + 1
    return this.nextId
  }
}
