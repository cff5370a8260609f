-- sweep_at takes expires_at's place in the expiry sweeper's index (see its comment in
-- src/store/schema.ts): with no index on a column a revision moves, a revision updates the
-- context row in place (HOT). Pages keep a fifth free for those in-place versions.
ALTER TABLE "contexts" ADD COLUMN "sweep_at" timestamp (3) with time zone;--> statement-breakpoint
UPDATE "contexts" SET "sweep_at" = "expires_at";--> statement-breakpoint
CREATE INDEX "contexts_live_sweep_at_idx" ON "contexts" USING btree ("sweep_at") WHERE "contexts"."status" <> 'TERMINATED';--> statement-breakpoint
DROP INDEX "contexts_live_expires_at_idx";--> statement-breakpoint
ALTER TABLE "contexts" SET (fillfactor = 80);
