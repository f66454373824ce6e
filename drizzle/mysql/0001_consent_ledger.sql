CREATE TABLE `cat_consents` (
	`id` varchar(36) NOT NULL,
	`contact_id` varchar(128) NOT NULL,
	`client_id` varchar(128) NOT NULL,
	`decision` varchar(16) NOT NULL,
	`version` varchar(64) NOT NULL,
	`locale` varchar(16) NOT NULL,
	`at` bigint NOT NULL,
	`ip` varchar(64) NOT NULL,
	`user_agent` varchar(512) NOT NULL,
	CONSTRAINT `cat_consents_id` PRIMARY KEY(`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE INDEX `cat_consents_contact_idx` ON `cat_consents` (`contact_id`,`at`);