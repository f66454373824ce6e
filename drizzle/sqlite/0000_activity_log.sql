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
CREATE INDEX `cat_consents_contact_idx` ON `cat_consents` (`contact_id`,`at`);--> statement-breakpoint
CREATE TABLE `cat_contacts` (
	`contact_id` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`open_session_id` text,
	`last_event_id` text
);
--> statement-breakpoint
CREATE TABLE `cat_erasures` (
	`contact_id` text PRIMARY KEY NOT NULL,
	`erased_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `cat_events` (
	`id` text PRIMARY KEY NOT NULL,
	`contact_id` text NOT NULL,
	`client_id` text NOT NULL,
	`sid` text NOT NULL,
	`type` text NOT NULL,
	`path` text NOT NULL,
	`title` text NOT NULL,
	`at` integer NOT NULL,
	`from_at` integer,
	`name` text,
	`company` text,
	`reason` text
);
--> statement-breakpoint
CREATE INDEX `cat_events_contact_idx` ON `cat_events` (`contact_id`,`id`);--> statement-breakpoint
CREATE INDEX `cat_events_at_idx` ON `cat_events` (`at`);--> statement-breakpoint
CREATE TABLE `cat_online_samples` (
	`t` integer PRIMARY KEY NOT NULL,
	`online` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `cat_page_visits` (
	`id` text PRIMARY KEY NOT NULL,
	`session_id` text NOT NULL,
	`contact_id` text NOT NULL,
	`sid` text NOT NULL,
	`path` text NOT NULL,
	`title` text NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`visible_ms` integer DEFAULT 0 NOT NULL,
	`visible_since` integer
);
--> statement-breakpoint
CREATE INDEX `cat_page_visits_session_idx` ON `cat_page_visits` (`session_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cat_page_visits_contact_idx` ON `cat_page_visits` (`contact_id`);--> statement-breakpoint
CREATE TABLE `cat_sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`contact_id` text NOT NULL,
	`client_id` text NOT NULL,
	`name` text DEFAULT '' NOT NULL,
	`company` text DEFAULT '' NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`visible_ms` integer DEFAULT 0 NOT NULL,
	`visible_since` integer,
	`end_reason` text,
	`pages_count` integer DEFAULT 0 NOT NULL,
	`last_event_at` integer NOT NULL,
	`last_event_id` text,
	`fold_state` text
);
--> statement-breakpoint
CREATE INDEX `cat_sessions_contact_idx` ON `cat_sessions` (`contact_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cat_sessions_client_idx` ON `cat_sessions` (`client_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cat_sessions_started_idx` ON `cat_sessions` (`started_at`);