-- Open banking (issue 13): a partner's daily call quota (NULL: unlimited), counted from ob_usage.
ALTER TABLE ob_partners ADD COLUMN daily_quota BIGINT;
