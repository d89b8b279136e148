// A GraphQL-over-SSE subscriber on a raw TCP socket that stops reading once the stream has started
// (the socket is paused for good): a vanished browser tab or a hung client.
import { connect } from 'node:net'
import { stopReading, type StalledClient } from './raw-ws.ts'

export async function stalledSseSubscriber(url: string, query: string, variables: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<StalledClient> {
  const { hostname, port, pathname } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port) })
  let head = ''
  let received = 0
  let closedResolve!: () => void
  const closed = new Promise<void>((resolve) => (closedResolve = resolve))
  socket.on('close', () => closedResolve())
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const body = JSON.stringify({ query, variables })
  socket.write(
    `POST ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no response head from the server in ${timeoutMs} ms`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      received += chunk.length
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      clearTimeout(timer)
      socket.off('data', onData)
      if (!head.startsWith('HTTP/1.1 200')) reject(new Error(`SSE request refused: ${head.split('\r\n')[0]}`))
      else resolve()
    }
    socket.on('data', onData)
  })
  // From here on nothing is read.
  return stopReading(socket, received, closed)
}
