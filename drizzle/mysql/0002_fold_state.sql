ALTER TABLE `cat_sessions` ADD `last_event_id` varchar(32);--> statement-breakpoint
ALTER TABLE `cat_sessions` ADD `fold_state` mediumtext;