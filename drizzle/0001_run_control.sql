ALTER TABLE `runs` ADD `params` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `step_params` text;--> statement-breakpoint
CREATE INDEX `runs_retry_of` ON `runs` (`retry_of`);--> statement-breakpoint
CREATE INDEX `runs_finished` ON `runs` (`finished_at`);