#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from './config/config.js'
import { parseTtl, signToken } from './auth/tokens.js'

const USAGE = `usage: cat-presence token --aud admin|client --sub ID [--client-id ID] [--name N] [--company C] [--role admin|staff] [--clients ID,ID,…] [--ttl 1h]

Mints a token signed with the first secret of CAT_SECRET (which must be set).`

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`)
  process.exit(2)
}

export function run(argv: string[], env: NodeJS.ProcessEnv): string {
  const [command, ...rest] = argv
  if (command !== 'token') fail(command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`)
  let values
  try {
    ;({ values } = parseArgs({
      args: rest,
      options: {
        aud: { type: 'string' },
        sub: { type: 'string' },
        'client-id': { type: 'string' },
        name: { type: 'string' },
        company: { type: 'string' },
        role: { type: 'string' },
        clients: { type: 'string' },
        ttl: { type: 'string', default: '1h' },
      },
      strict: true,
    }))
  } catch (error) {
    fail((error as Error).message)
  }
  if (values.aud !== 'admin' && values.aud !== 'client') fail('--aud must be admin or client')
  if (values.sub === undefined || values.sub === '') fail('--sub is required')
  if (values.aud === 'client' && (values['client-id'] === undefined || values['client-id'] === '')) fail('--client-id is required for a client token')
  if (values.role !== undefined && (values.aud !== 'admin' || (values.role !== 'admin' && values.role !== 'staff'))) fail('--role is admin or staff, for an admin token')
  if (values.clients !== undefined && values.aud !== 'admin') fail('--clients is for an admin token')
  // `--clients ""` is an empty list: the token sees no client.
  const clients = values.clients === undefined ? undefined : values.clients.split(',').map((id) => id.trim()).filter((id) => id !== '')
  let ttlS: number
  try {
    ttlS = parseTtl(values.ttl ?? '1h')
  } catch (error) {
    fail((error as Error).message)
  }
  if (env.CAT_SECRET === undefined || env.CAT_SECRET.trim() === '') {
    fail('CAT_SECRET is not set: the server makes up a random secret per start when it is unset, so set the same CAT_SECRET for both')
  }
  let secrets: readonly string[]
  try {
    secrets = loadConfig({ CAT_SECRET: env.CAT_SECRET }).secrets
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message)
    throw error
  }
  return signToken(
    { aud: values.aud, sub: values.sub, clientId: values['client-id'], name: values.name, company: values.company, role: values.role as 'admin' | 'staff' | undefined, clients, ttlS },
    secrets,
  )
}

process.stdout.write(`${run(process.argv.slice(2), process.env)}\n`)
