// Builds the page into dist/: index.html, app.js and app.css, exactly the files
// crates/duet-server/src/demo.rs embeds. The output is committed (cargo build needs no npm);
// `npm run check` rebuilds and fails if it differs from the committed files.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
mkdirSync(`${here}dist`, { recursive: true });

await build({
  entryPoints: { app: `${here}src/main.ts` },
  bundle: true,
  format: 'iife',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  charset: 'utf8',
  outdir: `${here}dist`,
  logLevel: 'warning',
  // The SDK loads `ws` only under Node, never in a browser.
  external: ['ws'],
});
copyFileSync(`${here}src/index.html`, `${here}dist/index.html`);
