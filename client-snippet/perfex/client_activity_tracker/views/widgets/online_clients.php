<?php defined('BASEPATH') or exit('No direct script access allowed'); ?>
<?php
/*
 * Admin dashboard widget. Perfex keeps only the first element of a widget view (its id names the
 * widget in the staff member's dashboard layout), so everything, scripts included, is inside it.
 */
$cat_e      = static function ($text) {
    return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8');
};
$cat_server = cat_server_url();
$cat_ready  = $cat_server !== '' && cat_secret_source() !== '';
?>
<div class="widget" id="widget-<?php echo $cat_e(create_widget_id('cat_online_clients')); ?>" data-name="<?php echo $cat_e(_l('cat_widget_title')); ?>">
    <div class="panel_s">
        <div class="panel-body padding-10">
            <div class="widget-dragger"></div>
            <p class="tw-font-medium tw-mb-0 tw-p-1.5 tw-text-neutral-700"><?php echo $cat_e(_l('cat_widget_title')); ?></p>
            <hr class="-tw-mx-3 tw-mt-2 tw-mb-4">
            <?php if (!$cat_ready) { ?>
            <p class="text-muted">
                <?php echo $cat_e(_l('cat_widget_not_configured')); ?>
                <?php if (is_admin()) { ?>
                <a href="<?php echo $cat_e(admin_url(CAT_MODULE_NAME . '/settings')); ?>"><?php echo $cat_e(_l('cat_widget_open_settings')); ?></a>
                <?php } ?>
            </p>
            <?php } else { ?>
            <?php // async: a slow or unreachable presence server must not hold up the rest of the dashboard. ?>
            <script src="<?php echo $cat_e($cat_server . '/admin/widget.js'); ?>" async></script>
            <cat-online-clients id="cat-online-clients" server="<?php echo $cat_e($cat_server); ?>"></cat-online-clients>
            <script>
                (function () {
                    var tokenUrl = <?php echo json_encode(admin_url(CAT_MODULE_NAME . '/notifications_check'), JSON_UNESCAPED_SLASHES | JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT); ?>;
                    var element = document.getElementById('cat-online-clients');
                    if (!element || !window.customElements) return;
                    // A fresh admin token from this CRM's session, each time the widget asks (connect,
                    // reconnect, expiry): the token never sits in the page for longer than it lives.
                    function tokenProvider() {
                        return fetch(tokenUrl, {
                            credentials: 'same-origin',
                            cache: 'no-store',
                            headers: { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' }
                        }).then(function (response) {
                            if (!response.ok) throw new Error('token endpoint answered ' + response.status);
                            return response.json();
                        }).then(function (body) {
                            if (!body || typeof body.token !== 'string') throw new Error('token endpoint sent no token');
                            return body.token;
                        });
                    }
                    // Set on the upgraded element, so the property reaches the element's own setter;
                    // widget.js loads async, so the element is usually upgraded after this runs.
                    if (window.customElements.get('cat-online-clients')) {
                        element.tokenProvider = tokenProvider;
                    } else {
                        window.customElements.whenDefined('cat-online-clients').then(function () {
                            element.tokenProvider = tokenProvider;
                        });
                    }
                })();
            </script>
            <?php } ?>
        </div>
    </div>
</div>
