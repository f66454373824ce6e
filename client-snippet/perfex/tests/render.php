<?php

/**
 * Runs the module's hooks outside Perfex, against small stand-ins for the Perfex functions they
 * call, and prints what they render. For test/perfex/perfex-tokens.test.ts; it shows that the
 * module's own code runs and escapes what it prints, not that Perfex calls it (that needs a real
 * Perfex install).
 *
 *   php render.php SCENARIO_JSON
 *
 * SCENARIO_JSON: {"hook": "footer"|"head"|"page"|"helper"|"widget"|"widgets_filter"|"settings"|"settings_url"|"controller",
 *                 "options": {"cat_server_url": …, "cat_secret": …},
 *                 "contact": {"id", "clientId", "name", "company"} | null,
 *                 "loggedInAsClient": bool, "language": "german",
 *                 "staff": {"id", "admin", "view", "viewCustomers"} | null,
 *                 "db": {"tblcustomer_admins": [{"staff_id", "customer_id", "date_assigned"}…]},
 *                 "uri": "admin/client_activity_tracker/METHOD", "post": {…}}
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
    }

    return $ci;
}

function register_activation_hook($module, $fn)
{
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
        $secret_source = cat_secret_source();
        $server_set    = cat_server_url() !== '';
        require __DIR__ . '/../client_activity_tracker/views/settings.php';
        break;
    case 'settings_url':
        // Where server_settings redirects a Perfex admin.
        echo cat_dashboard_settings_url(get_staff_user_id(), get_staff_full_name(get_staff_user_id())), "\n";
        break;
    case 'controller':
        require __DIR__ . '/controller.php';
        echo json_encode(cat_test_run_controller((string) ($scenario['uri'] ?? ''), $scenario['post'] ?? []), JSON_UNESCAPED_SLASHES), "\n";
        break;
    default:
        fwrite(STDERR, "unknown hook\n");
        exit(2);
}
