<?php

defined('BASEPATH') or exit('No direct script access allowed');

/**
 * admin/client_activity_tracker/…  (AdminController: staff only; others go to the login page).
 *
 *   settings  GET/POST  the module settings (admins only)
 *   token     GET       {"token": ADMIN_JWT} for the dashboard widget (staff who may view)
 */
class Client_activity_tracker extends AdminController
{
    public function index()
    {
        redirect(admin_url(CAT_MODULE_NAME . '/settings'));
    }

    public function settings()
    {
        if (!is_admin()) {
            access_denied(CAT_MODULE_NAME);
        }

        if ($this->input->post()) {
            $ok  = true;
            $url = rtrim(trim((string) $this->input->post('cat_server_url')), '/');
            if ($url !== '' && !cat_valid_server_url($url)) {
                set_alert('danger', _l('cat_server_url_invalid'));
                $ok = false;
            } else {
                update_option('cat_server_url', $url);
            }

            // Not XSS-filtered: a secret is used as it is typed, and never printed back.
            $secret = trim((string) $this->input->post('cat_secret', false));
            if ($this->input->post('cat_secret_clear')) {
                update_option('cat_secret', '');
            } elseif ($secret !== '') {
                if (strlen($secret) < CatTokens::MIN_SECRET_LENGTH) {
                    set_alert('danger', _l('cat_secret_too_short'));
                    $ok = false;
                } else {
                    update_option('cat_secret', $secret);
                }
            }

            if ($ok) {
                set_alert('success', _l('cat_settings_saved'));
            }
            redirect(admin_url(CAT_MODULE_NAME . '/settings'));
        }

        $this->load->view('settings', [
            'title'         => _l('cat_settings_title'),
            'server_url'    => (string) get_option('cat_server_url'),
            'secret_source' => cat_secret_source(),
        ]);
    }

    /** A fresh admin token for the logged-in staff member; the widget calls this whenever it needs one. */
    public function token()
    {
        if (!cat_staff_can_view()) {
            $this->json(403, ['error' => ['code' => 'forbidden', 'message' => 'no permission to view client activity']]);

            return;
        }

        try {
            $staffId = get_staff_user_id();
            $token   = cat_tokens()->adminToken((string) $staffId, get_staff_full_name($staffId), CAT_ADMIN_TOKEN_TTL);
        } catch (Throwable $e) {
            log_message('error', 'client_activity_tracker: no admin token: ' . $e->getMessage());
            $this->json(503, ['error' => ['code' => 'not_configured', 'message' => 'the module has no usable secret']]);

            return;
        }

        $this->json(200, ['token' => $token]);
    }

    private function json($status, array $body)
    {
        $this->output
            ->set_status_header($status)
            ->set_content_type('application/json', 'utf-8')
            ->set_header('Cache-Control: no-store')
            ->set_output(json_encode($body, JSON_UNESCAPED_SLASHES));
    }
}
