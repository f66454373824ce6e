/**
 * GET /admin/widget.js: defines <cat-online-clients> (once, also if the script is loaded twice).
 * Embedded as
 *   <script src="https://PRESENCE/admin/widget.js"></script>
 *   <cat-online-clients server="https://PRESENCE" token="ADMIN_JWT"></cat-online-clients>
 */
import { OnlineClientsElement } from './element'

if (!customElements.get('cat-online-clients')) customElements.define('cat-online-clients', OnlineClientsElement)
