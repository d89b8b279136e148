// Subscriptions that share their per-event execution. graphql-js executes a subscription's document
// once per subscriber per event; with 1,000 subscribers to one run that is 1,000 identical
// executions of every event. This envelop plugin keeps each subscriber's own source stream (its own
// cursor, replay and gap-free guarantee: src/engine/events.ts) but executes the document over an
// event once per *group* — subscribers whose result provably cannot differ — and hands every member
// the same result object.
//
// A group is: the same parsed document (yoga caches parses by source text, so the same text is the
// same object), the same operation name, the same variable values and, with auth on, the same
// authorization (so the scope-check outcome, made for each operation before it subscribes by
// useAccessControl, is the same too). The execution context is a fresh shallow copy of the first
// member's for each event, so per-context caches (dataloaders) never outlive one event. Events
// from the live bus are the same object for every stream, which is what the cache is keyed on;
// rows a stream reads back from the database are its own and simply execute unshared.
import { createRequire } from 'node:module'
import type { DocumentNode, ExecutionArgs, ExecutionResult } from 'graphql'
import { createGraphQLError, type Plugin } from 'graphql-yoga'
import type { WebSocket, WebSocketServer } from 'ws'
import { flowOf, type SocketFlow } from './ws-flow-control.ts'

// The graphql copy the schema was built with (Pothos and yoga load it through Node's resolution; a
// test runner may resolve a plain import to graphql's other, ESM, build: server.ts does the same).
const { createSourceEventStream, execute } = createRequire(import.meta.url)('graphql') as typeof import('graphql')

type Result = ExecutionResult | Promise<ExecutionResult>

interface AuthContext {
  connectionAuthorization?: string
  request?: Request
}

export function useSharedSubscriptionResults(options: { authRequired: boolean }): Plugin {
  const documentIds = new WeakMap<DocumentNode, number>()
  let nextDocumentId = 0
  // event (or the first event of a batch) → group key → result; entries go with the event object.
  const results = new WeakMap<object, Map<string, Result>>()

  const groupKey = (args: ExecutionArgs): string | undefined => {
    let doc = documentIds.get(args.document)
    if (doc === undefined) documentIds.set(args.document, (doc = nextDocumentId++))
    let variables: string
    try {
      variables = JSON.stringify(args.variableValues ?? null)
    } catch {
      return undefined // not JSON (cannot happen over the wire): do not share
    }
    const context = (args.contextValue ?? {}) as AuthContext
    const authorization = !options.authRequired
      ? ''
      : 'connectionAuthorization' in context
        ? `ws:${context.connectionAuthorization ?? ''}`
        : `http:${context.request?.headers.get('authorization') ?? ''}`
    return JSON.stringify([doc, args.operationName ?? null, variables, authorization])
  }

  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn((async (args: ExecutionArgs) => {
        const source = await createSourceEventStream(args)
        if (!isAsyncIterable(source)) return source // the subscribe resolver's errors
        const key = groupKey(args)
        const run = (payload: unknown): Result =>
          execute({ ...args, rootValue: payload, contextValue: { ...(args.contextValue as object) } })
        const shared = (object: object, k: string, payload: unknown): Result => {
          let byGroup = results.get(object)
          if (!byGroup) results.set(object, (byGroup = new Map()))
          let result = byGroup.get(k)
          if (result === undefined) byGroup.set(k, (result = run(payload)))
          return result
        }
        return mapEvents(source, (payload) => {
          if (key === undefined) return run(payload)
          // A single event (the common case) is its own cache key, without a slot object.
          if (payload && typeof payload === 'object' && !Array.isArray(payload)) return shared(payload, key, payload)
          const slot = cacheSlot(payload)
          return slot ? shared(slot.object, key + slot.suffix, payload) : run(payload)
        }, (error) => {
          // As graphql-tools' subscribe does: an error of the source stream becomes a GraphQL error.
          const e = error instanceof Error ? error : new Error(String(error))
          return createGraphQLError(e.message, { originalError: e })
        }, args.contextValue)
      }) as never)
    },
  }
}

/**
 * What identifies an event for the cache: the event object itself, or for a batch (a list of events
 * of one filter, gap-free) its first event plus its last seq and length — two batches of the same
 * filter with those equal hold the same events.
 */
function cacheSlot(payload: unknown): { object: object; suffix: string } | undefined {
  if (Array.isArray(payload)) {
    const first = payload[0] as { seq?: unknown } | undefined
    const last = payload.at(-1) as { seq?: unknown } | undefined
    if (!first || typeof first !== 'object' || typeof last?.seq !== 'number') return undefined
    return { object: first, suffix: `|${last.seq}|${payload.length}` }
  }
  if (payload && typeof payload === 'object') return { object: payload, suffix: '' }
  return undefined
}

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return typeof (x as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function'
}

/**
 * A subscription's results taken without waiting, for `directFrames`, which finds it by the
 * operation's context. `take` maps the next event if the source has one at hand (`takeNow`), and
 * returns it only if it went through nothing but identity on its way out: it has no errors (errors
 * are masked in envelop's `onNext`), and the results `next` handed out came out of envelop's
 * wrappers as the same objects (`passedThrough`, checked by `directFrames`). Anything else is kept
 * for the next `next`, so the order stays the source's. A plugin whose `onNext` only observes
 * results (no `setResult`) would not see drained ones: such a plugin needs the drain turned off.
 */
export interface Drain {
  take(): ExecutionResult | undefined
  /** The last result `next` handed out. */
  readonly last: unknown
  passedThrough: boolean
}

const drains = new WeakMap<object, Drain>()
const NO_DRAIN: Drain = { last: undefined, passedThrough: false, take: () => undefined }
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }

/** `source` mapped through `map`, with return/throw passed on (graphql-ws ends a subscription with return()). */
function mapEvents(source: AsyncIterable<unknown>, map: (payload: unknown) => Result, mapError: (error: unknown) => unknown, context: unknown): AsyncGenerator<ExecutionResult> {
  const it = source[Symbol.asyncIterator]()
  const takeNow = (it as { takeNow?: () => unknown }).takeNow
  let ended = false
  // What `take` took but could not return: handed out first by `next`.
  let kept: (() => Promise<IteratorResult<ExecutionResult>>) | undefined
  const drain: Drain = { last: undefined, passedThrough: false, take: () => undefined }
  const out = (value: ExecutionResult): IteratorResult<ExecutionResult> => {
    ;(drain as { last: unknown }).last = value
    return { done: false, value }
  }
  const step = (s: IteratorResult<unknown>): IteratorResult<ExecutionResult> | Promise<IteratorResult<ExecutionResult>> => {
    if (s.done) return DONE
    const r = map(s.value)
    return isPromise(r) ? r.then(out) : out(r)
  }
  const failed = (error: unknown): never => {
    throw mapError(error)
  }
  if (takeNow && context && typeof context === 'object') {
    drain.take = () => {
      if (ended || kept || !drain.passedThrough) return undefined
      let payload: unknown
      try {
        payload = takeNow.call(it)
      } catch (error) {
        kept = () => Promise.reject(mapError(error))
        return undefined
      }
      if (payload === undefined) return undefined
      let r: Result
      try {
        r = map(payload)
      } catch (error) {
        kept = () => Promise.reject(error)
        return undefined
      }
      if (isPromise(r) || r.errors) {
        const result = r
        kept = () => Promise.resolve(result).then(out)
        return undefined
      }
      return r
    }
    // One drain per context: two operations sharing one context object get none.
    drains.set(context, drains.has(context) ? NO_DRAIN : drain)
  }
  const mapped: AsyncGenerator<ExecutionResult> = {
    next() {
      if (kept) {
        const k = kept
        kept = undefined
        return k()
      }
      return it.next().then(step, failed)
    },
    async return() {
      ended = true
      await it.return?.()
      return DONE
    },
    async throw(error: unknown) {
      ended = true
      await it.return?.()
      throw error
    },
    [Symbol.asyncIterator]() {
      return mapped
    },
  } as AsyncGenerator<ExecutionResult>
  return mapped
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown } | null)?.then === 'function'
}

/**
 * graphql-ws serialises every `next` message for each subscriber: with a shared result that is the
 * same JSON.stringify of the same object N times (a batch of 1,000 events for 1,000 clients: 1,000
 * stringifies of ~100 KB). A result object is serialised once here (`payloadOf`), and a large
 * payload goes out as the middle fragment of a fragmented text message, from one Buffer shared by
 * every socket, so 1,000 clients do not hold 1,000 copies of it.
 *
 * `onOperation` puts `directFrames` between graphql-ws and the operation's (envelop-wrapped, so
 * masked and guarded) results: it writes each result's `next` frame itself, with the bytes
 * graphql-ws would send, and hands graphql-ws only what is not an object (its own error path) and
 * the end. That skips, per delivery, graphql-ws's `next` (a copy of the result, an `onNext` await,
 * validation, JSON.stringify with a replacer) and its promise per send.
 *
 * graphql-ws's own sends of a `next` (a socket without flow control) still get the shared JSON:
 * `onNext` hands graphql-ws the result object itself, the message replacer stands a numbered
 * placeholder in for its payload (so JSON.stringify does not descend into it) and `attach` swaps
 * the placeholder for the cached JSON on the socket's send. graphql-ws stringifies and sends in one
 * synchronous step, so the placeholder a send sees is always the one the replacer just made.
 */
export function sharedNextFrames(fragmentBytes = 16 * 1024) {
  const payloads = new WeakMap<object, Payload>()
  const payloadOf = (value: object): Payload => {
    let p = payloads.get(value)
    if (p === undefined) {
      const s = JSON.stringify(value)
      const text = s.length >= fragmentBytes ? Buffer.from(s) : s
      payloads.set(value, (p = { text, bytes: typeof text === 'string' ? Buffer.byteLength(text) : text.length }))
    }
    return p
  }
  let counter = 0
  let pending: { suffix: string; text: string | Buffer } | undefined
  return {
    onNext: (_ctx: unknown, _id: string, _payload: unknown, _args: unknown, result: unknown) => result as never,
    onOperation: (ctx: { extra: unknown }, id: string, _payload: unknown, args: { contextValue?: unknown }, result: unknown) => {
      const socket = (ctx.extra as { socket?: WebSocket }).socket
      const flow = socket && flowOf(socket)
      if (!flow || !isAsyncIterable(result)) return undefined
      return directFrames(result, id, flow, payloadOf, (args.contextValue && typeof args.contextValue === 'object' ? drains.get(args.contextValue) : undefined)) as never
    },
    jsonMessageReplacer(this: unknown, key: string, value: unknown): unknown {
      if (key !== 'payload' || !value || typeof value !== 'object' || (this as { type?: unknown }).type !== 'next') return value
      const { text } = payloadOf(value)
      const placeholder = `\u0001conveyor-payload:${++counter}\u0001`
      pending = { suffix: `"payload":${JSON.stringify(placeholder)}}`, text }
      return placeholder
    },
    attach(wss: WebSocketServer): void {
      wss.on('connection', (socket) => {
        const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void
        socket.send = ((data: unknown, ...rest: unknown[]) => {
          const p = pending
          pending = undefined
          if (!p || typeof data !== 'string' || !data.endsWith(p.suffix)) return send(data, ...rest)
          const head = `${data.slice(0, -p.suffix.length)}"payload":`
          if (typeof p.text === 'string') return send(`${head}${p.text}}`, ...rest)
          // One text message in three fragments; the callback (graphql-ws waits on it) goes with the last.
          const cb = rest.find((x) => typeof x === 'function')
          send(head, FRAGMENT)
          send(p.text, FRAGMENT)
          send('}', LAST_FRAGMENT, ...(cb ? [cb] : []))
        }) as typeof socket.send
      })
    },
  }
}

interface Payload {
  text: string | Buffer
  bytes: number
}

const FRAGMENT = { binary: false, fin: false }
const LAST_FRAGMENT = { binary: false, fin: true }

/** Results `directFrames` sends from a `Drain` between two awaited ones: other subscriptions get their turn in between. */
const DRAIN_RUN = 16

/**
 * `results` for graphql-ws's `for await`, with every object result already sent as a `next` frame
 * of subscription `id` (graphql-ws's bytes: `{"id":…,"type":"next","payload":…}`, payload = the
 * result, as `onNext` makes it). What is left to graphql-ws: a result that is not an object, the
 * end, an error. Like graphql-ws, it sends nothing to a socket that is not open, and waits for a
 * frame's write when the flow control says so (a failed write is thrown, as graphql-ws's send would).
 * After each awaited result it also sends what the subscription's `Drain` has at hand, without a
 * promise per result.
 */
function directFrames(results: AsyncIterable<unknown>, id: string, flow: SocketFlow, payloadOf: (value: object) => Payload, drain: Drain | undefined): AsyncIterableIterator<unknown> {
  const it = results[Symbol.asyncIterator]()
  const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`
  const prefixBytes = Buffer.byteLength(prefix)
  let stopped = false
  // The write callback and the wait's executor, made once: `written` settles the current wait, or
  // records an outcome that came before it.
  let resolveWrite: (() => void) | undefined
  let rejectWrite: ((error: Error) => void) | undefined
  let early: { error?: Error } | undefined
  const written = (error?: Error): void => {
    const resolve = resolveWrite
    const reject = rejectWrite
    resolveWrite = rejectWrite = undefined
    if (!resolve) early = { error }
    else if (error) reject!(error)
    else resolve()
  }
  const executor = (resolve: () => void, reject: (error: Error) => void): void => {
    const e = early
    early = undefined
    if (!e) {
      resolveWrite = resolve
      rejectWrite = reject
    } else if (e.error) reject(e.error)
    else resolve()
  }
  /** True: the caller may send the next frame at once. */
  const send = (result: object): boolean => {
    const p = payloadOf(result)
    if (typeof p.text === 'string') return flow.send(prefix + p.text + '}', prefixBytes + p.bytes + 1, undefined, written)
    // One text message in three fragments; only the last one's write is waited for.
    flow.send(prefix, prefixBytes, FRAGMENT, undefined)
    flow.send(p.text, p.bytes, FRAGMENT, undefined)
    return flow.send('}', 1, LAST_FRAGMENT, written)
  }
  const self: AsyncIterableIterator<unknown> = {
    async next() {
      for (;;) {
        const step = await it.next()
        if (stopped) return DONE
        if (step.done) return step
        const result = step.value
        if (!result || typeof result !== 'object') return step
        if (drain && !drain.passedThrough && result === drain.last && !(result as ExecutionResult).errors) drain.passedThrough = true
        if (!flow.open) continue
        if (!send(result)) await new Promise<void>(executor)
        for (let n = 0; drain && n < DRAIN_RUN && !stopped && flow.open; n++) {
          const more = drain.take()
          if (more === undefined) break
          if (!send(more)) await new Promise<void>(executor)
        }
        if (stopped) return DONE
      }
    },
    async return() {
      stopped = true
      await it.return?.()
      return DONE
    },
    async throw(error: unknown) {
      stopped = true
      await it.return?.()
      throw error
    },
    [Symbol.asyncIterator]() {
      return self
    },
  }
  return self
}
