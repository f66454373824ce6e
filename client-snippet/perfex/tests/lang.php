<?php

/**
 * Perfex's `_l()` for the tests' stand-ins (tests/render.php, tests/webhook.php), as Perfex 3.1.6
 * defines it in application/helpers/general_helper.php: the line goes through vsprintf (an array
 * of labels) or sprintf with the one label, '' by default, so a `%s` the caller fills itself
 * afterwards is already gone; a line with a `"` and no tag comes back html_escape()d; a missing
 * line comes back as its key. The language lines are the module's English file.
 */

if (!defined('BASEPATH')) {
    define('BASEPATH', __DIR__);
}

$lang = [];
require __DIR__ . '/../client_activity_tracker/language/english/client_activity_tracker_lang.php';
$GLOBALS['cat_lang'] = $lang;
unset($lang);

/** CI_Lang::line: the line, or false when the language has none. */
function cat_test_lang_line($line)
{
    return $GLOBALS['cat_lang'][$line] ?? false;
}

function _l($line, $label = '', $log_errors = true)
{
    if (is_array($label) && count($label) > 0) {
        $_line = vsprintf((string) cat_test_lang_line(trim($line)), $label);
    } else {
        try {
            $_line = sprintf((string) cat_test_lang_line(trim($line)), $label);
        } catch (\ValueError $e) {
            $_line = (string) cat_test_lang_line(trim($line));
        }
    }

    if ($_line != '') {
        // Perfex: is_html() is preg_match('/<[^<]+>/'); html_escape() is htmlspecialchars(ENT_QUOTES).
        if (preg_match('/"/', $_line) && !preg_match('/<[^<]+>/', $_line)) {
            $_line = htmlspecialchars($_line, ENT_QUOTES, 'UTF-8');
        }

        return $_line;
    }

    if (strpos($line, '_db_') !== false) {
        return 'db_translate_not_found';
    }

    return $line;
}
