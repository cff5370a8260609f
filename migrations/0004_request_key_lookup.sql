-- The live request key (principal, request_id) — its method and saved result — looked up by the
-- primary key whatever the planner thinks of request_keys' size. Every write statement checks its
-- key (src/store/change-sql.ts); written inline, the check was planned once per connection (a
-- prepared statement's generic plan) while the table was small — a sequential scan is cheaper than
-- an index for a page or two — and that plan was kept while the table grew by every write until
-- autovacuum's next ANALYZE: measured on Postgres 15, 30,000 keys in a minute of AddParticipant
-- made each write scan 2,400 pages twice (13 of its 14 ms). The function's own plan is made with
-- sequential scans disabled, so it is the index lookup from the first call on. STABLE: it reads
-- with the calling statement's snapshot.
CREATE FUNCTION mplp_request_key(key_principal text, key_request_id text, live_since timestamptz)
RETURNS TABLE (method text, result jsonb)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
AS $$
BEGIN
  RETURN QUERY
    SELECT k.method, k.result FROM request_keys k
    WHERE k.principal = key_principal AND k.request_id = key_request_id AND k.created_at >= live_since;
END
$$;
