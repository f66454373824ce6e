<?php

// Perfex asks every module file to refuse a direct request; outside Perfex, define BASEPATH first.
defined('BASEPATH') or exit('No direct script access allowed');

/**
 * Signs the JWTs the Client Activity Tracker presence server accepts:
 * HS256 only, header {"alg":"HS256","typ":"JWT","kid":"0"}, claims aud/sub/client_id/name/
 * company/iat/exp, and role/clients on admin tokens.
 *
 * Plain PHP 7.4+ with the standard `hash` and `json` extensions; no Perfex dependency, so it
 * can be used (and tested) on its own, once BASEPATH is defined:
 *
 *     define('BASEPATH', __DIR__);
 *     require 'CatTokens.php';
 *     $tokens = new CatTokens(getenv('CAT_SECRET'));
 *     $jwt    = $tokens->clientToken(42, 7, 'Zoë Müller', 'Société Générale');
 */
final class CatTokens
{
    public const AUD_CLIENT = 'cat:client';
    public const AUD_ADMIN  = 'cat:admin';

    /** The server refuses a secret shorter than this at start; so do we. */
    public const MIN_SECRET_LENGTH = 16;

    /** The server keeps at most this many characters of `name` and `company`. */
    private const MAX_TEXT_LENGTH = 200;

    /** The server refuses ids longer than this. */
    private const MAX_ID_LENGTH = 128;

    /** @var string */
    private $secret;

    /**
     * @param string $secret CAT_SECRET of the presence server. A comma list (as CAT_SECRET may be,
     *                       to rotate keys) is accepted: its first entry signs, as on the server,
     *                       which is why the header says kid "0".
     */
    public function __construct($secret)
    {
        $parts  = explode(',', (string) $secret);
        $first  = trim($parts[0]);
        if ($first === '') {
            throw new InvalidArgumentException('CatTokens: no secret (set CAT_SECRET or the module setting)');
        }
        if (strlen($first) < self::MIN_SECRET_LENGTH) {
            throw new InvalidArgumentException('CatTokens: the secret must be at least ' . self::MIN_SECRET_LENGTH . ' characters, as on the server');
        }
        $this->secret = $first;
    }

    /**
     * A token for a customer contact (a person) of a client (a company).
     *
     * @param int|string  $contactId Perfex contact id (tblcontacts.id)
     * @param int|string  $clientId  Perfex client id (tblclients.userid)
     * @param string|null $name      display name, optional
     * @param string|null $company   company name, optional
     * @param int         $ttl       lifetime in seconds
     */
    public function clientToken($contactId, $clientId, $name = null, $company = null, $ttl = 3600)
    {
        $claims = [
            'aud'       => self::AUD_CLIENT,
            'sub'       => self::id($contactId, 'contactId'),
            'client_id' => self::id($clientId, 'clientId'),
        ];
        $name    = self::text($name);
        $company = self::text($company);
        if ($name !== null) {
            $claims['name'] = $name;
        }
        if ($company !== null) {
            $claims['company'] = $company;
        }

        return $this->sign($claims, $ttl);
    }

    /**
     * A token for a staff member: it reads everything the presence server holds, so mint it only
     * for staff allowed to see it.
     *
     * @param int|string  $staffId Perfex staff id (tblstaff.staffid)
     * @param string|null $name    display name, optional
     * @param int         $ttl     lifetime in seconds
     * @param string|null $role    'admin' (may change the server's settings; the server's default
     *                             when absent) or 'staff' (watches and reads only)
     * @param array|null  $clients the client (company) ids whose contacts the token sees, sent as
     *                             strings in the `clients` claim (an empty array: none); null
     *                             leaves the claim out, and the token sees every client
     */
    public function adminToken($staffId, $name = null, $ttl = 3600, $role = null, $clients = null)
    {
        $claims = [
            'aud' => self::AUD_ADMIN,
            'sub' => self::id($staffId, 'staffId'),
        ];
        $name = self::text($name);
        if ($name !== null) {
            $claims['name'] = $name;
        }
        if ($role !== null) {
            if ($role !== 'admin' && $role !== 'staff') {
                throw new InvalidArgumentException("CatTokens: role must be 'admin' or 'staff'");
            }
            $claims['role'] = $role;
        }
        if ($clients !== null) {
            if (!is_array($clients)) {
                throw new InvalidArgumentException('CatTokens: clients must be an array of client ids, or null');
            }
            $ids = [];
            foreach ($clients as $clientId) {
                $ids[self::id($clientId, 'clientId')] = true;
            }
            $claims['clients'] = array_map('strval', array_keys($ids));
        }

        return $this->sign($claims, $ttl);
    }

    /**
     * Signs any claims with `iat` = now and `exp` = now + $ttl (a negative $ttl gives a token
     * that has already expired, which is useful in tests only).
     */
    public function sign(array $claims, $ttl = 3600)
    {
        $now           = time();
        $claims['iat'] = $now;
        $claims['exp'] = $now + (int) $ttl;

        $header       = self::base64url(self::json(['alg' => 'HS256', 'typ' => 'JWT', 'kid' => '0']));
        $payload      = self::base64url(self::json($claims));
        $signingInput = $header . '.' . $payload;
        $signature    = hash_hmac('sha256', $signingInput, $this->secret, true);

        return $signingInput . '.' . self::base64url($signature);
    }

    /** Base64url without padding (RFC 7515 §2). */
    public static function base64url($bytes)
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    private static function json(array $value)
    {
        $json = json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE);
        if ($json === false) {
            throw new RuntimeException('CatTokens: cannot encode claims: ' . json_last_error_msg());
        }

        return $json;
    }

    /** Ids go out as strings; the server refuses empty ones, long ones and control characters. */
    private static function id($value, $label)
    {
        if (is_int($value)) {
            return (string) $value;
        }
        if (!is_string($value)) {
            throw new InvalidArgumentException("CatTokens: {$label} must be an integer or a string");
        }
        $value = trim($value);
        if ($value === '' || strlen($value) > self::MAX_ID_LENGTH || preg_match('/[\x00-\x1f\x7f]/', $value)) {
            throw new InvalidArgumentException("CatTokens: {$label} must be a non-empty id of at most " . self::MAX_ID_LENGTH . ' characters');
        }

        return $value;
    }

    /** Display text: trimmed, valid UTF-8 (invalid bytes become U+FFFD), cut to what the server keeps; empty → omitted. */
    private static function text($value)
    {
        if ($value === null) {
            return null;
        }
        $value = trim((string) $value);
        if ($value === '') {
            return null;
        }
        if (preg_match('//u', $value) !== 1) {
            $value = (string) json_decode((string) json_encode($value, JSON_INVALID_UTF8_SUBSTITUTE));
        }
        if (preg_match('/^.{0,' . self::MAX_TEXT_LENGTH . '}/su', $value, $m) === 1) {
            $value = $m[0];
        }

        return $value;
    }
}
