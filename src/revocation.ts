// Subscriptions end when their token is revoked. A subscription checks its token when it starts
// (access.ts); after that it may run for days, so every open subscription is registered here by its
// token, and one timer checks each distinct token again (a revoke from `conveyor token revoke` is a
// row written by another process: there is nothing to listen to). A revoked token's subscriptions
// get one last result, the UNAUTHENTICATED error, and complete, over graphql-ws and SSE alike.
import type { ExecutionResult } from 'graphql'
import type { TokenStore } from './engine/tokens.ts'

/** How often open subscriptions' tokens are checked again, by default. */
export const DEFAULT_RECHECK_MS = 1000

type Result = ExecutionResult

export class RevocationWatch {
  private readonly open = new Map<string, Set<(final: Result) => void>>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly tokens: TokenStore,
    private readonly revokedResult: () => Result,
    private readonly intervalMs = DEFAULT_RECHECK_MS,
  ) {}

  /** The stream, ended with `revokedResult()` once `token` stops verifying. */
  guard<T extends Result>(token: string, source: AsyncIterable<T>): AsyncIterableIterator<T | Result> {
    const iterator = source[Symbol.asyncIterator]()
    let ended = false
    let final: Result | undefined
    let waiting: ((r: IteratorResult<T | Result>) => void) | undefined
    const stop = (result: Result) => {
      if (ended || final) return
      final = result
      this.remove(token, stop)
      void iterator.return?.()
      if (waiting) {
        const resolve = waiting
        waiting = undefined
        ended = true
        resolve({ value: result, done: false })
      }
    }
    this.add(token, stop)
    const finish = () => {
      ended = true
      this.remove(token, stop)
    }
    return {
      [Symbol.asyncIterator]() {
        return this
      },
      next: () => {
        if (ended) return Promise.resolve({ value: undefined, done: true })
        if (final) {
          ended = true
          return Promise.resolve({ value: final, done: false })
        }
        return new Promise((resolve, reject) => {
          waiting = resolve
          iterator.next().then(
            (r) => {
              if (waiting !== resolve) return // ended by a revocation meanwhile
              waiting = undefined
              if (r.done) finish()
              resolve(r)
            },
            (error) => {
              finish()
              reject(error)
            },
          )
        })
      },
      return: async (value?: unknown) => {
        finish()
        await iterator.return?.(value)
        return { value: undefined, done: true }
      },
      throw: async (error?: unknown) => {
        finish()
        if (iterator.throw) return iterator.throw(error)
        throw error
      },
    }
  }

  close(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private add(token: string, stop: (final: Result) => void): void {
    let set = this.open.get(token)
    if (!set) this.open.set(token, (set = new Set()))
    set.add(stop)
    // The timer runs only while something is watched, and never holds the process open.
    this.timer ??= setInterval(() => this.sweep(), this.intervalMs).unref()
  }

  private remove(token: string, stop: (final: Result) => void): void {
    const set = this.open.get(token)
    if (!set) return
    set.delete(stop)
    if (set.size === 0) this.open.delete(token)
    if (this.open.size === 0) this.close()
  }

  private sweep(): void {
    for (const [token, set] of [...this.open]) {
      let valid: boolean
      try {
        valid = this.tokens.verify(token) !== undefined
      } catch {
        continue // the database is closing or busy: check again next time
      }
      if (valid) continue
      for (const stop of [...set]) stop(this.revokedResult())
    }
  }
}
