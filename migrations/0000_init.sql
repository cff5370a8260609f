CREATE TABLE "context_events" (
	"context_id" uuid NOT NULL,
	"revision" bigint NOT NULL,
	"seq" integer NOT NULL,
	"event_id" uuid NOT NULL,
	"type" text NOT NULL,
	"actor" text NOT NULL,
	"occurred_at" timestamp (3) with time zone NOT NULL,
	"reason" text NOT NULL,
	"payload" jsonb NOT NULL,
	CONSTRAINT "context_events_pkey" PRIMARY KEY("context_id","revision","seq")
);
--> statement-breakpoint
CREATE TABLE "contexts" (
	"context_id" uuid PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"name" text NOT NULL,
	"description" text NOT NULL,
	"type" text NOT NULL,
	"status" text NOT NULL,
	"lifecycle_stage" text NOT NULL,
	"configuration" jsonb NOT NULL,
	"access_control" jsonb NOT NULL,
	"metadata" jsonb NOT NULL,
	"tags" text[] NOT NULL,
	"shared_state" jsonb NOT NULL,
	"visibility" text NOT NULL,
	"participant_count" integer NOT NULL,
	"session_count" integer NOT NULL,
	"revision" bigint NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL,
	"updated_at" timestamp (3) with time zone NOT NULL,
	"last_activity_at" timestamp (3) with time zone NOT NULL,
	"expires_at" timestamp (3) with time zone,
	"terminated_at" timestamp (3) with time zone
);
--> statement-breakpoint
CREATE TABLE "request_keys" (
	"principal" text NOT NULL,
	"request_id" text NOT NULL,
	"method" text NOT NULL,
	"result" jsonb,
	"created_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "request_keys_pkey" PRIMARY KEY("principal","request_id")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "contexts_owner_name_live_key" ON "contexts" USING btree ("owner","name") WHERE "contexts"."status" <> 'TERMINATED';--> statement-breakpoint
CREATE INDEX "contexts_created_at_id_idx" ON "contexts" USING btree ("created_at" DESC NULLS FIRST,"context_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "contexts_owner_created_at_id_idx" ON "contexts" USING btree ("owner","created_at" DESC NULLS FIRST,"context_id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "contexts_tags_idx" ON "contexts" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "contexts_expires_at_idx" ON "contexts" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "request_keys_created_at_idx" ON "request_keys" USING btree ("created_at");