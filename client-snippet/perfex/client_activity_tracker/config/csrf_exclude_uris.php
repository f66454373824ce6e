<?php

defined('BASEPATH') or exit('No direct script access allowed');

// The presence server POSTs its webhooks without a CSRF token; they carry CAT-Signature instead.
return ['client_activity_tracker/cat_webhook'];
