<?php

defined('BASEPATH') or exit('No direct script access allowed');

/**
 * The module's secrets (the shared CAT_SECRET, the webhook secret) in Perfex's options table,
 * encrypted with Perfex's encryption library as core stores its own (SMTP password, payment
 * gateway keys: `$this->encryption->encrypt()` on save, `->decrypt()` on use), so with the
 * install's encryption_key from application/config/app-config.php.
 */
final class CatSecrets
{
    /** The options that hold a secret. */
    const OPTIONS = ['cat_secret', 'cat_webhook_secret'];

    /** Stores $secret in $option, encrypted; '' empties the option. */
    public static function store($option, $secret)
    {
        $secret = trim((string) $secret);

        return update_option($option, $secret === '' ? '' : self::encryption()->encrypt($secret));
    }

    /**
     * The secret stored in $option; '' when none is stored, or when the value does not decrypt
     * (encryption_key changed, or a value put there by hand): that is logged, and the secret
     * must be entered again.
     */
    public static function read($option)
    {
        $stored = trim((string) get_option($option));
        if ($stored === '') {
            return '';
        }
        $secret = self::encryption()->decrypt($stored);
        if (!is_string($secret) || trim($secret) === '') {
            if (function_exists('log_message')) {
                log_message('error', "client_activity_tracker: the option {$option} does not decrypt with this install's encryption key; enter the secret again");
            }

            return '';
        }

        return trim($secret);
    }

    /** Whether $option holds a value that is not (yet) encrypted, as version 2.0.0 stored them. */
    public static function isPlain($option)
    {
        $stored = trim((string) get_option($option));

        return $stored !== '' && self::encryption()->decrypt($stored) === false;
    }

    /** Encrypts each secret still stored in plain text (by version 2.0.0), in place. */
    public static function encryptPlain()
    {
        foreach (self::OPTIONS as $option) {
            if (self::isPlain($option)) {
                self::store($option, get_option($option));
            }
        }
    }

    private static function encryption()
    {
        $CI = &get_instance();

        return $CI->encryption;
    }
}
