// Limits that hold across runs: the global worker pool, each run's maxParallel, each factory's and
// each action's pool, and the named pools of the config (`gpu: { concurrency: 2 }`, `openai:
// { ratePerSecond: 5 }`). A step takes a slot of every pool it needs at once or none; a blocked step
// queues on the first full pool and moves on when a slot (or, for a rate, a token) frees.

export interface PoolLimits {
  concurrency?: number
  ratePerSecond?: number
}

export class Pool {
  inUse = 0
  readonly waiting: Waiter[] = []
  private head = 0
  /** Token bucket for a rate limit: holds up to one second's worth, refilled continuously. */
  private tokens = 0
  private refilledAt = Date.now()
  refillTimer: NodeJS.Timeout | undefined

  constructor(readonly name: string, public limit: number, public ratePerSecond?: number) {
    this.tokens = this.capacity
  }

  private get capacity(): number {
    return Math.max(1, this.ratePerSecond ?? 0)
  }

  private refill(): void {
    if (!this.ratePerSecond) return
    const now = Date.now()
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) / 1000) * this.ratePerSecond)
    this.refilledAt = now
  }

  get free(): boolean {
    if (this.inUse >= this.limit) return false
    if (!this.ratePerSecond) return true
    this.refill()
    return this.tokens >= 1
  }

  /** Milliseconds until the next token, when a rate is what blocks. */
  get msUntilToken(): number {
    if (!this.ratePerSecond || this.inUse >= this.limit) return 0
    this.refill()
    return Math.max(1, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000))
  }

  take(): void {
    this.inUse++
    if (this.ratePerSecond) this.tokens -= 1
  }

  enqueue(waiter: Waiter): void {
    this.waiting.push(waiter)
  }

  shift(): Waiter | undefined {
    if (this.head >= this.waiting.length) return undefined
    const w = this.waiting[this.head]
    this.waiting[this.head++] = undefined as never
    // Compact now and then so a long queue does not keep its drained prefix.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head)
      this.head = 0
    }
    return w
  }

  get queued(): number {
    return this.waiting.length - this.head
  }
}

export interface Waiter {
  pools: Pool[]
  start(): void
  /** A waiter that no longer wants its slot (cancelled run) is dropped when reached. */
  cancelled?: boolean
}

export class PoolSet {
  private readonly pools = new Map<string, Pool>()

  pool(name: string, limit: number, ratePerSecond?: number): Pool {
    let pool = this.pools.get(name)
    if (!pool) {
      pool = new Pool(name, limit, ratePerSecond)
      this.pools.set(name, pool)
    } else if (pool.limit !== limit || pool.ratePerSecond !== ratePerSecond) {
      pool.ratePerSecond = ratePerSecond
      // A factory registered again with another concurrency: the new limit applies from now on
      // (queued waiters move on at the next release, which drains up to the new limit).
      pool.limit = limit
    }
    return pool
  }

  drop(name: string): void {
    const pool = this.pools.get(name)
    if (pool && pool.inUse === 0 && pool.queued === 0) this.pools.delete(name)
  }

  list(): Pool[] {
    return [...this.pools.values()]
  }

  /** Starts the waiter now if every pool has a slot, else queues it on the first full one. */
  acquire(waiter: Waiter): boolean {
    if (waiter.cancelled) return false
    const full = waiter.pools.find((p) => !p.free)
    if (full) {
      full.enqueue(waiter)
      this.whenTokenDue(full)
      return false
    }
    for (const p of waiter.pools) p.take()
    waiter.start()
    return true
  }

  /** A pool blocked only by its rate gets drained again when its next token is due. */
  private whenTokenDue(pool: Pool): void {
    const ms = pool.msUntilToken
    if (ms <= 0 || pool.refillTimer) return
    pool.refillTimer = setTimeout(() => {
      pool.refillTimer = undefined
      this.drain(pool)
    }, ms)
  }

  release(pools: Pool[]): void {
    for (const p of pools) p.inUse--
    for (const p of pools) this.drain(p)
  }

  /** Hands freed slots of `pool` to its queue. */
  drain(pool: Pool): void {
    while (pool.free) {
      const next = pool.shift()
      if (!next) return
      this.acquire(next)
    }
    if (pool.queued > 0) this.whenTokenDue(pool)
  }
}
