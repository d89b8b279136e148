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
import type { WebSocketServer } from 'ws'

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
        return mapEvents(source, (payload) => {
          const slot = key === undefined ? undefined : cacheSlot(payload)
          if (!slot) return run(payload)
          let byGroup = results.get(slot.object)
          if (!byGroup) results.set(slot.object, (byGroup = new Map()))
          const k = key + slot.suffix
          let result = byGroup.get(k)
          if (result === undefined) byGroup.set(k, (result = run(payload)))
          return result
        }, (error) => {
          // As graphql-tools' subscribe does: an error of the source stream becomes a GraphQL error.
          const e = error instanceof Error ? error : new Error(String(error))
          return createGraphQLError(e.message, { originalError: e })
        })
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

/** `source` mapped through `map`, with return/throw passed on (graphql-ws ends a subscription with return()). */
function mapEvents(source: AsyncIterable<unknown>, map: (payload: unknown) => Result, mapError: (error: unknown) => unknown): AsyncGenerator<ExecutionResult> {
  const it = source[Symbol.asyncIterator]()
  const done = { done: true as const, value: undefined }
  const mapped: AsyncGenerator<ExecutionResult> = {
    async next() {
      let step: IteratorResult<unknown>
      try {
        step = await it.next()
      } catch (error) {
        throw mapError(error)
      }
      if (step.done) return done
      return { done: false, value: await map(step.value) }
    },
    async return() {
      await it.return?.()
      return done
    },
    async throw(error: unknown) {
      await it.return?.()
      throw error
    },
    [Symbol.asyncIterator]() {
      return mapped
    },
  } as AsyncGenerator<ExecutionResult>
  return mapped
}

/**
 * graphql-ws serialises every `next` message for each subscriber: with a shared result that is the
 * same JSON.stringify of the same object N times (a batch of 1,000 events for 1,000 clients: 1,000
 * stringifies of ~100 KB). These hooks serialise a result object once: `onNext` hands graphql-ws the
 * result object itself, the message replacer stands a numbered placeholder in for its payload (so
 * JSON.stringify does not descend into it) and `attach` swaps the placeholder for the cached JSON
 * on the socket's send. graphql-ws stringifies and sends in one synchronous step, so the
 * placeholder a send sees is always the one the replacer just made. A large payload goes out as
 * the middle fragment of a fragmented text message, from one Buffer shared by every socket, so
 * 1,000 clients do not hold 1,000 copies of it.
 */
export function sharedNextFrames(fragmentBytes = 16 * 1024) {
  const json = new WeakMap<object, string | Buffer>()
  let counter = 0
  let pending: { suffix: string; text: string | Buffer } | undefined
  return {
    onNext: (_ctx: unknown, _id: string, _payload: unknown, _args: unknown, result: unknown) => result as never,
    jsonMessageReplacer(this: unknown, key: string, value: unknown): unknown {
      if (key !== 'payload' || !value || typeof value !== 'object' || (this as { type?: unknown }).type !== 'next') return value
      let text = json.get(value)
      if (text === undefined) {
        const s = JSON.stringify(value)
        json.set(value, (text = s.length >= fragmentBytes ? Buffer.from(s) : s))
      }
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
          send(head, { binary: false, fin: false })
          send(p.text, { binary: false, fin: false })
          send('}', { binary: false, fin: true }, ...(cb ? [cb] : []))
        }) as typeof socket.send
      })
    },
  }
}
