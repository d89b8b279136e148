// Child process of scenario 5: the Conveyor server on its own, so its RSS is measured from a fresh
// process and not mixed with the bench's other scenarios. Driven over IPC by conveyorSubscriptions.
import v8 from 'node:v8'
import vm from 'node:vm'
import { startServer, type RunningServer } from '../src/index.ts'
import { openConveyor, sleep } from './harness.ts'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const send = (m: Record<string, unknown>) => process.send!(m)

async function main(steps: number): Promise<void> {
  const bench = openConveyor()
  const { orchestrator } = bench
  let server: RunningServer | undefined
  let sampler: NodeJS.Timeout | undefined
  let rssBase = 0
  let rssPeak = 0
  let rssConnected = 0
  let runId = ''
  let busBase = 0
  let cpuAtRelease: NodeJS.CpuUsage | undefined
  const committedAt: [number, number][] = []
  process.on('message', (m: { type: string; clients?: number }) => {
    void (async () => {
      if (m.type === 'wait-live') {
        // Every subscription is live once the server has one more event-bus listener per client.
        const deadline = Date.now() + 120_000
        while (orchestrator.context.bus.size < busBase + m.clients!) {
          if (Date.now() > deadline) throw new Error(`only ${orchestrator.context.bus.size - busBase} of ${m.clients} subscriptions became live`)
          await sleep(10)
        }
        rssConnected = process.memoryUsage().rss
        send({ type: 'live' })
      } else if (m.type === 'release') {
        cpuAtRelease = process.cpuUsage()
        // When each of the run's events was committed (published on the bus): the start of the
        // commit→client latency (an event's `at` is when the engine recorded it, before its commit).
        orchestrator.context.bus.listen((events) => {
          const t = Date.now()
          for (const e of events) if (e.runId === runId) committedAt.push([e.seq, t])
        })
        await orchestrator.signalRun(runId, 'gate', { released: true })
        const finished = await orchestrator.waitForRun(runId)
        send({ type: 'finished', status: finished.status })
      } else if (m.type === 'exit') {
        process.exit(0)
      } else if (m.type === 'stop') {
        clearInterval(sampler)
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
        // Server CPU (user + system) from the release to the last client's completion.
        const cpu = process.cpuUsage(cpuAtRelease)
        const serverCpuUs = cpu.user + cpu.system
        const cursor = Number((m as { cursor?: number }).cursor ?? 0)
        const expected = (orchestrator.context.conn.sqlite
          .prepare('SELECT seq FROM events WHERE run_id = ? AND seq > ? ORDER BY seq').all(runId, cursor) as { seq: number }[]).map((r) => r.seq)
        send({ type: 'stopped', rssBase, rssPeak, rssConnected, expected, eventsLost: bench.eventsLost(), serverCpuUs, committedAt })
        await server?.close()
        await bench.done()
        process.exit(0)
      }
    })().catch((e) => send({ type: 'error', message: String((e as Error)?.stack ?? e) }))
  })
  server = await startServer({ orchestrator, host: '127.0.0.1', port: 0 })
  const definition = {
    steps: [
      { id: 'gate', factory: 'control', action: 'approval', params: {} },
      ...Array.from({ length: steps - 1 }, (_, i) => ({ id: `s${i + 1}`, factory: 'control', action: 'noop', params: { i: i + 1 } })),
    ],
    parallel: false,
  }
  const workflowId = await orchestrator.createWorkflow('subscribed', definition)
  ;({ runId } = await orchestrator.startWorkflow(workflowId))
  // Wait until the gate is WAITING (committed), then take the cursor every client starts after.
  for (let i = 0; i < 500 && orchestrator.coordinator.readResult(runId).steps.gate?.status !== 'WAITING'; i++) await sleep(10)
  const cursor = (orchestrator.context.conn.sqlite.prepare('SELECT max(seq) AS s FROM events').get() as { s: number }).s
  busBase = orchestrator.context.bus.size
  gc()
  await sleep(200)
  gc()
  rssBase = process.memoryUsage().rss
  rssPeak = rssBase
  sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  }, 25)
  send({ type: 'ready', url: server.url, runId, cursor })
}

main(Number(process.argv[2] ?? 1000)).catch((e) => send({ type: 'error', message: String((e as Error)?.stack ?? e) }))
