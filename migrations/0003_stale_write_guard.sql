-- A single-statement write (src/store/change-sql.ts) that changed its context but could not claim
-- its request key (another call with the same key committed after the statement's snapshot was
-- taken) must not commit: calling this aborts the statement, and with it every other part of the
-- write. Plain SQL has no RAISE.
CREATE FUNCTION mplp_request_key_taken() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the request key was taken by a concurrent call' USING ERRCODE = 'MP001';
END
$$;
