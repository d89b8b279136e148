import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Hang bounds, not speed expectations: on a loaded CI machine (2 cores, load 4–13) a test that
    // takes 2 s alone can take 20. Tests wait on conditions (test/support/barrier.ts `until`), and
    // those that spawn processes set their own, longer limits.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Crash tests spawn child processes; keep files in separate processes.
    pool: 'forks',
  },
})
