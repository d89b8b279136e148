// Concurrency limits that hold across runs: the global worker pool, each run's maxParallel, each
// factory's and each action's pool. A step takes a slot of every pool it needs at once or none; a
// blocked step queues on the first full pool and moves on when a slot there frees.

export class Pool {
  inUse = 0
  readonly waiting: Waiter[] = []
  private head = 0
  constructor(readonly name: string, public limit: number) {}

  get free(): boolean {
    return this.inUse < this.limit
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

  pool(name: string, limit: number): Pool {
    let pool = this.pools.get(name)
    if (!pool) {
      pool = new Pool(name, limit)
      this.pools.set(name, pool)
    } else if (pool.limit !== limit) {
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
      return false
    }
    for (const p of waiter.pools) p.inUse++
    waiter.start()
    return true
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
  }
}
