import path from 'node:path';
import { defineConfig } from 'vite';

// The API serves the build under /ui (serving/src/plugins/dashboard.ts); every asset is bundled,
// nothing comes from a CDN.
export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  logLevel: 'warn',
  build: {
    outDir: path.join(import.meta.dirname, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
});
