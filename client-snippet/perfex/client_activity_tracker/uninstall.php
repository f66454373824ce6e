<?php

defined('BASEPATH') or exit('No direct script access allowed');

// Run when the module is uninstalled (Setup → Modules, once deactivated): Perfex includes this file
// itself; cat_uninstall_hook() includes it too. Removes every option install.php adds. Presence,
// activity and consent live in the presence server, which keeps them.
foreach (['cat_server_url', 'cat_secret', 'cat_webhook_secret', 'cat_webhook_notified'] as $cat_option) {
    delete_option($cat_option);
}
