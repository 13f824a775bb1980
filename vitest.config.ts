import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // node:test files for the GPU machine (node --test dist/tests/gpu/).
    exclude: [...configDefaults.exclude, 'tests/gpu/**'],
    // Native addons and worker threads: one process per file.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['tests/helpers/setup.ts'],
  },
});
