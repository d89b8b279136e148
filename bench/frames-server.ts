// Child process of scenario 5's peer "frames only": the least a server can do for the same clients.
// It speaks just enough graphql-ws (ack, next, complete) to the unchanged bench/sub-clients.ts and,
// on release, writes the run's events as pre-serialised `next` frames: no engine, no database, no
// GraphQL execution, no flow control; commits of the size the engine makes, back to back. What
// latency remains is the clients' own and the kernel's, which bounds what any server can get here.
// Same IPC protocol as bench/sub-server.ts.
import { WebSocketServer, type WebSocket } from 'ws'
import type { AddressInfo } from 'node:net'

const send = (m: Record<string, unknown>) => process.send!(m)

/** Events in one commit of the engine's run of 1,000 no-op steps (Journal.admit bounds a commit at 1,000 changes). */
const EVENTS_PER_COMMIT = 600
const TYPES = ['STEP_READY', 'STEP_STARTED', 'STEP_SUCCEEDED'] as const

interface Subscriber {
  socket: WebSocket
  id: string
  batched: boolean
}

async function main(steps: number): Promise<void> {
  const subscribers: Subscriber[] = []
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has('graphql-transport-ws') ? 'graphql-transport-ws' : false) })
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
  wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; id?: string; payload?: { query?: string } }
      if (m.type === 'connection_init') socket.send('{"type":"connection_ack"}')
      else if (m.type === 'ping') socket.send('{"type":"pong"}')
      else if (m.type === 'subscribe') subscribers.push({ socket, id: m.id!, batched: /runEventBatches/.test(m.payload?.query ?? '') })
    })
  })
  const cursor = 1_000
  // The run after the gate: each step READY, STARTED, SUCCEEDED, then the run's end.
  const total = (steps - 1) * 3 + 2
  const expected = Array.from({ length: total }, (_, i) => cursor + 1 + i)
  const committedAt: [number, number][] = []
  let cpuAtRelease: NodeJS.CpuUsage | undefined
  process.on('message', (m: { type: string; clients?: number }) => {
    void (async () => {
      if (m.type === 'wait-live') {
        while (subscribers.length < m.clients!) await new Promise((r) => setTimeout(r, 10))
        send({ type: 'live' })
      } else if (m.type === 'release') {
        cpuAtRelease = process.cpuUsage()
        for (let start = 0; start < total; start += EVENTS_PER_COMMIT) {
          const at = Date.now()
          const iso = new Date(at).toISOString()
          const seqs = expected.slice(start, start + EVENTS_PER_COMMIT)
          for (const seq of seqs) committedAt.push([seq, at])
          const events = seqs.map((seq) => {
            const i = seq - cursor - 1
            const type = i >= total - 2 ? (i === total - 1 ? 'RUN_SUCCEEDED' : 'STEP_SUCCEEDED') : TYPES[i % 3]
            return `{"seq":${seq},"type":"${type}","stepId":${type === 'RUN_SUCCEEDED' ? 'null' : `"s${Math.floor(i / 3) + 1}"`},"at":"${iso}"}`
          })
          const single = events.map((e) => `,"type":"next","payload":{"data":{"runEvents":${e}}}}`)
          const batch = `,"type":"next","payload":{"data":{"runEventBatches":{"cursor":"${seqs.at(-1)}","events":[${events.join(',')}]}}}}`
          const last = start + EVENTS_PER_COMMIT >= total
          for (const s of subscribers) {
            const head = `{"id":${JSON.stringify(s.id)}`
            const raw = (s.socket as unknown as { _socket: { cork(): void; uncork(): void } })._socket
            raw.cork()
            if (s.batched) s.socket.send(head + batch)
            else for (const frame of single) s.socket.send(head + frame)
            if (last) s.socket.send(`${head},"type":"complete"}`)
            raw.uncork()
          }
          // Let the writes go out before the next commit, as the engine's commits are apart in time.
          await new Promise((r) => setImmediate(r))
        }
        send({ type: 'finished', status: 'SUCCEEDED' })
      } else if (m.type === 'stop') {
        // From the release to the last client's completion, as bench/sub-server.ts measures it.
        const cpu = process.cpuUsage(cpuAtRelease)
        const serverCpuUs = cpu.user + cpu.system
        const rss = process.memoryUsage().rss
        send({ type: 'stopped', rssBase: rss, rssPeak: rss, rssConnected: rss, expected, eventsLost: 0, serverCpuUs, committedAt })
        wss.clients.forEach((c) => c.terminate())
        wss.close()
        // Exit on the harness's 'exit' (or when it goes away), not before: it still sends that.
      } else if (m.type === 'exit') {
        process.exit(0)
      }
    })().catch((e) => send({ type: 'error', message: String((e as Error)?.stack ?? e) }))
  })
  send({ type: 'ready', url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}/graphql`, runId: 'frames', cursor })
}

process.on('disconnect', () => process.exit(0))
main(Number(process.argv[2] ?? 1000)).catch((e) => send({ type: 'error', message: String((e as Error)?.stack ?? e) }))
