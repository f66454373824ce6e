<?php

defined('BASEPATH') or exit('No direct script access allowed');

/**
 * admin/client_activity_tracker/…  (AdminController: staff only; others go to the login page).
 *
 *   settings             GET/POST  the module settings (admins only)
 *   server_settings      GET       redirects to the presence server's settings panel with a fresh admin token (admins only)
 *   notifications_check  GET       {"token": ADMIN_JWT} for the dashboard widget (staff who may view;
 *                                  role `admin` for Perfex admins, `staff` for the others)
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

            // Secrets are not XSS-filtered (used as typed, never printed back) and are stored encrypted.
            foreach (CatSecrets::OPTIONS as $option) {
                $secret = trim((string) $this->input->post($option, false));
                if ($this->input->post($option . '_clear')) {
                    CatSecrets::store($option, '');
                } elseif ($secret !== '') {
                    if (strlen($secret) < CatTokens::MIN_SECRET_LENGTH) {
                        set_alert('danger', _l('cat_secret_too_short'));
                        $ok = false;
                    } else {
                        CatSecrets::store($option, $secret);
                    }
                }
            }

            if ($ok) {
                set_alert('success', _l('cat_settings_saved'));
            }
            redirect(admin_url(CAT_MODULE_NAME . '/settings'));
        }

        $this->load->view('settings', [
            'title'          => _l('cat_settings_title'),
            'server_url'     => (string) get_option('cat_server_url'),
            'secret_source'  => cat_secret_source(),
            'webhook_source' => cat_webhook_secret_source(),
            // The option or the environment's CAT_SERVER_URL: the link to the server's settings needs one.
            'server_set'     => cat_server_url() !== '',
        ]);
    }

    /**
     * The presence server's live settings (timeouts, heartbeat interval, retention): its
     * dashboard with the settings panel open. A redirect, so the token is minted when the link is
     * followed and never sits in a page.
     */
    public function server_settings()
    {
        if (!is_admin()) {
            access_denied(CAT_MODULE_NAME);
        }
        try {
            $staffId = get_staff_user_id();
            $url     = cat_dashboard_settings_url($staffId, get_staff_full_name($staffId));
        } catch (Throwable $e) {
            log_message('error', 'client_activity_tracker: no admin token: ' . $e->getMessage());
            $url = '';
        }
        if ($url === '') {
            set_alert('danger', _l('cat_widget_not_configured'));
            redirect(admin_url(CAT_MODULE_NAME . '/settings'));
        }
        redirect($url);
    }

    /**
     * A fresh admin token for the logged-in staff member; the widget calls this whenever it needs one.
     *
     * Named so because AdminController's constructor ends a staff member's "Login as client"
     * session (it unsets client_user_id, contact_user_id, client_logged_in and logged_in_as_client)
     * on every admin URL whose third segment is not `notifications_check`, the name of core's own
     * polling endpoint. Under any other name each token refresh of the widget would log the
     * staff member's customers-area tab out. Core also never stores a URL containing
     * `notifications_check` as the page to return to after login, so a refresh after the session
     * expired does not send the staff member to this JSON once they log in again.
     */
    public function notifications_check()
    {
        if (!cat_staff_can_view()) {
            $this->json(403, ['error' => ['code' => 'forbidden', 'message' => 'no permission to view client activity']]);

            return;
        }

        try {
            $token = cat_staff_admin_token();
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
