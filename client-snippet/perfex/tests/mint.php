<?php

/**
 * Prints one token signed by CatTokens, for the tests (test/perfex/perfex-tokens.test.ts) and by
 * hand:
 *
 *   php mint.php client CONTACT_ID CLIENT_ID NAME COMPANY SECRET [TTL]
 *   php mint.php admin  STAFF_ID NAME SECRET [TTL [ROLE [CLIENTS]]]
 *
 * An empty NAME or COMPANY leaves the claim out. An empty SECRET falls back to the environment's
 * CAT_SECRET (which keeps it out of `ps`). TTL is in seconds, default 3600; a negative TTL
 * gives a token that has already expired. ROLE is admin or staff (absent or empty: no role
 * claim). CLIENTS is a JSON array of client ids, e.g. '["12","40"]' or '[]' (absent: no
 * clients claim, the token sees every client).
 */

if (PHP_SAPI !== 'cli') {
    http_response_code(404);
    exit(1);
}

// CatTokens, like every file of the module, runs only where BASEPATH is defined.
define('BASEPATH', __DIR__);

require __DIR__ . '/../client_activity_tracker/libraries/CatTokens.php';

function usage()
{
    fwrite(STDERR, "usage: php mint.php client CONTACT_ID CLIENT_ID NAME COMPANY SECRET [TTL]\n"
        . "       php mint.php admin STAFF_ID NAME SECRET [TTL [ROLE [CLIENTS]]]\n");
    exit(2);
}

$args = array_slice($argv, 1);
$kind = array_shift($args);

function secret_of($value)
{
    return $value !== '' ? $value : (string) getenv('CAT_SECRET');
}

function ttl_of($value)
{
    if ($value === null) {
        return 3600;
    }
    if (!preg_match('/^-?\d+$/', $value)) {
        usage();
    }

    return (int) $value;
}

try {
    if ($kind === 'client' && (count($args) === 5 || count($args) === 6)) {
        [$contactId, $clientId, $name, $company, $secret] = $args;
        $tokens = new CatTokens(secret_of($secret));
        echo $tokens->clientToken($contactId, $clientId, $name, $company, ttl_of($args[5] ?? null)), "\n";
    } elseif ($kind === 'admin' && count($args) >= 3 && count($args) <= 6) {
        [$staffId, $name, $secret] = $args;
        $tokens  = new CatTokens(secret_of($secret));
        $role    = ($args[4] ?? '') !== '' ? $args[4] : null;
        $clients = isset($args[5]) ? json_decode($args[5], true) : null;
        if (isset($args[5]) && !is_array($clients)) {
            usage();
        }
        echo $tokens->adminToken($staffId, $name, ttl_of($args[3] ?? null), $role, $clients), "\n";
    } else {
        usage();
    }
} catch (InvalidArgumentException $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    exit(1);
}
