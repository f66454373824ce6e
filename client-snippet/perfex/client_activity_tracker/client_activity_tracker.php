<?php

defined('BASEPATH') or exit('No direct script access allowed');

/*
Module Name: Client Activity Tracker
Description: Shows staff which customer contacts are on the customers area right now (after their consent), live on the admin dashboard, through the Client Activity Tracker presence server.
Version: 2.1.0
Requires at least: 3.0.*
Author: Client Activity Tracker
*/

define('CAT_MODULE_NAME', 'client_activity_tracker');
/** Lifetime of the token embedded in a customers-area page: a tab left open longer stops reporting until reloaded. */
define('CAT_CLIENT_TOKEN_TTL', 8 * 3600);
/** Lifetime of an admin token; the dashboard widget fetches a fresh one from the module when it needs one. */
define('CAT_ADMIN_TOKEN_TTL', 3600);

require_once __DIR__ . '/libraries/CatTokens.php';
require_once __DIR__ . '/libraries/CatSecrets.php';

register_activation_hook(CAT_MODULE_NAME, 'cat_activation_hook');
register_uninstall_hook(CAT_MODULE_NAME, 'cat_uninstall_hook');
register_language_files(CAT_MODULE_NAME, [CAT_MODULE_NAME]);

hooks()->add_action('admin_init', 'cat_admin_init');
// Themes print app_customers_head in <head> and app_customers_footer at the end of index.php;
// pages that bring their own layout (Client Portal Builder pages) may have only the head, or
// call cat_consent_snippet() themselves. The snippet is printed once, wherever it comes first.
hooks()->add_action('app_customers_head', 'cat_customers_snippet');
hooks()->add_action('app_customers_footer', 'cat_customers_snippet');
hooks()->add_filter('get_dashboard_widgets', 'cat_dashboard_widgets');
hooks()->add_filter('module_' . CAT_MODULE_NAME . '_action_links', 'cat_module_action_links');

function cat_activation_hook()
{
    require_once __DIR__ . '/install.php';
}

/**
 * Removes the module's options. Perfex 3.1.6 uninstalls only a deactivated module, whose init file
 * it no longer loads, and it includes the module's uninstall.php when there is one instead of
 * firing this hook; so uninstall.php does the work, and this hook runs the same file for anything
 * that fires uninstall_client_activity_tracker_module with the module loaded.
 */
function cat_uninstall_hook()
{
    require_once __DIR__ . '/uninstall.php';
}

/** Settings link in Setup, and the staff permission that gates the widget and admin tokens. */
function cat_admin_init()
{
    $CI = &get_instance();

    if (function_exists('register_staff_capabilities')) {
        register_staff_capabilities(CAT_MODULE_NAME, [
            'capabilities' => ['view' => _l('permission_view') . ' (' . _l('permission_global') . ')'],
        ], _l('cat_module_name'));
    }

    if (is_admin() && isset($CI->app_menu)) {
        $CI->app_menu->add_setup_menu_item(CAT_MODULE_NAME, [
            'href'     => admin_url(CAT_MODULE_NAME . '/settings'),
            'name'     => _l('cat_module_name'),
            'position' => 65,
        ]);
    }
}

function cat_module_action_links($actions)
{
    $actions[] = '<a href="' . htmlspecialchars(admin_url(CAT_MODULE_NAME . '/settings'), ENT_QUOTES, 'UTF-8') . '">' . htmlspecialchars(_l('settings'), ENT_QUOTES, 'UTF-8') . '</a>';

    return $actions;
}

/** Staff who may see who is online: admins, and staff with the module's "view" permission. */
function cat_staff_can_view()
{
    if (!is_staff_logged_in()) {
        return false;
    }
    if (is_admin()) {
        return true;
    }

    return function_exists('staff_can') && staff_can('view', CAT_MODULE_NAME);
}

/** The admin token's role for the logged-in staff member: Perfex admins may change the server's settings, other staff only watch. */
function cat_staff_role()
{
    return is_admin() ? 'admin' : 'staff';
}

/**
 * The customers the logged-in staff member sees, by Perfex's own rule (controllers/admin/Clients.php,
 * models/Misc_model.php): null for admins and staff with staff_can('view', 'customers'), who see
 * every customer; else the ids of the customers that list them in customer_admins, as strings
 * (none assigned: an empty array, and they see nobody). Read from the table by staff_id: core has
 * no helper that lists them, and Clients_model::get_staff_members_that_can_access_customer()
 * compares customer_id with a literal '.$id.' and matches nobody.
 *
 * Nothing in Perfex fires when assignments change, so this is read when an admin token is minted;
 * the token's lifetime (CAT_ADMIN_TOKEN_TTL) bounds how long a removed assignment still shows.
 */
function cat_staff_clients()
{
    if (is_admin() || staff_can('view', 'customers')) {
        return null;
    }
    $CI   = &get_instance();
    $rows = $CI->db->select('customer_id')
        ->where('staff_id', get_staff_user_id())
        ->get(db_prefix() . 'customer_admins')
        ->result_array();
    $ids = [];
    foreach ($rows as $row) {
        $ids[(string) $row['customer_id']] = true;
    }

    return array_map('strval', array_keys($ids));
}

/**
 * An admin token for the logged-in staff member: their role, and the customers they see.
 *
 * @throws InvalidArgumentException when no usable secret is configured
 */
function cat_staff_admin_token()
{
    $staffId = get_staff_user_id();

    return cat_tokens()->adminToken((string) $staffId, get_staff_full_name($staffId), CAT_ADMIN_TOKEN_TTL, cat_staff_role(), cat_staff_clients());
}

/**
 * The presence server's dashboard with its settings panel open, for a Perfex admin:
 * `SERVER/admin#token=ADMIN_JWT&panel=settings` (the token in the fragment, never sent to a
 * server); '' when the module is not configured.
 *
 * @throws InvalidArgumentException when no usable secret is configured
 */
function cat_dashboard_settings_url($staffId, $name)
{
    $server = cat_server_url();
    if ($server === '') {
        return '';
    }
    $token = cat_tokens()->adminToken((string) $staffId, $name, CAT_ADMIN_TOKEN_TTL, 'admin');

    return $server . '/admin#token=' . rawurlencode($token) . '&panel=settings';
}

/** The presence server's base URL (setting, else the environment's CAT_SERVER_URL), without a trailing slash; '' when unset or not http(s). */
function cat_server_url()
{
    $url = trim((string) get_option('cat_server_url'));
    if ($url === '') {
        $url = trim((string) getenv('CAT_SERVER_URL'));
    }
    $url = rtrim($url, '/');

    return cat_valid_server_url($url) ? $url : '';
}

function cat_valid_server_url($url)
{
    if ($url === '' || filter_var($url, FILTER_VALIDATE_URL) === false) {
        return false;
    }
    $parts = parse_url($url);

    return is_array($parts)
        && in_array(strtolower($parts['scheme'] ?? ''), ['http', 'https'], true)
        && !isset($parts['query'])
        && !isset($parts['fragment'])
        && !isset($parts['user']);
}

/** CAT_SECRET: the module setting (stored encrypted), else the environment. May be a comma list; CatTokens signs with the first. */
function cat_secret()
{
    $secret = CatSecrets::read('cat_secret');
    if ($secret === '') {
        $secret = trim((string) getenv('CAT_SECRET'));
    }

    return $secret;
}

/** Where the webhook secret comes from, for the settings page: 'option', 'env' or ''. */
function cat_webhook_secret_source()
{
    if (CatSecrets::read('cat_webhook_secret') !== '') {
        return 'option';
    }

    return trim((string) getenv('CAT_WEBHOOK_SECRET')) !== '' ? 'env' : '';
}

/** Where the secret comes from, for the settings page: 'option', 'env' or ''. */
function cat_secret_source()
{
    if (CatSecrets::read('cat_secret') !== '') {
        return 'option';
    }

    return trim((string) getenv('CAT_SECRET')) !== '' ? 'env' : '';
}

/** @throws InvalidArgumentException when no usable secret is configured */
function cat_tokens()
{
    return new CatTokens(cat_secret());
}

function cat_contact_name($contactId)
{
    if (function_exists('get_contact_full_name')) {
        return trim((string) get_contact_full_name($contactId));
    }
    $CI  = &get_instance();
    $row = $CI->db->select('firstname, lastname')->where('id', $contactId)->get(db_prefix() . 'contacts')->row();

    return $row ? trim($row->firstname . ' ' . $row->lastname) : '';
}

function cat_company_name($clientId)
{
    if (function_exists('get_company_name')) {
        return trim((string) get_company_name($clientId));
    }
    $CI  = &get_instance();
    $row = $CI->db->select('company')->where('userid', $clientId)->get(db_prefix() . 'clients')->row();

    return $row ? trim((string) $row->company) : '';
}

/** The snippet's language from the customers area's language (Perfex's folder name), when the server has it built in. */
function cat_snippet_lang()
{
    $language = isset($GLOBALS['language']) ? strtolower((string) $GLOBALS['language']) : '';
    $map      = [
        'english'       => 'en',
        'german'        => 'de',
        'french'        => 'fr',
        'spanish'       => 'es',
        'italian'       => 'it',
        'portuguese'    => 'pt',
        'portuguese_br' => 'pt',
        'dutch'         => 'nl',
        'polish'        => 'pl',
    ];

    return $map[$language] ?? '';
}

/** app_customers_head and app_customers_footer: prints the consent snippet, if this page has not had it yet. */
function cat_customers_snippet()
{
    echo cat_consent_snippet();
}

/**
 * The consent snippet for the logged-in contact, `<script src="…/clients/cat_consent_js" data-token="…"
 * defer></script>`, to print in a customers-area page; a page that is not rendered through the
 * theme (a custom or Client Portal Builder page) can `echo cat_consent_snippet();` anywhere in its
 * HTML. It gives the tag once per request, and '' after that (the hooks print it too, and one
 * page runs one snippet). Also '' for visitors, for staff logged in as a client, and while the
 * module is not configured; a problem is logged and never breaks the page.
 *
 * @return string
 */
function cat_consent_snippet()
{
    static $given = false;
    if ($given) {
        return '';
    }
    $html = cat_snippet_tag();
    if ($html !== '') {
        $given = true;
    }

    return $html;
}

/** The snippet's tag for the logged-in contact, or '' when there is none to give. */
function cat_snippet_tag()
{
    if (!function_exists('is_client_logged_in') || !is_client_logged_in()) {
        return '';
    }
    $CI = &get_instance();
    if (isset($CI->session) && $CI->session->userdata('logged_in_as_client')) {
        return ''; // staff using "Login as client": not the contact, and must not answer the consent banner for them
    }
    $server = cat_server_url();
    if ($server === '') {
        return '';
    }

    try {
        $contactId = get_contact_user_id();
        $clientId  = get_client_user_id();
        if (empty($contactId) || empty($clientId)) {
            return '';
        }
        $token = cat_tokens()->clientToken(
            (string) $contactId,
            (string) $clientId,
            cat_contact_name($contactId),
            cat_company_name($clientId),
            CAT_CLIENT_TOKEN_TTL
        );
    } catch (Throwable $e) {
        if (function_exists('log_message')) {
            log_message('error', 'client_activity_tracker: no snippet: ' . $e->getMessage());
        }

        return '';
    }

    $lang = cat_snippet_lang();
    $src  = $server . '/clients/cat_consent_js' . ($lang !== '' ? '?lang=' . $lang : '');

    return '<script src="' . htmlspecialchars($src, ENT_QUOTES, 'UTF-8') . '" data-token="'
        . htmlspecialchars($token, ENT_QUOTES, 'UTF-8') . '" defer></script>' . "\n";
}

/** get_dashboard_widgets: the live list of online contacts, for staff allowed to see it. */
function cat_dashboard_widgets($widgets)
{
    if (cat_staff_can_view()) {
        $widgets[] = [
            'path'      => CAT_MODULE_NAME . '/widgets/online_clients',
            'container' => 'top-12',
        ];
    }

    return $widgets;
}
