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

type Callback = (error?: Error) => void
type RawSend = (data: unknown, options?: unknown, cb?: Callback) => void

export interface FlowOptions {
  /** See the top of this file; not finite or ≤ 0: no limit. */
  maxUnreadBytes: number
  /** Bytes a socket may hold unsent (in user space) before a send waits for the kernel again. */
  writeAheadBytes?: number
  /** How long a turn writes ahead (ms): after that, sends wait for the flush. */
  turnBudgetMs?: number
  logger?: Logger
}

/** Bytes a socket may hold unsent (in user space) before a send waits for the kernel again. */
export const DEFAULT_WRITE_AHEAD_BYTES = 32 * 1024

const flows = new WeakMap<WebSocket, SocketFlow>()

/** The flow control of a socket that `flowControl` set up (for senders that bypass `socket.send`). */
export function flowOf(socket: WebSocket): SocketFlow | undefined {
  return flows.get(socket)
}

/**
 * Both limits on every socket of `wss`: the unread-bytes budget (above) and fewer, larger writes.
 * graphql-ws awaits each frame's write callback before it takes the next event, and ws writes every
 * frame at once: one syscall per frame per client. Here a send returns at once while the socket
 * holds less than `writeAheadBytes` unsent (so a subscription hands over every event it has in the
 * same turn), and each socket is corked from its first send in a turn until the next `setImmediate`,
 * so all of that leaves in one write. Past `writeAheadBytes` a send waits for its write as before: a
 * client that does not keep up still holds back only its own subscriptions, and the unread-bytes
 * limit still counts every byte handed to ws. Nothing leaves before the turn ends, so a turn only
 * writes ahead for `turnBudgetMs`: after that, sends wait for the flush, and the first frames of
 * every socket go out without waiting for the rest. `socket.send` is wrapped so every frame, from
 * graphql-ws or not, goes through this.
 */
export function flowControl(wss: WebSocketServer, options: FlowOptions): void {
  const max = options.maxUnreadBytes > 0 && Number.isFinite(options.maxUnreadBytes) ? options.maxUnreadBytes : Infinity
  const turn = new Turn(options.writeAheadBytes ?? DEFAULT_WRITE_AHEAD_BYTES, options.turnBudgetMs ?? 5)
  // A client whose last message went over the budget and then blocked gets no further send: check it
  // every second as well.
  const open = new Set<SocketFlow>()
  if (max !== Infinity) {
    const timer = setInterval(() => open.forEach((flow) => flow.check()), 1000).unref()
    wss.on('close', () => clearInterval(timer))
  }
  wss.on('connection', (socket) => {
    const flow = new SocketFlow(socket, max, turn, options.logger)
    flows.set(socket, flow)
    open.add(flow)
    socket.once('close', () => open.delete(flow))
    socket.send = ((data: unknown, a?: unknown, b?: unknown) => {
      const cb = (typeof a === 'function' ? a : b) as Callback | undefined
      const opts = typeof a === 'function' ? undefined : a
      const bytes = typeof data === 'string' ? Buffer.byteLength(data) : (data as { byteLength?: number }).byteLength ?? 0
      if (flow.send(data, bytes, opts, cb)) cb?.()
    }) as typeof socket.send
  })
}

/** The current turn's corked sockets, shared by all sockets of a server. */
class Turn {
  private corked: SocketFlow[] = []
  private started = 0
  constructor(
    readonly writeAheadBytes: number,
    private readonly budgetMs: number,
  ) {}

  private readonly flush = () => {
    const corked = this.corked
    this.corked = []
    for (const flow of corked) flow.uncork()
  }

  cork(flow: SocketFlow): void {
    if (this.corked.length === 0) {
      setImmediate(this.flush)
      this.started = performance.now()
    }
    this.corked.push(flow)
  }

  get open(): boolean {
    return performance.now() - this.started < this.budgetMs
  }
}

export class SocketFlow {
  private sent = 0
  private acknowledged = 0
  private pinged = false
  private dropped = false
  private corked = false
  private readonly raw: { cork(): void; uncork(): void } | undefined
  private readonly rawSend: RawSend

  constructor(
    private readonly socket: WebSocket,
    private readonly max: number,
    private readonly turn: Turn,
    private readonly logger?: Logger,
  ) {
    this.raw = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket
    this.rawSend = socket.send.bind(socket) as RawSend
    socket.on('pong', (data: Buffer) => {
      const text = data.toString()
      if (!text.startsWith(PING_PREFIX)) return
      this.acknowledged = Math.max(this.acknowledged, Number(text.slice(PING_PREFIX.length)) || 0)
      this.pinged = false
    })
  }

  get open(): boolean {
    return this.socket.readyState === this.socket.OPEN
  }

  /**
   * Hands `data` (`bytes` long) to ws. True: the caller may send more at once, and `cb` is not
   * called. False: `cb` is called once the frame is written, or at once with an error when the
   * client is over its unread budget (the frame then goes nowhere and the socket is being closed).
   */
  send(data: unknown, bytes: number, options: unknown, cb: Callback | undefined): boolean {
    const unread = this.sent - this.acknowledged
    if (unread > this.max) {
      this.drop(unread)
      cb?.(new Error('client closed: too slow'))
      return false
    }
    this.sent += bytes
    if (!this.corked && this.raw) {
      this.corked = true
      this.raw.cork()
      this.turn.cork(this)
    }
    // Decided before the send, so a frame sent at once needs no callback.
    const now = this.socket.bufferedAmount + bytes < this.turn.writeAheadBytes && this.turn.open
    if (now || !cb) this.rawSend(data, options)
    else this.rawSend(data, options, cb)
    if (!this.pinged && this.sent - this.acknowledged > this.max / 2 && this.open) {
      this.pinged = true
      this.socket.ping(`${PING_PREFIX}${this.sent}`)
    }
    // A write error after this point closes the socket, which ends its subscriptions anyway.
    return now
  }

  uncork(): void {
    this.corked = false
    this.raw!.uncork()
  }

  check(): void {
    if (this.sent - this.acknowledged > this.max) this.drop(this.sent - this.acknowledged)
  }

  private drop(unread: number): void {
    if (this.dropped) return
    this.dropped = true
    this.logger?.warn({ unreadBytes: unread, limit: this.max }, 'closing a WebSocket client that stopped reading')
    this.socket.close(SLOW_CLIENT_CLOSE_CODE, 'subscriber too slow: too much unread data')
    // A client that reads nothing will not read the close frame either.
    setTimeout(() => this.socket.terminate(), 1000).unref()
  }
}
