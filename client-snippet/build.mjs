// Bundles client-snippet/src into client-snippet/dist/snippet.js: one minified IIFE, no
// sourcemap. The strings are not bundled: the server wraps the file at serve time as
// `(function(){var __CAT_L=<JSON>;<snippet.js>})();`, so `__CAT_L` must stay a free identifier.
// The file is replaced atomically, so tests that build it concurrently never read half of it.
import { build } from 'esbuild'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const outfile = join(here, 'dist', 'snippet.js')

const result = await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile,
  write: false,
  bundle: true,
  format: 'iife',
  target: 'es2018',
  platform: 'browser',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  // No "use strict" prologue: inside the server's wrapper it would come after code and do nothing.
  tsconfigRaw: { compilerOptions: { alwaysStrict: false } },
})

const code = result.outputFiles[0].text
if (!/\b__CAT_L\b/.test(code)) throw new Error('client-snippet: the bundle does not reference __CAT_L (the strings the server injects)')
await mkdir(dirname(outfile), { recursive: true })
const temporary = `${outfile}.${process.pid}.tmp`
await writeFile(temporary, code)
await rename(temporary, outfile)
