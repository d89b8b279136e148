// Child process of scenario 5: N graphql-ws clients subscribed to one run's events. Records, per
// delivery, receive time − the event's `at`, and each client's seqs; reports over IPC.
import { createClient, type Client } from 'graphql-ws'
import WebSocket from 'ws'
import { percentile } from './stats.ts'

const QUERY = 'subscription Watch($runId: ID!, $after: String) { runEvents(runId: $runId, after: $after) { seq type stepId at } }'
// The opt-in batched form: the same events, several to a message.
const BATCH_QUERY = 'subscription Watch($runId: ID!, $after: String) { runEventBatches(runId: $runId, after: $after) { cursor events { seq type stepId at } } }'

type Event = { seq: number; at: string }

interface Start {
  type: 'start'
  url: string
  runId: string
  after: string
  clients: number
  batched?: boolean
}

const send = (m: Record<string, unknown>) => process.send!(m)

let clients: Client[] = []
const latencies: number[] = []
const firstLatencies: number[] = []
let seqs: number[][] = []
let completed = 0
let messages = 0
// Every delivery's seq and receive time, for the latency from the event's commit.
const deliveredSeq: number[] = []
const deliveredAt: number[] = []

process.on('message', (m: { type: string }) => {
  if (m.type === 'start') void start(m as Start).catch((e) => send({ type: 'error', message: String(e?.stack ?? e) }))
  else if (m.type === 'expected') {
    const e = m as unknown as { seqs: number[]; committedAt: [number, number][] }
    report(e.seqs, new Map(e.committedAt))
  }
  else if (m.type === 'exit') void shutdown()
})

async function start(s: Start): Promise<void> {
  seqs = Array.from({ length: s.clients }, () => [])
  clients = []
  for (let i = 0; i < s.clients; i++) {
    const client = createClient({ url: s.url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true })
    clients.push(client)
    const mine = seqs[i]!
    // One latency per event either way: receive time of the message that carried it − its `at`.
    const receive = (events: Event[]) => {
      const received = Date.now()
      for (const e of events) {
        const latency = received - Date.parse(e.at)
        latencies.push(latency)
        if (mine.length === 0) firstLatencies.push(latency)
        mine.push(e.seq)
        deliveredSeq.push(e.seq)
        deliveredAt.push(received)
      }
    }
    client.subscribe<{ runEvents?: Event; runEventBatches?: { events: Event[] } }>(
      { query: s.batched ? BATCH_QUERY : QUERY, variables: { runId: s.runId, after: s.after } },
      {
        next: (value) => {
          const events = s.batched ? value.data?.runEventBatches?.events : value.data?.runEvents && [value.data.runEvents]
          if (!events) {
            send({ type: 'error', message: `client ${i}: ${JSON.stringify(value.errors)}` })
            return
          }
          messages++
          receive(events)
        },
        error: (e) => send({ type: 'error', message: `client ${i}: ${String((e as Error)?.message ?? JSON.stringify(e))}` }),
        complete: () => {
          if (++completed === s.clients) send({ type: 'completed' })
        },
      },
    )
    // Connect in batches so the listen backlog never overflows.
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20))
  }
  send({ type: 'subscribing' })
}

function report(expected: number[], committedAt: Map<number, number>): void {
  const fromCommit: number[] = []
  for (let k = 0; k < deliveredSeq.length; k++) {
    const t = committedAt.get(deliveredSeq[k]!)
    if (t !== undefined) fromCommit.push(deliveredAt[k]! - t)
  }
  let lost = 0
  let disorder = 0
  let deliveries = 0
  const want = new Set(expected)
  for (const mine of seqs) {
    deliveries += mine.length
    const got = new Set<number>()
    let prev = -Infinity
    for (const seq of mine) {
      if (seq <= prev || got.has(seq) || !want.has(seq)) disorder++
      got.add(seq)
      prev = seq
    }
    for (const seq of expected) if (!got.has(seq)) lost++
  }
  send({
    type: 'report', deliveries, messages, lost, disorder,
    p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.reduce((a, b) => Math.max(a, b), 0),
    firstEventP99: percentile(firstLatencies, 99),
    fromCommitP50: percentile(fromCommit, 50), fromCommitP99: percentile(fromCommit, 99),
  })
}

async function shutdown(): Promise<void> {
  await Promise.allSettled(clients.map((c) => c.dispose()))
  process.exit(0)
}
