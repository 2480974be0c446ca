-- drizzle cannot express ON UPDATE on a DATETIME column: spec section 2 wants
-- mtime refreshed to the millisecond on every update (the incremental refresh reads it).
ALTER TABLE `video_tort_rule` MODIFY `mtime` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3);
--> statement-breakpoint
ALTER TABLE `video_tort_rule_property` MODIFY `mtime` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3);
