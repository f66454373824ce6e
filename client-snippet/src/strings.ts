/**
 * The keys of every language file in client-snippet/lang/ (flat `{key: string}`).
 * The server injects them at serve time as `__CAT_L`, together with `version` (a hash of the
 * shown text, computed by the server) and `locale`; they are never bundled into the script.
 */
export type CatStringKey =
  | 'title' // banner heading; the dialog's accessible name
  | 'text' // the plain-language purpose line; the dialog's description
  | 'details' // the longer text behind "More details"
  | 'accept'
  | 'decline'
  | 'more' // disclosure button, collapsed
  | 'less' // disclosure button, expanded
  | 'controlOn' // persistent control while tracking is on
  | 'controlOff' // persistent control while tracking is off
  | 'controlLabel' // tooltip of the persistent control: what clicking it does

export const CAT_STRING_KEYS = [
  'title',
  'text',
  'details',
  'accept',
  'decline',
  'more',
  'less',
  'controlOn',
  'controlOff',
  'controlLabel',
] as const satisfies readonly CatStringKey[]

// Every key is listed: one added to CatStringKey but not to CAT_STRING_KEYS fails to compile.
type Unlisted = Exclude<CatStringKey, (typeof CAT_STRING_KEYS)[number]>
const _complete: [Unlisted] extends [never] ? true : Unlisted = true
void _complete

export type CatStrings = { readonly [K in CatStringKey]: string } & {
  /** Hash of the shown text: a new text asks again. */
  readonly version: string
  /** The language actually served, e.g. `de`. */
  readonly locale: string
}
