import { defineConfig } from 'drizzle-kit'

// `npm run db:generate` writes a new migration under drizzle/sqlite from the schema's changes.
// The app applies them at start (src/activity/database.ts).
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/activity/schema-sqlite.ts',
  out: './drizzle/sqlite',
})
