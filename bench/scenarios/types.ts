/** One line of the results table: a measure, its value and the target it is held to. */
export interface Row {
  scenario: string
  measure: string
  /** As shown in the table. */
  value: string
  target: string
  /** What explains the value (CPU per request and the like): in latest.json and the log, not the table. */
  detail?: string
  /** undefined: reported, no target. */
  pass?: boolean
}

export interface ScenarioResult {
  name: string
  rows: Row[]
  /** Everything measured, for latest.json. */
  data: Record<string, unknown>
}

export interface RunOptions {
  quick: boolean
}
