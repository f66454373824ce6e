<?php

defined('BASEPATH') or exit('No direct script access allowed');

require_once __DIR__ . '/libraries/CatSecrets.php';

// Run on activation. add_option() keeps a value that is already there, so re-activating keeps
// the settings. The module stores nothing else: presence and activity live in the presence server.
// uninstall.php removes these options.
add_option('cat_server_url', '');
// The secrets are stored encrypted (libraries/CatSecrets.php).
add_option('cat_secret', '');
// Webhooks: the secret (else the environment's CAT_WEBHOOK_SECRET), and when each contact last notified (throttle).
add_option('cat_webhook_secret', '');
add_option('cat_webhook_notified', '{}', 0);
// A secret version 2.0.0 stored in plain text (migrations/210_version_210.php does this on upgrade).
CatSecrets::encryptPlain();
