// Vite builds the UI into ui/dist, which Tauri serves (tauri.conf.json:
// frontendDist "ui/dist", devUrl http://localhost:1420).
import { defineConfig } from 'vitest/config';

// Vite rewrites import.meta.dirname in the config to the folder of this file
// (ui/), whatever directory it is started from. Declared here rather than
// pulling Node's types into the browser code.
declare global {
  interface ImportMeta {
    dirname: string;
  }
}

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2021',
  },
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
  },
});
