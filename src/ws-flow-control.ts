// Flow control for GraphQL WebSocket clients. graphql-ws waits for each message to be handed to the
// kernel before sending the next, so a client that stops reading costs the server little memory; but
// the kernel keeps accepting data for it (its socket buffers grow to megabytes), and serialising all
// that for hundreds of stalled clients slows everyone else down until the keep-alive gives up on
// them (30 s). So every client has a budget of bytes it may be sent without showing that it read
// them: past half the budget the server sends a WebSocket ping carrying the byte count; the pong
// (sent by any client once it has read up to the ping) acknowledges those bytes. A client more than
// `maxUnreadBytes` behind is closed with 1013 (Try Again Later; graphql-ws clients reconnect and
// resume with their last cursor), and its socket is destroyed a second later if it does not answer.
import type { WebSocket, WebSocketServer } from 'ws'
import type { Logger } from 'pino'

/** "Try Again Later": not fatal for graphql-ws clients, which reconnect. */
export const SLOW_CLIENT_CLOSE_CODE = 1013
export const DEFAULT_MAX_UNREAD_BYTES = 1024 * 1024
const PING_PREFIX = 'conveyor-ack:'

export function limitUnreadBytes(wss: WebSocketServer, maxUnreadBytes: number, logger?: Logger): void {
  if (!(maxUnreadBytes > 0) || !Number.isFinite(maxUnreadBytes)) return
  // A client whose last message went over the budget and then blocked gets no further send: check it
  // every second as well.
  const checks = new Set<() => void>()
  const timer = setInterval(() => checks.forEach((check) => check()), 1000).unref()
  wss.on('close', () => clearInterval(timer))
  wss.on('connection', (socket) => {
    const check = watch(socket, maxUnreadBytes, logger)
    checks.add(check)
    socket.once('close', () => checks.delete(check))
  })
}

function watch(socket: WebSocket, max: number, logger?: Logger): () => void {
  let sent = 0
  let acknowledged = 0
  let pinged = false
  let dropped = false
  socket.on('pong', (data: Buffer) => {
    const text = data.toString()
    if (!text.startsWith(PING_PREFIX)) return
    acknowledged = Math.max(acknowledged, Number(text.slice(PING_PREFIX.length)) || 0)
    pinged = false
  })
  const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void
  socket.send = ((data: unknown, ...rest: unknown[]) => {
    const unread = sent - acknowledged
    if (unread > max) {
      drop(unread)
      // What graphql-ws passes is a callback: tell it the message went nowhere.
      const cb = rest.find((x) => typeof x === 'function') as ((e?: Error) => void) | undefined
      cb?.(new Error('client closed: too slow'))
      return
    }
    sent += typeof data === 'string' ? Buffer.byteLength(data) : (data as { byteLength?: number }).byteLength ?? 0
    send(data, ...rest)
    if (!pinged && sent - acknowledged > max / 2 && socket.readyState === socket.OPEN) {
      pinged = true
      socket.ping(`${PING_PREFIX}${sent}`)
    }
  }) as typeof socket.send

  return () => {
    if (sent - acknowledged > max) drop(sent - acknowledged)
  }

  function drop(unread: number): void {
    if (dropped) return
    dropped = true
    logger?.warn({ unreadBytes: unread, limit: max }, 'closing a WebSocket client that stopped reading')
    socket.close(SLOW_CLIENT_CLOSE_CODE, 'subscriber too slow: too much unread data')
    // A client that reads nothing will not read the close frame either.
    setTimeout(() => socket.terminate(), 1000).unref()
  }
}

/** Bytes a socket may hold unsent (in user space) before a send waits for the kernel again. */
export const DEFAULT_WRITE_AHEAD_BYTES = 32 * 1024

/**
 * Fewer, larger writes. graphql-ws awaits each frame's write callback before it takes the next
 * event, and ws writes every frame at once: one syscall per frame per client. Here a send returns
 * at once while the socket holds less than `writeAheadBytes` unsent (so a subscription hands over
 * every event it has in the same turn), and each socket is corked from its first send in a turn
 * until the next `setImmediate`, so all of that leaves in one write. Past `writeAheadBytes` a send
 * waits for its write as before: a client that does not keep up still holds back only its own
 * subscriptions, and the unread-bytes limit above still counts every byte handed to ws. Nothing
 * leaves before the turn ends, so a turn only writes ahead for `turnBudgetMs`: after that, sends
 * wait for the flush, and the first frames of every socket go out without waiting for the rest.
 */
export function batchWrites(wss: WebSocketServer, writeAheadBytes = DEFAULT_WRITE_AHEAD_BYTES, turnBudgetMs = 5): void {
  const corked = new Set<{ uncork(): void }>()
  let turnStarted = 0
  const flush = () => {
    for (const raw of corked) raw.uncork()
    corked.clear()
  }
  wss.on('connection', (socket) => {
    const raw = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket
    const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void
    socket.send = ((data: unknown, ...rest: unknown[]) => {
      if (raw && !corked.has(raw)) {
        if (corked.size === 0) {
          setImmediate(flush)
          turnStarted = performance.now()
        }
        raw.cork()
        corked.add(raw)
      }
      const i = rest.findIndex((x) => typeof x === 'function')
      const cb = i >= 0 ? (rest[i] as (e?: Error) => void) : undefined
      let settled = false
      const done = (e?: Error) => {
        if (settled) return
        settled = true
        cb?.(e)
      }
      if (i >= 0) rest[i] = done
      else rest.push(done)
      send(data, ...rest)
      // A write error after this point closes the socket, which ends its subscriptions anyway.
      if (!settled && socket.bufferedAmount < writeAheadBytes && performance.now() - turnStarted < turnBudgetMs) done()
    }) as typeof socket.send
  })
}
