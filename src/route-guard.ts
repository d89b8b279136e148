// No request can take the server down. node:http calls a request (or upgrade) listener outside any
// try: an error thrown there is an uncaught exception, and a rejected promise an unhandled rejection,
// and either ends the process (and every run in it) for the sake of one request. Each route runs
// inside `guardRequest`/`guardUpgrade`: its error is logged and answered with a 500 (or the
// connection is closed when the response had already started).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | PromiseLike<unknown>
type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void | PromiseLike<unknown>

export function guardRequest(logger: Logger, handle: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const fail = (error: unknown) => {
      logger.error({ err: error, method: req.method, url: req.url }, 'request handler failed')
      if (res.headersSent) {
        res.destroy()
        return
      }
      // Headers a failed writeHead may have set are not ours to send.
      for (const name of res.getHeaderNames()) res.removeHeader(name)
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: 'internal server error' }] }))
    }
    try {
      // Yoga's handler returns a promise or not, depending on the request.
      const pending = handle(req, res)
      if (pending && typeof pending.then === 'function') Promise.resolve(pending).catch(fail)
    } catch (error) {
      fail(error)
    }
  }
}

export function guardUpgrade(logger: Logger, handle: UpgradeHandler): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const fail = (error: unknown) => {
      logger.error({ err: error, url: req.url }, 'WebSocket upgrade failed')
      // Before the handshake's answer the socket still speaks HTTP: say 500. (A handler that failed
      // after the handshake destroys the socket itself: see server.ts.)
      if (!socket.destroyed) socket.end('HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    }
    try {
      const pending = handle(req, socket, head)
      if (pending && typeof pending.then === 'function') Promise.resolve(pending).catch(fail)
    } catch (error) {
      fail(error)
    }
  }
}
