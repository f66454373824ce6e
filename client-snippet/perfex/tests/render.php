<?php

/**
 * Runs the module's hooks outside Perfex, against small stand-ins for the Perfex functions they
 * call, and prints what they render. For test/perfex/perfex-tokens.test.ts; it shows that the
 * module's own code runs and escapes what it prints, not that Perfex calls it (that needs a real
 * Perfex install).
 *
 *   php render.php SCENARIO_JSON
 *
 * SCENARIO_JSON: {"hook": "footer"|"head"|"page"|"helper"|"widget"|"widgets_filter"|"settings"|"settings_url"|"controller"
 *                         |"install"|"uninstall"|"uninstall_hook"|"migrate"|"secrets",
 *                 "options": {"cat_server_url": …, "cat_secret": …},
 *                 "contact": {"id", "clientId", "name", "company"} | null,
 *                 "loggedInAsClient": bool, "language": "german",
 *                 "staff": {"id", "admin", "view", "viewCustomers"} | null,
 *                 "db": {"tblcustomer_admins": [{"staff_id", "customer_id", "date_assigned"}…]},
 *                 "uri": "admin/client_activity_tracker/METHOD", "post": {…}}
 *
 * "options" are the settings as an admin enters them: the secrets among them are stored encrypted
 * first, as the settings page stores them; "rawOptions" are put in the options table as they are.
 * "uninstall" uninstalls the module as Perfex's App_modules::uninstall() does, after install.php
 * ran; "uninstall_hook" fires the module's uninstall hook instead; both print the options left.
 *
 * "view" is the module's own permission (client_activity_tracker, view), "viewCustomers" core's
 * (customers, view). "controller" runs the admin controller's method named by the third segment
 * of "uri" and prints {"status", "headers", "output", "redirect", "alerts", "options", "session"}.
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
require __DIR__ . '/encryption.php';
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

/** CodeIgniter's session, holding what "Login as client" sets when loggedInAsClient is true. */
final class CatTestSession
{
    public $data = [];

    public function __construct()
    {
        if ($GLOBALS['cat_test']['loggedInAsClient']) {
            $contact    = $GLOBALS['cat_test']['contact'] ?? ['id' => '1', 'clientId' => '1'];
            $this->data = [
                'client_user_id'      => (string) $contact['clientId'],
                'contact_user_id'     => (string) $contact['id'],
                'client_logged_in'    => true,
                'logged_in_as_client' => true,
            ];
        }
    }

    public function userdata($key)
    {
        return $this->data[$key] ?? null;
    }

    public function has_userdata($key)
    {
        return isset($this->data[$key]);
    }

    public function unset_userdata($key)
    {
        unset($this->data[$key]);
    }
}

/**
 * The part of CodeIgniter's query builder the module uses: select(), where($column, $value) and
 * get($table), whose result_array() and row() give the matching rows of the scenario's "db", every
 * value a string as MySQL gives them.
 */
final class CatTestDb
{
    private $tables;
    private $select = null;
    private $where  = [];

    public function __construct(array $tables)
    {
        $this->tables = $tables;
    }

    public function select($columns)
    {
        $this->select = array_map('trim', explode(',', $columns));

        return $this;
    }

    public function where($column, $value)
    {
        $this->where[$column] = (string) $value;

        return $this;
    }

    public function get($table)
    {
        $rows = [];
        foreach ($this->tables[$table] ?? [] as $row) {
            $row = array_map('strval', $row);
            foreach ($this->where as $column => $value) {
                if (($row[$column] ?? null) !== $value) {
                    continue 2;
                }
            }
            $rows[] = $this->select === null ? $row : array_intersect_key($row, array_flip($this->select));
        }
        // As CodeIgniter's, a query resets the builder.
        $this->select = null;
        $this->where  = [];

        return new CatTestDbResult($rows);
    }
}

final class CatTestDbResult
{
    private $rows;

    public function __construct(array $rows)
    {
        $this->rows = $rows;
    }

    public function result_array()
    {
        return $this->rows;
    }

    public function row()
    {
        return isset($this->rows[0]) ? (object) $this->rows[0] : null;
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
        $ci->db      = new CatTestDb($GLOBALS['cat_test']['db'] ?? []);
        $ci->encryption = new CatTestEncryption();
    }

    return $ci;
}

function register_activation_hook($module, $fn)
{
    hooks()->add_action('activate_' . $module . '_module', $fn);
}

function register_uninstall_hook($module, $fn)
{
    hooks()->add_action('uninstall_' . $module . '_module', $fn);
}

function register_language_files($module, $files)
{
}

function db_prefix()
{
    return 'tbl';
}

function get_option($name)
{
    return $GLOBALS['cat_test']['options'][$name] ?? '';
}

function update_option($name, $value, $autoload = null)
{
    $GLOBALS['cat_test']['options'][$name] = $value;

    return true;
}

/** As Perfex's: keeps a value that is already there. */
function add_option($name, $value = '', $autoload = 1)
{
    if (array_key_exists($name, $GLOBALS['cat_test']['options'])) {
        return false;
    }
    $GLOBALS['cat_test']['options'][$name] = $value;

    return true;
}

function delete_option($name)
{
    $had = array_key_exists($name, $GLOBALS['cat_test']['options']);
    unset($GLOBALS['cat_test']['options'][$name]);

    return $had;
}

function site_url($path = '')
{
    return 'https://crm.example.com/' . $path;
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

function is_admin($staffid = '')
{
    return !empty($GLOBALS['cat_test']['staff']['admin']);
}

/** As Perfex's (application/helpers/admin_helper.php): admins have every permission; others the ones they are given. */
function staff_can($capability, $feature = null, $staff_id = '')
{
    if (is_admin()) {
        return true;
    }
    $staff       = $GLOBALS['cat_test']['staff'] ?? [];
    $permissions = [];
    if (!empty($staff['view'])) {
        $permissions[] = ['feature' => 'client_activity_tracker', 'capability' => 'view'];
    }
    if (!empty($staff['viewCustomers'])) {
        $permissions[] = ['feature' => 'customers', 'capability' => 'view'];
    }
    foreach ($permissions as $permission) {
        if ($permission['feature'] === $feature && $permission['capability'] === $capability) {
            return true;
        }
    }

    return false;
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

// The secrets as the settings page stores them (encrypted), then any raw option values.
$cat_plain = $GLOBALS['cat_test']['options'];
foreach (CatSecrets::OPTIONS as $cat_option) {
    if (isset($cat_plain[$cat_option])) {
        CatSecrets::store($cat_option, $cat_plain[$cat_option]);
    }
}
$GLOBALS['cat_test']['options'] = array_merge($GLOBALS['cat_test']['options'], $scenario['rawOptions'] ?? []);

switch ($scenario['hook']) {
    case 'footer':
        hooks()->do_action('app_customers_footer');
        break;
    case 'head':
        hooks()->do_action('app_customers_head');
        break;
    case 'page':
        // A theme page: the head hook in <head>, the footer hook before </body>.
        hooks()->do_action('app_customers_head');
        echo "<!-- body -->\n";
        hooks()->do_action('app_customers_footer');
        break;
    case 'helper':
        // A custom page calling the public helper twice, then the footer hook.
        echo cat_consent_snippet();
        echo cat_consent_snippet();
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
        $secret_source  = cat_secret_source();
        $webhook_source = cat_webhook_secret_source();
        $server_set     = cat_server_url() !== '';
        require __DIR__ . '/../client_activity_tracker/views/settings.php';
        break;
    case 'settings_url':
        // Where server_settings redirects a Perfex admin.
        echo cat_dashboard_settings_url(get_staff_user_id(), get_staff_full_name(get_staff_user_id())), "\n";
        break;
    case 'install':
        // Activation: Perfex includes the init file and fires activate_client_activity_tracker_module.
        hooks()->do_action('activate_client_activity_tracker_module');
        echo json_encode((object) $GLOBALS['cat_test']['options'], JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'uninstall':
        // App_modules::uninstall() (Perfex 3.1.6), after the module was installed and deactivated.
        hooks()->do_action('activate_client_activity_tracker_module');
        $cat_path = __DIR__ . '/../client_activity_tracker/';
        if (file_exists($cat_path . 'uninstall.php')) {
            include_once $cat_path . 'uninstall.php';
        } else {
            hooks()->do_action('uninstall_client_activity_tracker_module');
        }
        echo json_encode((object) $GLOBALS['cat_test']['options'], JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'uninstall_hook':
        hooks()->do_action('activate_client_activity_tracker_module');
        hooks()->do_action('uninstall_client_activity_tracker_module');
        echo json_encode((object) $GLOBALS['cat_test']['options'], JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'migrate':
        // The module's migrations, as App_module_migration runs them from 2.0.0 to the files' version.
        class App_module_migration
        {
        }
        foreach (glob(__DIR__ . '/../client_activity_tracker/migrations/*_version_*.php') as $cat_file) {
            include_once $cat_file;
            $cat_class = 'Migration_Version_' . explode('_', basename($cat_file, '.php'))[0];
            (new $cat_class())->up();
        }
        echo json_encode((object) $GLOBALS['cat_test']['options'], JSON_UNESCAPED_SLASHES), "\n";
        break;
    case 'secrets':
        // What the module reads back (the webhook controller loads CatWebhook.php).
        require_once __DIR__ . '/../client_activity_tracker/libraries/CatWebhook.php';
        echo json_encode(['cat_secret' => cat_secret(), 'cat_webhook_secret' => cat_webhook_secret(), 'source' => cat_secret_source()]), "\n";
        break;
    case 'controller':
        require __DIR__ . '/controller.php';
        echo json_encode(cat_test_run_controller((string) ($scenario['uri'] ?? ''), $scenario['post'] ?? []), JSON_UNESCAPED_SLASHES), "\n";
        break;
    default:
        fwrite(STDERR, "unknown hook\n");
        exit(2);
}
