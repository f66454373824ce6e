import { defineConfig } from 'drizzle-kit'

// `npm run db:generate` writes a new migration under drizzle/mysql from the schema's changes.
// The app applies them at start (src/activity/database.ts); no credentials are needed here.
export default defineConfig({
  dialect: 'mysql',
  schema: './src/activity/schema-mysql.ts',
  out: './drizzle/mysql',
})
