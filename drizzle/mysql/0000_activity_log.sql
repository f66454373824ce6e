-- Table options added by hand after drizzle-kit generate (it has none): utf8mb4 whatever the
-- server default, and byte-wise (case-sensitive) comparison of ids, as in SQLite. See schema-mysql.ts.
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
CREATE TABLE `cat_contacts` (
	`contact_id` varchar(128) NOT NULL,
	`client_id` varchar(128) NOT NULL,
	`open_session_id` varchar(32),
	`last_event_id` varchar(32),
	CONSTRAINT `cat_contacts_contact_id` PRIMARY KEY(`contact_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE TABLE `cat_erasures` (
	`contact_id` varchar(128) NOT NULL,
	`erased_at` bigint NOT NULL,
	CONSTRAINT `cat_erasures_contact_id` PRIMARY KEY(`contact_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE TABLE `cat_events` (
	`id` varchar(32) NOT NULL,
	`contact_id` varchar(128) NOT NULL,
	`client_id` varchar(128) NOT NULL,
	`sid` varchar(64) NOT NULL,
	`type` varchar(8) NOT NULL,
	`path` varchar(2048) NOT NULL,
	`title` varchar(512) NOT NULL,
	`at` bigint NOT NULL,
	`from_at` bigint,
	`name` varchar(200),
	`company` varchar(200),
	`reason` varchar(16),
	CONSTRAINT `cat_events_id` PRIMARY KEY(`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE TABLE `cat_online_samples` (
	`t` bigint NOT NULL,
	`online` int NOT NULL,
	CONSTRAINT `cat_online_samples_t` PRIMARY KEY(`t`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE TABLE `cat_page_visits` (
	`id` varchar(32) NOT NULL,
	`session_id` varchar(32) NOT NULL,
	`contact_id` varchar(128) NOT NULL,
	`sid` varchar(64) NOT NULL,
	`path` varchar(2048) NOT NULL,
	`title` varchar(512) NOT NULL,
	`started_at` bigint NOT NULL,
	`ended_at` bigint,
	`visible_ms` bigint NOT NULL DEFAULT 0,
	`visible_since` bigint,
	CONSTRAINT `cat_page_visits_id` PRIMARY KEY(`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE TABLE `cat_sessions` (
	`id` varchar(32) NOT NULL,
	`contact_id` varchar(128) NOT NULL,
	`client_id` varchar(128) NOT NULL,
	`name` varchar(200) NOT NULL DEFAULT '',
	`company` varchar(200) NOT NULL DEFAULT '',
	`started_at` bigint NOT NULL,
	`ended_at` bigint,
	`visible_ms` bigint NOT NULL DEFAULT 0,
	`visible_since` bigint,
	`end_reason` varchar(16),
	`pages_count` int NOT NULL DEFAULT 0,
	`last_event_at` bigint NOT NULL,
	`last_event_id` varchar(32),
	`fold_state` mediumtext,
	CONSTRAINT `cat_sessions_id` PRIMARY KEY(`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
--> statement-breakpoint
CREATE INDEX `cat_consents_contact_idx` ON `cat_consents` (`contact_id`,`at`);--> statement-breakpoint
CREATE INDEX `cat_events_contact_idx` ON `cat_events` (`contact_id`,`id`);--> statement-breakpoint
CREATE INDEX `cat_events_at_idx` ON `cat_events` (`at`);--> statement-breakpoint
CREATE INDEX `cat_page_visits_session_idx` ON `cat_page_visits` (`session_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cat_page_visits_contact_idx` ON `cat_page_visits` (`contact_id`);--> statement-breakpoint
CREATE INDEX `cat_sessions_contact_idx` ON `cat_sessions` (`contact_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cat_sessions_client_idx` ON `cat_sessions` (`client_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cat_sessions_started_idx` ON `cat_sessions` (`started_at`);