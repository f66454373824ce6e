<?php

/**
 * Runs a method of the module's admin controller (controllers/Client_activity_tracker.php) against
 * stand-ins for CodeIgniter and Perfex's AdminController, for tests/render.php's "controller" hook.
 * Only what the module calls is here; AdminController's constructor does, of what core's
 * (application/core/AdminController.php, Perfex 3.1.6) does, the one thing the tests look at:
 *
 *     if ($this->uri->segment(3) != 'notifications_check') {
 *         // unset client_user_id, contact_user_id, client_logged_in, logged_in_as_client
 *     }
 */

defined('BASEPATH') or exit('No direct script access allowed');

final class CatTestRedirect extends Exception
{
}

final class CatTestOutput
{
    public $status  = 200;
    public $headers = [];
    public $output  = '';

    public function set_status_header($code)
    {
        $this->status = (int) $code;

        return $this;
    }

    public function set_content_type($type, $charset = null)
    {
        $this->headers[] = 'Content-Type: ' . $type . ($charset ? '; charset=' . $charset : '');

        return $this;
    }

    public function set_header($header)
    {
        $this->headers[] = $header;

        return $this;
    }

    public function set_output($output)
    {
        $this->output = $output;

        return $this;
    }
}

final class CatTestInput
{
    private $post;

    public function __construct(array $post)
    {
        $this->post = $post;
    }

    /** As CodeIgniter's: all POST fields (an empty array when none), or one of them (null when absent). */
    public function post($index = null, $xss_clean = null)
    {
        if ($index === null) {
            return $this->post;
        }

        return $this->post[$index] ?? null;
    }
}

final class CatTestUri
{
    private $segments;

    public function __construct($uri)
    {
        $this->segments = array_values(array_filter(explode('/', $uri), 'strlen'));
    }

    /** 1-based, as CodeIgniter's. */
    public function segment($n)
    {
        return $this->segments[$n - 1] ?? null;
    }
}

final class CatTestLoad
{
    public $views = [];

    public function view($view, $vars = [], $return = false)
    {
        $this->views[] = ['view' => $view, 'vars' => $vars];
    }
}

class App_Controller
{
    public $input;
    public $output;
    public $load;
    public $uri;
    public $session;
    public $encryption;

    public function __construct()
    {
        $CI               = &get_instance();
        $this->input      = new CatTestInput($GLOBALS['cat_test']['post'] ?? []);
        $this->output     = new CatTestOutput();
        $this->load       = new CatTestLoad();
        $this->uri        = new CatTestUri($GLOBALS['cat_test']['uri'] ?? '');
        $this->session    = $CI->session;
        $this->encryption = $CI->encryption ?? null;
    }
}

class AdminController extends App_Controller
{
    public function __construct()
    {
        parent::__construct();
        if (!is_staff_logged_in()) {
            redirect(admin_url('authentication'));
        }
        if ($this->uri->segment(3) != 'notifications_check') {
            foreach (['client_user_id', 'contact_user_id', 'client_logged_in', 'logged_in_as_client'] as $sk) {
                if ($this->session->has_userdata($sk)) {
                    $this->session->unset_userdata($sk);
                }
            }
        }
    }
}

function redirect($uri = '')
{
    throw new CatTestRedirect($uri);
}

function set_alert($type, $message)
{
    $GLOBALS['cat_test']['alerts'][] = [$type, $message];
}

function access_denied($permission = '')
{
    set_alert('danger', 'access_denied');
    redirect(admin_url('access_denied'));
}

/** Routes `admin/client_activity_tracker/METHOD` as Perfex's MX router does, and runs it. */
function cat_test_run_controller($uri, array $post)
{
    $GLOBALS['cat_test']['uri']    = $uri;
    $GLOBALS['cat_test']['post']   = $post;
    $GLOBALS['cat_test']['alerts'] = [];
    require_once __DIR__ . '/../client_activity_tracker/controllers/Client_activity_tracker.php';

    $segments = array_values(array_filter(explode('/', $uri), 'strlen'));
    $method   = $segments[2] ?? 'index';
    $redirect = null;
    $output   = null;
    try {
        $controller = new Client_activity_tracker();
        $output     = $controller->output;
        if (!method_exists($controller, $method)) {
            return ['status' => 404];
        }
        $controller->$method();
    } catch (CatTestRedirect $e) {
        $redirect = $e->getMessage();
    }
    $CI = &get_instance();

    return [
        'status'   => $output ? $output->status : null,
        'headers'  => $output ? $output->headers : [],
        'output'   => $output ? $output->output : '',
        'redirect' => $redirect,
        'alerts'   => $GLOBALS['cat_test']['alerts'],
        'options'  => $GLOBALS['cat_test']['options'],
        'session'  => (object) $CI->session->data,
    ];
}
