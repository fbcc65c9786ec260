// Bundles src/app.ts (with the SDK it imports) into dist/app.js, which index.html loads.
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;

await build({
  entryPoints: [`${here}src/app.ts`],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  sourcemap: true,
  outfile: `${here}dist/app.js`,
  logLevel: 'warning',
  // Duet's SDK loads `ws` only under Node, never in a browser.
  external: ['ws'],
});
