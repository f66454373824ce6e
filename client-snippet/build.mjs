// Bundles client-snippet/src into client-snippet/dist/snippet.js. The strings are not bundled:
// the server wraps the file at serve time as `(function(){var __CAT_L=<JSON>;<snippet.js>})();`,
// so `__CAT_L` must stay a free identifier.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleBrowser } from '../scripts/bundle-browser.mjs'

const here = dirname(fileURLToPath(import.meta.url))
await bundleBrowser({
  entry: join(here, 'src', 'main.ts'),
  outfile: join(here, 'dist', 'snippet.js'),
  target: 'es2018',
  // No "use strict" prologue: inside the server's wrapper it would come after code and do nothing.
  tsconfigRaw: { compilerOptions: { alwaysStrict: false } },
  check: (code) => (/\b__CAT_L\b/.test(code) ? undefined : 'client-snippet: the bundle does not reference __CAT_L (the strings the server injects)'),
})
