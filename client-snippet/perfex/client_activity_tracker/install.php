<?php

defined('BASEPATH') or exit('No direct script access allowed');

// Run on activation. add_option() keeps a value that is already there, so re-activating keeps
// the settings. The module stores nothing else: presence and activity live in the presence server.
add_option('cat_server_url', '');
add_option('cat_secret', '');
// Webhooks: the secret (else the environment's CAT_WEBHOOK_SECRET), and when each contact last notified (throttle).
add_option('cat_webhook_secret', '');
add_option('cat_webhook_notified', '{}', 0);
