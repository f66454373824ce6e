<?php defined('BASEPATH') or exit('No direct script access allowed'); ?>
<?php
$cat_e      = static function ($text) {
    return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8');
};
$cat_base   = parse_url(base_url());
$cat_origin = ($cat_base['scheme'] ?? 'https') . '://' . ($cat_base['host'] ?? '') . (isset($cat_base['port']) ? ':' . $cat_base['port'] : '');
/*
 * A secret's field: never filled in (the stored value is not sent back), where the secret in
 * use comes from ($source: 'option', 'env' or ''), and a box to clear one set here. $name is
 * also the stem of its language strings.
 */
$cat_secret_field = static function ($name, $help, $source) use ($cat_e) {
    ?>
<div class="form-group">
                            <label for="<?php echo $name; ?>"><?php echo $cat_e(_l($name)); ?></label>
                            <input type="password" class="form-control" id="<?php echo $name; ?>" name="<?php echo $name; ?>" value=""
                                autocomplete="new-password" minlength="16">
                            <p class="help-block"><?php echo $cat_e($help); ?></p>
                            <p class="help-block"><strong><?php
                                echo $cat_e(_l($name . ($source === 'option' ? '_source_option' : ($source === 'env' ? '_source_env' : '_source_none'))));
                            ?></strong></p>
                            <?php if ($source === 'option') { ?>
                            <div class="checkbox">
                                <input type="checkbox" id="<?php echo $name; ?>_clear" name="<?php echo $name; ?>_clear" value="1">
                                <label for="<?php echo $name; ?>_clear"><?php echo $cat_e(_l($name . '_clear')); ?></label>
                            </div>
                            <?php } ?>
                        </div>
<?php
};
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
                        <?php $cat_secret_field('cat_secret', _l('cat_secret_help'), $secret_source); ?>
                        <?php $cat_secret_field('cat_webhook_secret', _l('cat_webhook_secret_help', site_url(CAT_MODULE_NAME . '/cat_webhook')), $webhook_source); ?>
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
