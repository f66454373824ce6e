// Bundles dashboard/src into dashboard/dist/widget.js: the <cat-online-clients> custom element,
// every language of dashboard/lang bundled in. The server (src/routes/dashboard.ts) reads it
// once at start.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleBrowser } from '../scripts/bundle-browser.mjs'

const here = dirname(fileURLToPath(import.meta.url))
await bundleBrowser({
  entry: join(here, 'src', 'main.ts'),
  outfile: join(here, 'dist', 'widget.js'),
  target: 'es2020',
  check: (code) => (code.includes('cat-online-clients') ? undefined : 'dashboard: the bundle does not define <cat-online-clients>'),
})
