// Bundles dashboard/src into dashboard/dist/widget.js: one minified IIFE that defines the
// <cat-online-clients> custom element, every language of dashboard/lang bundled in. No
// sourcemap, no dependencies. The server (src/routes/dashboard.ts) reads it once at start.
// The file is replaced atomically, so tests that build it concurrently never read half of it.
import { build } from 'esbuild'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const outfile = join(here, 'dist', 'widget.js')

const result = await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile,
  write: false,
  bundle: true,
  format: 'iife',
  target: 'es2020',
  platform: 'browser',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
})

const code = result.outputFiles[0].text
if (!code.includes('cat-online-clients')) throw new Error('dashboard: the bundle does not define <cat-online-clients>')
await mkdir(dirname(outfile), { recursive: true })
const temporary = `${outfile}.${process.pid}.tmp`
await writeFile(temporary, code)
await rename(temporary, outfile)
