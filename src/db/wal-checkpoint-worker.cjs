// The thread of `WalCheckpointer` (wal-checkpointer.ts): checkpoints the database's WAL on a
// connection of its own, so that copying pages back and syncing the file never hold up the commits
// of the main thread. Plain CommonJS: a worker thread gets no TypeScript loader.
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)

const { path, intervalMs, maxIntervalMs, restartFrames, busyTimeoutMs, closed } = workerData
const db = new Database(path, { fileMustExist: true })
db.pragma(`busy_timeout = ${busyTimeoutMs}`)

// An idle database needs no pass every `intervalMs`: while passes find nothing new (no commit since
// the last one, by `data_version`, and the WAL all copied back), the wait doubles up to
// `maxIntervalMs`; the first pass that finds a commit brings it back to `intervalMs`.
let interval = intervalMs
let seenVersion
let timer

function pass() {
  try {
    // Changes only when another connection (the main one) has committed since this one last asked.
    const version = db.pragma('data_version', { simple: true })
    // PASSIVE copies what it can without waiting for the writer or readers.
    let [r] = db.pragma('wal_checkpoint(PASSIVE)')
    // A writer that never pauses can keep the WAL from being reused: past the bound, one RESTART
    // (it waits for the writer between two commits) lets the next commit write from its start.
    if (r.log > restartFrames) [r] = db.pragma('wal_checkpoint(RESTART)')
    const idle = version === seenVersion && r.busy === 0 && r.checkpointed === r.log
    seenVersion = version
    interval = idle ? Math.min(maxIntervalMs, interval * 2) : intervalMs
    parentPort.postMessage({ type: 'pass', frames: r.log, copied: r.checkpointed, busy: r.busy === 1, intervalMs: interval })
  } catch (error) {
    interval = intervalMs
    parentPort.postMessage({ type: 'error', message: String(error && error.message), code: error && error.code })
  }
}

// After large deletes (retention): copy everything back and cut the WAL file to zero bytes. TRUNCATE
// waits (busy timeout) for the writer and for readers of older WAL frames.
function truncate() {
  try {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)')
    parentPort.postMessage({ type: 'truncated', frames: r.log, copied: r.checkpointed, busy: r.busy === 1 })
  } catch (error) {
    parentPort.postMessage({ type: 'truncate-error', message: String(error && error.message) })
  }
}

function schedule() {
  timer = setTimeout(() => {
    pass()
    schedule()
  }, interval)
}

schedule()
parentPort.on('message', (m) => {
  if (m === 'pass') {
    clearTimeout(timer)
    pass()
    schedule()
  } else if (m === 'truncate') truncate()
  else if (m === 'close') {
    clearTimeout(timer)
    db.close()
    parentPort.close()
    // The main thread waits on this (Atomics.wait) before it closes its own connection.
    Atomics.store(closed, 0, 1)
    Atomics.notify(closed, 0)
  }
})
