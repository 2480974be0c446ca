CREATE TABLE `video_tort_rule` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`name` varchar(128) NOT NULL,
	`owner_id` bigint unsigned NOT NULL,
	`action` varchar(16) NOT NULL,
	`priority` int NOT NULL DEFAULT 0,
	`min_matched_ms` int unsigned NOT NULL DEFAULT 0,
	`min_ratio_bp` int unsigned NOT NULL DEFAULT 0,
	`min_score` decimal(4,3) NOT NULL DEFAULT '0.000',
	`state` tinyint NOT NULL DEFAULT 1,
	`valid_from` datetime(3),
	`valid_to` datetime(3),
	`is_deleted` tinyint NOT NULL DEFAULT 0,
	`ctime` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`mtime` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `video_tort_rule_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `video_tort_rule_property` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`rule_id` bigint unsigned NOT NULL,
	`kind` varchar(16) NOT NULL,
	`value` varchar(64) NOT NULL,
	`state` tinyint NOT NULL DEFAULT 1,
	`is_deleted` tinyint NOT NULL DEFAULT 0,
	`ctime` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`mtime` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `video_tort_rule_property_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `idx_video_tort_rule_mtime` ON `video_tort_rule` (`mtime`);--> statement-breakpoint
CREATE INDEX `idx_video_tort_rule_property_rule_id` ON `video_tort_rule_property` (`rule_id`);--> statement-breakpoint
CREATE INDEX `idx_video_tort_rule_property_mtime` ON `video_tort_rule_property` (`mtime`);