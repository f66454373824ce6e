import { eq } from 'drizzle-orm'
import type { ActivityStore } from '../activity-store.js'
import { upsert, type StoreContext } from './store-context.js'

/**
 * The install's own documents (cat_install_state): small JSON values under a name, such as the
 * live settings and the licence lease, shared by every instance through the database.
 */
export function storeInstallState({ dialect, db, tables }: StoreContext): Pick<ActivityStore, 'readInstallState' | 'writeInstallState'> {
  const { installState } = tables
  return {
    async readInstallState(name) {
      const [row] = await db.select().from(installState).where(eq(installState.name, name)).limit(1)
      return row === undefined ? undefined : { value: row.value, updatedAt: row.updatedAt }
    },
    async writeInstallState(name, value, updatedAt) {
      await upsert(dialect, db, installState, 'name', [{ name, value, updatedAt }])
    },
  }
}
