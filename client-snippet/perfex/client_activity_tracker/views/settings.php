<?php defined('BASEPATH') or exit('No direct script access allowed'); ?>
<?php
$cat_e      = static function ($text) {
    return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8');
};
$cat_base   = parse_url(base_url());
$cat_origin = ($cat_base['scheme'] ?? 'https') . '://' . ($cat_base['host'] ?? '') . (isset($cat_base['port']) ? ':' . $cat_base['port'] : '');
?>
<?php init_head(); ?>
<div id="wrapper">
    <div class="content">
        <div class="row">
            <div class="col-md-8 col-md-offset-2">
                <h4 class="tw-mt-0 tw-font-semibold tw-text-lg tw-text-neutral-700"><?php echo $cat_e($title); ?></h4>
                <div class="panel_s">
                    <div class="panel-body">
                        <?php echo form_open(admin_url(CAT_MODULE_NAME . '/settings'), ['autocomplete' => 'off']); ?>
                        <div class="form-group">
                            <label for="cat_server_url"><?php echo $cat_e(_l('cat_server_url')); ?></label>
                            <input type="url" class="form-control" id="cat_server_url" name="cat_server_url"
                                value="<?php echo $cat_e($server_url); ?>" placeholder="https://presence.example.com">
                            <p class="help-block"><?php echo $cat_e(_l('cat_server_url_help', $cat_origin)); ?></p>
                        </div>
                        <div class="form-group">
                            <label for="cat_secret"><?php echo $cat_e(_l('cat_secret')); ?></label>
                            <input type="password" class="form-control" id="cat_secret" name="cat_secret" value=""
                                autocomplete="new-password" minlength="16">
                            <p class="help-block"><?php echo $cat_e(_l('cat_secret_help')); ?></p>
                            <p class="help-block"><strong><?php
                                echo $cat_e(_l($secret_source === 'option' ? 'cat_secret_source_option' : ($secret_source === 'env' ? 'cat_secret_source_env' : 'cat_secret_source_none')));
                            ?></strong></p>
                            <?php if ($secret_source === 'option') { ?>
                            <div class="checkbox">
                                <input type="checkbox" id="cat_secret_clear" name="cat_secret_clear" value="1">
                                <label for="cat_secret_clear"><?php echo $cat_e(_l('cat_secret_clear')); ?></label>
                            </div>
                            <?php } ?>
                        </div>
                        <div class="form-group">
                            <label for="cat_webhook_secret"><?php echo $cat_e(_l('cat_webhook_secret')); ?></label>
                            <input type="password" class="form-control" id="cat_webhook_secret" name="cat_webhook_secret" value=""
                                autocomplete="new-password" minlength="16">
                            <p class="help-block"><?php echo $cat_e(_l('cat_webhook_secret_help', site_url(CAT_MODULE_NAME . '/cat_webhook'))); ?></p>
                            <p class="help-block"><strong><?php
                                echo $cat_e(_l($webhook_source === 'option' ? 'cat_webhook_secret_source_option' : ($webhook_source === 'env' ? 'cat_webhook_secret_source_env' : 'cat_webhook_secret_source_none')));
                            ?></strong></p>
                            <?php if ($webhook_source === 'option') { ?>
                            <div class="checkbox">
                                <input type="checkbox" id="cat_webhook_secret_clear" name="cat_webhook_secret_clear" value="1">
                                <label for="cat_webhook_secret_clear"><?php echo $cat_e(_l('cat_webhook_secret_clear')); ?></label>
                            </div>
                            <?php } ?>
                        </div>
                        <button type="submit" class="btn btn-primary"><?php echo $cat_e(_l('submit')); ?></button>
                        <?php echo form_close(); ?>
                    </div>
                </div>
                <div class="panel_s" id="cat-server-settings">
                    <div class="panel-body">
                        <h4 class="tw-mt-0 tw-font-semibold"><?php echo $cat_e(_l('cat_server_settings')); ?></h4>
                        <p><?php echo $cat_e(_l('cat_server_settings_help')); ?></p>
                        <?php if ($server_set) { ?>
                        <a class="btn btn-default" href="<?php echo $cat_e(admin_url(CAT_MODULE_NAME . '/server_settings')); ?>" target="_blank" rel="noopener noreferrer"><?php echo $cat_e(_l('cat_server_settings_open')); ?></a>
                        <?php } else { ?>
                        <p class="text-muted"><?php echo $cat_e(_l('cat_server_settings_unset')); ?></p>
                        <?php } ?>
                    </div>
                </div>
            </div>
        </div>
    </div>
</div>
<?php init_tail(); ?>
</body>
</html>
