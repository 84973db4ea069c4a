-- The scan limit of scripts/bench-audit.sh: a bare parallel scan of audit_logs that
-- parses each row's `details` once (its email), and counts. No audit can be faster on
-- PostgreSQL: every rule needs at least this (the unparseable count reads every row).
-- A document with a \u0000 escape is skipped by a byte search (->> cannot read it).
-- psql -X -q -tA -f scripts/bench-audit-limit.sql URL
\set ON_ERROR_STOP on
SET jit = off;
SELECT count(*) FROM audit_logs
WHERE CASE WHEN strpos(details::text, E'\\u0000') = 0 THEN details->>'email' IS NULL END;
