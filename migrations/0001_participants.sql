CREATE TABLE "participants" (
	"participant_id" uuid PRIMARY KEY NOT NULL,
	"context_id" uuid NOT NULL,
	"agent_id" text NOT NULL,
	"participant_type" text NOT NULL,
	"display_name" text NOT NULL,
	"status" text NOT NULL,
	"roles" text[] NOT NULL,
	"capabilities" text[] NOT NULL,
	"metadata" jsonb NOT NULL,
	"joined_at" timestamp (3) with time zone NOT NULL,
	"last_activity_at" timestamp (3) with time zone NOT NULL,
	"lease_expires_at" timestamp (3) with time zone NOT NULL,
	"inactive_since" timestamp (3) with time zone
);
--> statement-breakpoint
DROP INDEX "contexts_expires_at_idx";--> statement-breakpoint
ALTER TABLE "participants" ADD CONSTRAINT "participants_context_id_fkey" FOREIGN KEY ("context_id") REFERENCES "public"."contexts"("context_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "participants_context_agent_key" ON "participants" USING btree ("context_id","agent_id");--> statement-breakpoint
CREATE INDEX "participants_agent_context_idx" ON "participants" USING btree ("agent_id","context_id");--> statement-breakpoint
CREATE INDEX "participants_context_joined_at_id_idx" ON "participants" USING btree ("context_id","joined_at","participant_id");--> statement-breakpoint
CREATE INDEX "participants_active_lease_idx" ON "participants" USING btree ("lease_expires_at") WHERE "participants"."status" = 'ACTIVE';--> statement-breakpoint
CREATE INDEX "participants_inactive_since_idx" ON "participants" USING btree ("inactive_since") WHERE "participants"."status" = 'INACTIVE';--> statement-breakpoint
CREATE INDEX "contexts_live_expires_at_idx" ON "contexts" USING btree ("expires_at") WHERE "contexts"."status" <> 'TERMINATED';--> statement-breakpoint
CREATE INDEX "contexts_terminated_at_idx" ON "contexts" USING btree ("terminated_at") WHERE "contexts"."status" = 'TERMINATED';