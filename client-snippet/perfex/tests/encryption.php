<?php

/**
 * CodeIgniter 3's Encryption library for the tests' stand-ins, in the form Perfex uses it
 * (autoloaded as $CI->encryption; encrypt($data) → string, decrypt($data) → string, or false
 * when the value was not made by encrypt() with this key). As CI's with its defaults: AES-128-CBC
 * with a random IV, base64, and an HMAC-SHA512 (hex) in front, checked before decrypting.
 */

defined('BASEPATH') or exit('No direct script access allowed');

final class CatTestEncryption
{
    /** The install's encryption_key (application/config/app-config.php); fixed, so each php run reads what another stored. */
    private $key = 'cat-test-encryption-key-32-bytes';

    public function encrypt($data)
    {
        $iv      = random_bytes(16);
        $payload = base64_encode($iv . openssl_encrypt((string) $data, 'aes-128-cbc', $this->subkey('encryption'), OPENSSL_RAW_DATA, $iv));

        return hash_hmac('sha512', $payload, $this->subkey('authentication')) . $payload;
    }

    public function decrypt($data)
    {
        $data = (string) $data;
        if (strlen($data) <= 128) {
            return false;
        }
        $hmac    = substr($data, 0, 128);
        $payload = substr($data, 128);
        if (!hash_equals(hash_hmac('sha512', $payload, $this->subkey('authentication')), $hmac)) {
            return false;
        }
        $raw = base64_decode($payload, true);
        if ($raw === false || strlen($raw) <= 16) {
            return false;
        }

        return openssl_decrypt(substr($raw, 16), 'aes-128-cbc', $this->subkey('encryption'), OPENSSL_RAW_DATA, substr($raw, 0, 16));
    }

    private function subkey($info)
    {
        return hash_hkdf('sha512', $this->key, 16, $info);
    }
}
