import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against the sources: one implementation, no stale build.
    alias: { '@driftwood/tasks': path.resolve(import.meta.dirname, 'tasks/src/index.ts') },
  },
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    // Integration and e2e tests share one MLflow server and spawn heavy processes: keep it calm on 2 cores.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 900_000,
    teardownTimeout: 60_000,
  },
});
