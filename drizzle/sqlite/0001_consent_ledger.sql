CREATE TABLE `cat_consents` (
	`id` text PRIMARY KEY NOT NULL,
	`contact_id` text NOT NULL,
	`client_id` text NOT NULL,
	`decision` text NOT NULL,
	`version` text NOT NULL,
	`locale` text NOT NULL,
	`at` integer NOT NULL,
	`ip` text NOT NULL,
	`user_agent` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `cat_consents_contact_idx` ON `cat_consents` (`contact_id`,`at`);