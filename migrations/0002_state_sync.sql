CREATE TABLE "state_snapshots" (
	"context_id" uuid NOT NULL,
	"revision" bigint NOT NULL,
	"state" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "state_snapshots_pkey" PRIMARY KEY("context_id","revision")
);
--> statement-breakpoint
ALTER TABLE "contexts" ADD COLUMN "compact_revision" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "contexts" ADD COLUMN "state_snapshot_revision" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "state_snapshots" ADD CONSTRAINT "state_snapshots_context_id_fkey" FOREIGN KEY ("context_id") REFERENCES "public"."contexts"("context_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "context_events_deleted_at_idx" ON "context_events" USING btree ("occurred_at") WHERE "context_events"."type" = 'CONTEXT_DELETED';