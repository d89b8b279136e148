// Flow control for subscribers over SSE. The HTTP response waits for 'drain' before it pulls the next
// event (yoga's Node adapter), so a client that stops reading costs the server one pending write, not
// a growing buffer; but its connection, its subscription and the kernel's buffers for it would stay
// forever. A response that has needed a drain for `maxStallMs` without getting one is closed: a
// client that reads, however slowly, drains well within that. A client that comes back resumes with
// its last cursor (`after`), and misses nothing.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Logger } from 'pino'

export const DEFAULT_MAX_STALL_MS = 10_000

/** Watches the event-stream responses of `server`; call `close()` when it stops. */
export function limitStalledStreams(server: Server, maxStallMs: number, logger?: Logger): { close(): void } {
  if (!(maxStallMs > 0) || !Number.isFinite(maxStallMs)) return { close() {} }
  /** Open event-stream responses, with when they began waiting for a drain (0: not waiting). */
  const open = new Map<ServerResponse, number>()
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!String(req.headers.accept ?? '').includes('text/event-stream')) return
    open.set(res, 0)
    res.on('drain', () => open.set(res, 0))
    res.once('close', () => open.delete(res))
  }
  server.on('request', onRequest)
  const timer = setInterval(() => {
    const now = Date.now()
    for (const [res, since] of open) {
      if (!res.writableNeedDrain) open.set(res, 0)
      else if (since === 0) open.set(res, now)
      else if (now - since >= maxStallMs) {
        open.delete(res)
        logger?.warn({ stalledMs: now - since, limitMs: maxStallMs, pendingBytes: res.writableLength }, 'closing an SSE subscriber that stopped reading')
        res.destroy()
      }
    }
  }, Math.min(1000, Math.max(50, maxStallMs / 4))).unref()
  return {
    close() {
      clearInterval(timer)
      server.off('request', onRequest)
    },
  }
}
