// One minified browser IIFE from a TypeScript entry, with no sourcemap and no dependencies,
// written atomically (tests that build concurrently never read half a file). Used by
// client-snippet/build.mjs and dashboard/build.mjs.
import { build } from 'esbuild'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * @param {{ entry: string, outfile: string, target: string, check: (code: string) => string | undefined, tsconfigRaw?: object }} options
 *   `check` returns an error message when the bundle is not what the server expects.
 */
export async function bundleBrowser({ entry, outfile, target, check, tsconfigRaw }) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    write: false,
    bundle: true,
    format: 'iife',
    target,
    platform: 'browser',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    charset: 'utf8',
    logLevel: 'warning',
    ...(tsconfigRaw === undefined ? {} : { tsconfigRaw }),
  })
  const code = result.outputFiles[0].text
  const problem = check(code)
  if (problem !== undefined) throw new Error(problem)
  await mkdir(dirname(outfile), { recursive: true })
  const temporary = `${outfile}.${process.pid}.tmp`
  await writeFile(temporary, code)
  await rename(temporary, outfile)
}
