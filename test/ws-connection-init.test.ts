// A WebSocket client whose connection_init reached the server in time is not closed for being late
// (4408) because the server's event loop was held up past the init wait right after the client
// connected — a server starting up on a loaded machine, recovering runs. Node runs due timers before
// it reads sockets, so a bare timer (graphql-ws's connectionInitWaitTimeout) fired first and closed
// the connection with the init sitting unread in its buffer: every subscriber of that connection lost
// (the crash-loop test's "a subscriber never saw its run finish" on a loaded machine).
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { until, within } from './support/barrier.ts'

let t: TestServer | undefined
const dirs: string[] = []
afterEach(async () => {
  await t?.close()
  t = undefined
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/**
 * A graphql-transport-ws client in its own process (so it runs while this one is blocked): it
 * upgrades, prints "upgraded", and on a line on stdin sends connection_init, then creates `flag`;
 * once acknowledged, it sends `subscribe`. It prints everything the server sends (JSON-encoded chunks, latin1).
 */
const CLIENT = `
const net = require('node:net'), crypto = require('node:crypto'), fs = require('node:fs')
const [url, query, variables, flag] = process.argv.slice(1)
const { hostname, port, pathname } = new URL(url)
const frame = (text) => {
  const payload = Buffer.from(text), mask = crypto.randomBytes(4), len = payload.length
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255])
  return Buffer.concat([header, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))])
}
const socket = net.connect({ host: hostname, port: Number(port) })
let head = ''
socket.on('data', (chunk) => {
  if (!head.includes('\\r\\n\\r\\n')) {
    head += chunk.toString('latin1')
    if (head.includes('\\r\\n\\r\\n')) console.log('upgraded')
    return
  }
  const text = chunk.toString('latin1')
  console.log(JSON.stringify(text))
  if (text.includes('connection_ack')) socket.write(frame(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: JSON.parse(variables) } })))
})
socket.on('close', () => process.exit(0))
socket.write('GET ' + pathname + ' HTTP/1.1\\r\\nHost: ' + hostname + ':' + port + '\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
  'Sec-WebSocket-Key: ' + crypto.randomBytes(16).toString('base64') + '\\r\\nSec-WebSocket-Version: 13\\r\\nSec-WebSocket-Protocol: graphql-transport-ws\\r\\n\\r\\n')
require('node:readline').createInterface({ input: process.stdin }).once('line', () => {
  socket.write(frame(JSON.stringify({ type: 'connection_init', payload: {} })), () => fs.writeFileSync(flag, ''))
})`

describe('graphql-ws connection_init', () => {
  it('a server held up past the init wait right after the upgrade still reads the init it received in time', async () => {
    t = await startTestServer({})
    const id = await t.orchestrator.createWorkflow('init_wait', { steps: [{ factory: 'control', action: 'noop' }] })
    const { runId } = await t.orchestrator.startWorkflow(id)
    await t.orchestrator.waitForRun(runId)

    const dir = mkdtempSync(join(tmpdir(), 'conveyor-ws-init-'))
    dirs.push(dir)
    const flag = join(dir, 'sent')
    const query = 'subscription ($id: ID!) { runEvents(runId: $id) { type } }'
    const child = spawn(process.execPath, ['-e', CLIENT, t.url, query, JSON.stringify({ id: runId }), flag], { stdio: ['pipe', 'pipe', 'inherit'] })
    const lines: string[] = []
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l))
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
    try {
      await until(() => lines.includes('upgraded'), 'the client to be upgraded')
      // From here the server's init wait (3 s) runs. The client sends its init now, and this process
      // (the server) is busy until it has certainly arrived and the wait is certainly over.
      child.stdin!.write('send\n')
      const blockedAt = Date.now()
      while (!(existsSync(flag) && Date.now() - blockedAt > 3_500));
      const received = () => lines.slice(1).map((l) => JSON.parse(l) as string).join('')
      await until(() => received().includes('"type":"complete"') || received().includes('initialisation timeout') || child.exitCode !== null, {
        what: 'the subscription to complete or the connection to close',
      })
      expect(received(), 'the connection was closed although its init had arrived').not.toContain('initialisation timeout')
      expect(received()).toContain('connection_ack')
      expect(received()).toContain('RUN_SUCCEEDED')
      expect(received()).toContain('"type":"complete"')
    } finally {
      child.kill()
      await within(exited, 'the client process to exit')
    }
  })
  it('a client that never sends connection_init is still closed with 4408', async () => {
    t = await startTestServer({})
    const child = spawn(process.execPath, ['-e', CLIENT, t.url, '{ __typename }', '{}', join(tmpdir(), 'unused')], { stdio: ['pipe', 'pipe', 'inherit'] })
    const lines: string[] = []
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l))
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
    try {
      await until(() => lines.slice(1).some((l) => (JSON.parse(l) as string).includes('Connection initialisation timeout')), 'the server to close the silent connection')
      expect(Buffer.from(JSON.parse(lines[1]!) as string, 'latin1').readUInt16BE(2)).toBe(4408)
    } finally {
      child.kill()
      await within(exited, 'the client process to exit')
    }
  })
})
