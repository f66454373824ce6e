<?php

/**
 * Runs the module's webhook receiver (libraries/CatWebhook.php) outside Perfex, against
 * stand-ins for the Perfex functions it calls, for test/perfex/perfex-webhook.test.ts.
 *
 *   php webhook.php SCENARIO_JSON
 *
 * SCENARIO_JSON: {"options": {name: value}, "rawOptions": {name: value}, "admins": {clientId: [staffId, …]},
 *                 "requests": [{"header": string|null, "body": string, "now": unix seconds}]}
 * "options" are as an admin enters them (the webhook secret is stored encrypted, as the settings
 * page stores it); "rawOptions" go into the options table as they are.
 * Prints {"responses": [[status, body]…], "notifications": [add_notification's arguments…],
 * "pushed": [[staff ids]…], "descriptions": [the text Perfex would show…], "options": {…}}.
 */

if (PHP_SAPI !== 'cli') {
    http_response_code(404);
    exit(1);
}

define('BASEPATH', __DIR__);

$scenario = json_decode($argv[1] ?? '', true);
if (!is_array($scenario)) {
    fwrite(STDERR, "usage: php webhook.php SCENARIO_JSON\n");
    exit(2);
}
$GLOBALS['cat_test'] = ['options' => $scenario['options'] ?? [], 'notifications' => [], 'pushed' => []];

require __DIR__ . '/lang.php';
require __DIR__ . '/encryption.php';

function &get_instance()
{
    static $ci = null;
    if ($ci === null) {
        $ci             = new stdClass();
        $ci->encryption = new CatTestEncryption();
    }

    return $ci;
}

function log_message($level, $message)
{
    fwrite(STDERR, "log {$level}: {$message}\n");
}

function get_option($name)
{
    return $GLOBALS['cat_test']['options'][$name] ?? '';
}

function update_option($name, $value)
{
    $GLOBALS['cat_test']['options'][$name] = $value;

    return true;
}

function add_notification($values)
{
    $GLOBALS['cat_test']['notifications'][] = $values;

    return true;
}

function pusher_trigger_notification($users)
{
    $GLOBALS['cat_test']['pushed'][] = $users;
}

final class CatTestClients
{
    private $admins;

    public function __construct(array $admins)
    {
        $this->admins = $admins;
    }

    /** As Perfex's: the rows of customer_admins for the customer. */
    public function get_admins($id)
    {
        return array_map(function ($staff) use ($id) {
            return ['staff_id' => (string) $staff, 'customer_id' => (string) $id, 'date_assigned' => '2026-01-01 00:00:00'];
        }, $this->admins[$id] ?? []);
    }
}

require __DIR__ . '/../client_activity_tracker/libraries/CatWebhook.php';

// The webhook secret as the settings page stores it (encrypted); "rawOptions" go in as they are.
foreach (CatSecrets::OPTIONS as $option) {
    if (isset($GLOBALS['cat_test']['options'][$option])) {
        CatSecrets::store($option, $GLOBALS['cat_test']['options'][$option]);
    }
}
$GLOBALS['cat_test']['options'] = array_merge($GLOBALS['cat_test']['options'], $scenario['rawOptions'] ?? []);

$clients   = new CatTestClients($scenario['admins'] ?? []);
$responses = [];
foreach ($scenario['requests'] ?? [] as $request) {
    $responses[] = CatWebhook::handle(cat_webhook_secret(), $request['header'] ?? null, $request['body'] ?? '', (int) $request['now'], $clients);
}
// What Perfex's notification list shows: _l(description, unserialize(additional_data)), unescaped.
$descriptions = array_map(function ($n) {
    return _l($n['description'], unserialize($n['additional_data']));
}, $GLOBALS['cat_test']['notifications']);

echo json_encode([
    'responses'     => $responses,
    'notifications' => $GLOBALS['cat_test']['notifications'],
    'pushed'        => $GLOBALS['cat_test']['pushed'],
    'descriptions'  => $descriptions,
    'options'       => $GLOBALS['cat_test']['options'],
]);
