<?php

defined('BASEPATH') or exit('No direct script access allowed');

require_once __DIR__ . '/../libraries/CatWebhook.php';

/**
 * POST client_activity_tracker/cat_webhook: the presence server's webhooks. Public
 * (App_Controller, no login) and listed in config/csrf_exclude_uris.php: the CAT-Signature
 * header, keyed with the module's webhook secret, is its only authentication.
 */
class Cat_webhook extends App_Controller
{
    public function index()
    {
        if (strtoupper((string) $this->input->method()) !== 'POST') {
            $this->answer(405, ['error' => ['code' => 'method_not_allowed', 'message' => 'POST only']]);

            return;
        }
        $this->load->model('clients_model');
        $header = $this->input->get_request_header('CAT-Signature', false);
        list($status, $body) = CatWebhook::handle(cat_webhook_secret(), is_string($header) ? $header : null, (string) file_get_contents('php://input'), time(), $this->clients_model);
        $this->answer($status, $body);
    }

    private function answer($status, array $body)
    {
        $this->output->set_status_header($status)->set_content_type('application/json', 'utf-8')->set_output(json_encode($body));
    }
}
