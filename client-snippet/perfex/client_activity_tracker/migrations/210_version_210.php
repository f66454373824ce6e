<?php

defined('BASEPATH') or exit('No direct script access allowed');

require_once __DIR__ . '/../libraries/CatSecrets.php';

/**
 * 2.1.0 stores the secrets encrypted: Perfex runs this when the module's files are 2.1.0 and the
 * install is still 2.0.0 ("Database upgrade required" in Setup → Modules), and it encrypts the
 * secrets 2.0.0 stored in plain text.
 */
class Migration_Version_210 extends App_module_migration
{
    public function up()
    {
        CatSecrets::encryptPlain();
    }
}
