ALTER TABLE `cat_sessions` ADD `last_event_id` text;--> statement-breakpoint
ALTER TABLE `cat_sessions` ADD `fold_state` text;