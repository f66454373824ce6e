<?php

/**
 * Runs the module's hooks outside Perfex, against small stand-ins for the Perfex functions they
 * call, and prints what they render. For test/perfex/perfex-tokens.test.ts; it shows that the
 * module's own code runs and escapes what it prints, not that Perfex calls it (that needs a real
 * Perfex install).
 *
 *   php render.php SCENARIO_JSON
 *
 * SCENARIO_JSON: {"hook": "footer"|"widget"|"widgets_filter"|"settings"|"settings_url"|"token",
 *                 "options": {"cat_server_url": …, "cat_secret": …},
 *                 "contact": {"id", "clientId", "name", "company"} | null,
 *                 "loggedInAsClient": bool, "language": "german", "staff": {"id", "admin", "view"} | null}
 */

if (PHP_SAPI !== 'cli') {
    http_response_code(404);
    exit(1);
}

define('BASEPATH', __DIR__);

$scenario = json_decode($argv[1] ?? '', true);
if (!is_array($scenario)) {
    fwrite(STDERR, "usage: php render.php SCENARIO_JSON\n");
    exit(2);
}
$GLOBALS['cat_test'] = $scenario + ['options' => [], 'contact' => null, 'loggedInAsClient' => false, 'staff' => null];
require __DIR__ . '/lang.php';
if (isset($scenario['language'])) {
    $GLOBALS['language'] = $scenario['language'];
}

final class CatTestHooks
{
    public $actions = [];
    public $filters = [];

    public function add_action($tag, $fn)
    {
        $this->actions[$tag][] = $fn;
    }

    public function add_filter($tag, $fn)
    {
        $this->filters[$tag][] = $fn;
    }

    public function do_action($tag)
    {
        foreach ($this->actions[$tag] ?? [] as $fn) {
            $fn();
        }
    }

    public function apply_filters($tag, $value)
    {
        foreach ($this->filters[$tag] ?? [] as $fn) {
            $value = $fn($value);
        }

        return $value;
    }
}

final class CatTestSession
{
    public function userdata($key)
    {
        return $key === 'logged_in_as_client' ? (bool) $GLOBALS['cat_test']['loggedInAsClient'] : null;
    }
}

function hooks()
{
    static $hooks = null;

    return $hooks ?: ($hooks = new CatTestHooks());
}

function &get_instance()
{
    static $ci = null;
    if ($ci === null) {
        $ci          = new stdClass();
        $ci->session = new CatTestSession();
    }

    return $ci;
}

function register_activation_hook($module, $fn)
{
}

function register_language_files($module, $files)
{
}

function get_option($name)
{
    return $GLOBALS['cat_test']['options'][$name] ?? '';
}

function log_message($level, $message)
{
    fwrite(STDERR, "log {$level}: {$message}\n");
}

function is_client_logged_in()
{
    return $GLOBALS['cat_test']['contact'] !== null;
}

function get_contact_user_id()
{
    return (string) $GLOBALS['cat_test']['contact']['id'];
}

function get_client_user_id()
{
    return (string) $GLOBALS['cat_test']['contact']['clientId'];
}

function get_contact_full_name($id)
{
    return $GLOBALS['cat_test']['contact']['name'];
}

function get_company_name($id)
{
    return $GLOBALS['cat_test']['contact']['company'];
}

function is_staff_logged_in()
{
    return $GLOBALS['cat_test']['staff'] !== null;
}

function is_admin()
{
    return !empty($GLOBALS['cat_test']['staff']['admin']);
}

function staff_can($capability, $feature)
{
    return $capability === 'view' && $feature === 'client_activity_tracker' && !empty($GLOBALS['cat_test']['staff']['view']);
}

function admin_url($path = '')
{
    return 'https://crm.example.com/admin/' . $path;
}

function create_widget_id($id = null)
{
    return $id;
}

function base_url($path = '')
{
    return 'https://crm.example.com/' . $path;
}

function get_staff_user_id()
{
    return (string) $GLOBALS['cat_test']['staff']['id'];
}

function get_staff_full_name($id)
{
    return 'Staff ' . $id;
}

function init_head()
{
}

function init_tail()
{
}

function form_open($action, $attributes = [])
{
    return '<form method="post" action="' . htmlspecialchars($action, ENT_QUOTES, 'UTF-8') . '">';
}

function form_close()
{
    return '</form>';
}

require __DIR__ . '/../client_activity_tracker/client_activity_tracker.php';

switch ($scenario['hook']) {
    case 'footer':
        hooks()->do_action('app_customers_footer');
        break;
    case 'widgets_filter':
        echo json_encode(hooks()->apply_filters('get_dashboard_widgets', []), JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'widget':
        require __DIR__ . '/../client_activity_tracker/views/widgets/online_clients.php';
        break;
    case 'settings':
        // The module settings page, with what the controller gives it.
        $title         = _l('cat_settings_title');
        $server_url    = (string) get_option('cat_server_url');
        $secret_source = cat_secret_source();
        $server_set    = cat_server_url() !== '';
        require __DIR__ . '/../client_activity_tracker/views/settings.php';
        break;
    case 'settings_url':
        // Where server_settings redirects a Perfex admin.
        echo cat_dashboard_settings_url(get_staff_user_id(), get_staff_full_name(get_staff_user_id())), "\n";
        break;
    case 'token':
        // What the widget's token endpoint mints for the logged-in staff member.
        echo cat_tokens()->adminToken(get_staff_user_id(), null, CAT_ADMIN_TOKEN_TTL, cat_staff_role()), "\n";
        break;
    default:
        fwrite(STDERR, "unknown hook\n");
        exit(2);
}
