<?php

defined('BASEPATH') or exit('No direct script access allowed');

require_once __DIR__ . '/CatSecrets.php';

/**
 * The presence server's webhooks (its CAT_WEBHOOK_URL pointing at
 * https://crm.example.com/client_activity_tracker/cat_webhook): verifies CAT-Signature and, for
 * each `joined`, notifies the staff assigned to the contact's customer, at most once per contact
 * every THROTTLE_S seconds. Free of CodeIgniter so tests run it against stand-ins for Perfex's
 * functions (tests/webhook.php).
 */
final class CatWebhook
{
    /** A signature whose t is further than this from this server's clock is refused (a replay). */
    const TOLERANCE_S = 300;
    /** A contact raises one notification per this many seconds, however often it arrives. */
    const THROTTLE_S = 600;
    /** The option that remembers when each contact last raised one. */
    const THROTTLE_OPTION = 'cat_webhook_notified';

    /** Whether `$header` (t=…,v1=…) signs `$body` with `$secret` at a t within TOLERANCE_S of `$now`. */
    public static function verify($secret, $header, $body, $now)
    {
        if (!is_string($secret) || $secret === '' || !is_string($header) || !is_string($body)) {
            return false;
        }
        $parts = [];
        foreach (explode(',', $header) as $part) {
            $at = strpos($part, '=');
            if ($at !== false && $at > 0) {
                $parts[trim(substr($part, 0, $at))] = trim(substr($part, $at + 1));
            }
        }
        $t  = $parts['t'] ?? '';
        $v1 = $parts['v1'] ?? '';
        if (!preg_match('/^\d{1,12}$/', $t) || !preg_match('/^[0-9a-f]{64}$/', $v1)) {
            return false;
        }
        if (abs($now - (int) $t) > self::TOLERANCE_S) {
            return false;
        }

        return hash_equals(hash_hmac('sha256', $t . '.' . $body, $secret), $v1);
    }

    /**
     * Handles one POST: [HTTP status, body array]. 401 for a bad or old signature, 400 for a body
     * that is not a batch, 503 while no secret is configured; else 200 once the notifications are raised.
     *
     * @param object $clients Perfex's clients_model (get_admins)
     */
    public static function handle($secret, $header, $body, $now, $clients)
    {
        if (!is_string($secret) || $secret === '') {
            return [503, ['error' => ['code' => 'not_configured', 'message' => 'no webhook secret is configured']]];
        }
        if (!self::verify($secret, $header, $body, $now)) {
            return [401, ['error' => ['code' => 'bad_signature', 'message' => 'CAT-Signature does not verify, or its time is too far from now']]];
        }
        $batch = json_decode($body, true);
        if (!is_array($batch) || !isset($batch['events']) || !is_array($batch['events'])) {
            return [400, ['error' => ['code' => 'bad_request', 'message' => 'the body is not a webhook batch']]];
        }

        $notified = json_decode((string) get_option(self::THROTTLE_OPTION), true);
        $notified = is_array($notified) ? $notified : [];
        // Entries older than the throttle window say nothing any more.
        foreach ($notified as $contact => $at) {
            if ($now - (int) $at >= self::THROTTLE_S) {
                unset($notified[$contact]);
            }
        }

        $pushed = [];
        foreach ($batch['events'] as $event) {
            if (!is_array($event) || ($event['type'] ?? '') !== 'joined') {
                continue;
            }
            $contactId = (string) ($event['contactId'] ?? '');
            $clientId  = (string) ($event['clientId'] ?? '');
            if ($contactId === '' || $clientId === '' || isset($notified[$contactId])) {
                continue;
            }
            $notified[$contactId] = $now;
            foreach (self::notify($clients, $event, $clientId) as $staffId) {
                $pushed[$staffId] = true;
            }
        }
        update_option(self::THROTTLE_OPTION, json_encode((object) $notified));
        if (count($pushed) > 0) {
            pusher_trigger_notification(array_keys($pushed));
        }

        return [200, ['ok' => true]];
    }

    /** A notification to each staff member assigned to the customer; returns their ids. */
    private static function notify($clients, array $event, $clientId)
    {
        // Perfex prints a notification's description, and the labels put into it, unescaped.
        $name    = htmlspecialchars((string) ($event['name'] ?? ''), ENT_QUOTES, 'UTF-8');
        $company = htmlspecialchars((string) ($event['company'] ?? ''), ENT_QUOTES, 'UTF-8');
        $staffIds = [];
        foreach ((array) $clients->get_admins($clientId) as $admin) {
            $staffId = (int) (is_array($admin) ? ($admin['staff_id'] ?? 0) : ($admin->staff_id ?? 0));
            if ($staffId <= 0 || isset($staffIds[$staffId])) {
                continue;
            }
            $staffIds[$staffId] = true;
            add_notification([
                'description'     => $company !== '' ? 'cat_notification_on_portal' : 'cat_notification_on_portal_no_company',
                'touserid'        => $staffId,
                'fromcompany'     => 1,
                'link'            => 'clients/client/' . rawurlencode($clientId),
                'additional_data' => serialize($company !== '' ? [$name, $company] : [$name]),
            ]);
        }

        return array_keys($staffIds);
    }
}

if (!function_exists('cat_webhook_secret')) {
    /** The webhook secret (the server's CAT_WEBHOOK_SECRET): the module's option (stored encrypted), else this environment's CAT_WEBHOOK_SECRET. */
    function cat_webhook_secret()
    {
        $secret = CatSecrets::read('cat_webhook_secret');

        return $secret !== '' ? $secret : trim((string) getenv('CAT_WEBHOOK_SECRET'));
    }
}
