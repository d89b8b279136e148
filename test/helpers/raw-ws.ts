// A minimal graphql-transport-ws client over a raw TCP socket, for clients that misbehave on
// purpose: it subscribes and then stops reading (the socket is paused and nothing ever resumes it),
// as a vanished or stalled subscriber does. Nothing in `ws` can resume the socket behind our back.
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'

/** A masked client text frame (RFC 6455 §5.2). */
function frame(text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = randomBytes(4)
  const len = payload.length
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  if (len >= 126 && len < 65536) {
    header[0] = 0x81
    header[1] = 0x80 | 126
    header.writeUInt16BE(len, 2)
  } else if (len >= 65536) {
    header[0] = 0x81
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(len), 2)
  }
  const masked = Buffer.alloc(len)
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ mask[i % 4]!
  return Buffer.concat([header, mask, masked])
}

export interface StalledClient {
  socket: Socket
  /** Bytes received before it stopped reading. */
  received: number
  /** Resolves when the server closed or reset the connection (seen once the client reads again). */
  closed: Promise<void>
  /** Starts reading again (to see whether the server has closed the connection meanwhile). */
  drain(): void
  destroy(): void
}

/**
 * Connects to `url` (http://host:port/path), does the WebSocket handshake and graphql-ws
 * connection_init, sends `subscribe` for `query`, then pauses the socket for good.
 */
export async function stalledSubscriber(url: string, query: string, variables: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<StalledClient> {
  const { hostname, port, pathname } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port) })
  let buffer = ''
  let received = 0
  let closedResolve!: () => void
  const closed = new Promise<void>((resolve) => (closedResolve = resolve))
  socket.on('close', () => closedResolve())
  socket.on('error', () => {})
  const waitFor = (needle: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${needle}" from the server in ${timeoutMs} ms`)), timeoutMs)
      const check = () => {
        if (buffer.includes(needle)) {
          clearTimeout(timer)
          socket.off('data', onData)
          resolve()
        }
      }
      const onData = (chunk: Buffer) => {
        received += chunk.length
        buffer += chunk.toString('latin1')
        check()
      }
      socket.on('data', onData)
      check()
    })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write(
    `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n`,
  )
  await waitFor('\r\n\r\n')
  if (!buffer.startsWith('HTTP/1.1 101')) throw new Error(`handshake refused: ${buffer.split('\r\n')[0]}`)
  socket.write(frame(JSON.stringify({ type: 'connection_init', payload: {} })))
  await waitFor('connection_ack')
  socket.write(frame(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } })))
  // From here on nothing is read: data piles up in the kernel buffers, then on the server.
  return stopReading(socket, received, closed)
}

/** Pauses `socket` for good and describes it as a stalled client (`received`: bytes read so far). */
export function stopReading(socket: Socket, received: number, closed: Promise<void>): StalledClient {
  socket.pause()
  return {
    socket,
    get received() {
      return received
    },
    closed,
    drain() {
      socket.on('data', (chunk: Buffer) => (received += chunk.length))
      socket.resume()
    },
    destroy() {
      socket.destroy()
    },
  }
}
