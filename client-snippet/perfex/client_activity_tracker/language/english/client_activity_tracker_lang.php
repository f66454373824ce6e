<?php

defined('BASEPATH') or exit('No direct script access allowed');

$lang['cat_module_name']            = 'Client Activity Tracker';
$lang['cat_settings_title']         = 'Client Activity Tracker settings';
$lang['cat_server_url']             = 'Presence server URL';
$lang['cat_server_url_help']        = 'Where the Client Activity Tracker presence server answers, e.g. https://presence.example.com. Its CAT_ALLOWED_ORIGINS must include this CRM\'s origin (%s).';
$lang['cat_server_url_invalid']     = 'The presence server URL must be an http:// or https:// address without a query string.';
$lang['cat_secret']                 = 'Shared secret (CAT_SECRET)';
$lang['cat_secret_help']            = 'The same value as CAT_SECRET on the presence server (its first entry, if that is a comma list); at least 16 characters. Leave empty to keep the current one.';
$lang['cat_secret_too_short']       = 'The secret must be at least 16 characters long.';
$lang['cat_secret_source_option']   = 'A secret is set here.';
$lang['cat_secret_source_env']      = 'No secret is set here; CAT_SECRET from the web server\'s environment is used.';
$lang['cat_secret_source_none']     = 'No secret is set: no tokens can be signed and nothing is shown.';
$lang['cat_secret_clear']           = 'Remove the secret stored here (use the environment\'s CAT_SECRET instead)';
$lang['cat_webhook_secret']                = 'Webhook secret (CAT_WEBHOOK_SECRET)';
$lang['cat_webhook_secret_help']           = 'For the presence server\'s webhooks: the same value as its CAT_WEBHOOK_SECRET, with its CAT_WEBHOOK_URL set to %s; at least 16 characters. Leave empty to keep the current one.';
$lang['cat_webhook_secret_source_option']  = 'A webhook secret is set here.';
$lang['cat_webhook_secret_source_env']     = 'No webhook secret is set here; CAT_WEBHOOK_SECRET from the web server\'s environment is used.';
$lang['cat_webhook_secret_source_none']    = 'No webhook secret is set: webhooks are refused and no notifications are raised.';
$lang['cat_webhook_secret_clear']          = 'Remove the webhook secret stored here (use the environment\'s CAT_WEBHOOK_SECRET instead)';
$lang['cat_settings_saved']         = 'Settings saved.';
$lang['cat_widget_title']           = 'Clients online now';
$lang['cat_widget_not_configured']  = 'The Client Activity Tracker is not configured yet: set the presence server URL and the shared secret.';
$lang['cat_widget_open_settings']   = 'Open the settings';
$lang['cat_server_settings']        = 'Presence server settings';
$lang['cat_server_settings_help']   = 'The presence timeout, idle timeout, heartbeat interval, dashboard update window and activity retention are changed on the presence server\'s dashboard; every instance applies a change within 5 seconds.';
$lang['cat_server_settings_open']   = 'Open the presence server settings';
$lang['cat_server_settings_unset']  = 'Set the presence server URL above first.';
$lang['cat_notification_on_portal']            = '%s of %s is on the portal now';
$lang['cat_notification_on_portal_no_company'] = '%s is on the portal now';
