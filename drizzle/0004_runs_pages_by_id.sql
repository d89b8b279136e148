DROP INDEX `runs_status_created`;--> statement-breakpoint
DROP INDEX `runs_workflow_created`;--> statement-breakpoint
CREATE INDEX `runs_status_id` ON `runs` (`status`,`id`);--> statement-breakpoint
CREATE INDEX `runs_workflow_id` ON `runs` (`workflow_id`,`id`);