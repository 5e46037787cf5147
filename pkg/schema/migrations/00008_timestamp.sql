-- +goose Up
-- Timestamps: the usage object's "timestamp" key becomes timestamptz (an
-- instant to the microsecond) instead of the text the file wrote, so two
-- events of one day at different times are two rows, and one event written
-- with two offsets (10:00Z, 11:00+01:00) is one row. Custom attributes of
-- type TIMESTAMP are timestamptz columns too (no change needed here).
--
-- Existing values are read as PostgreSQL reads ISO 8601 text (the format the
-- docs recommended): 2024-03-01T10:15:00Z, 2024-03-01 10:15:00+02,
-- 2024-03-01 (midnight). A value without a zone is taken as UTC. Rows that
-- become the same key (the same instant written differently) keep the one
-- imported first, as the append-only merge would have. A value PostgreSQL
-- cannot read fails the migration, naming the value and leaving everything
-- as it was: fix or delete that row, then migrate again.
SET LOCAL TimeZone = 'UTC';

-- +goose StatementBegin
DO $$
BEGIN
    DELETE FROM objects.usage
    WHERE ctid IN (
        SELECT ctid FROM (
            SELECT ctid, row_number() OVER (
                PARTITION BY account_id, user_id, activity, module, "timestamp"::timestamptz
                ORDER BY _updated_at, ctid) AS n
            FROM objects.usage) d
        WHERE n > 1);
    -- The primary key's index is rebuilt on the new type.
    ALTER TABLE objects.usage ALTER COLUMN "timestamp" TYPE timestamptz USING "timestamp"::timestamptz;
EXCEPTION
    WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_time_zone_displacement_value THEN
        RAISE EXCEPTION 'objects.usage: a "timestamp" is not a date and time PostgreSQL can read: %', SQLERRM
            USING HINT = 'Fix or delete the row (SELECT * FROM objects.usage WHERE "timestamp" = ''the value''), then migrate again.';
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Back to text, written as RFC 3339 in UTC (2024-03-01T10:15:00Z, with the
-- fraction of a second when there is one).
SET LOCAL TimeZone = 'UTC';
ALTER TABLE objects.usage ALTER COLUMN "timestamp" TYPE text
    USING regexp_replace(to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '\.?0+$', '') || 'Z';
