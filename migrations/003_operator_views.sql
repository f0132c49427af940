-- A database an operator can read. The raw tables stay exactly as the server writes them (bigint
-- microseconds since the Unix epoch, the engine's `Instant`); these views put times as timestamptz
-- and answer the questions asked during and after a drop directly. Views only: nothing here is on
-- the server's write path, and nothing is stored twice.
--
-- What the database does NOT know: a sale's start and end (they follow from the sale id and the
-- server's SALE_LENGTH, which is configuration: see sale_start below) and its number of items
-- (itemsPerSale, also configuration). The views give what the rows say.

-- A raw instant as a time: exact to the microsecond (integer arithmetic on an interval, no float
-- division). NULL stays NULL.
CREATE FUNCTION micros_to_timestamptz(micros bigint) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN timestamptz 'epoch' + micros * interval '1 microsecond';

-- The inverse, for filtering the raw tables by a time:
--   SELECT count(*) FROM purchases WHERE purchased_at >= timestamptz_to_micros(now() - interval '1 hour');
CREATE FUNCTION timestamptz_to_micros(t timestamptz) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (extract(epoch FROM t) * 1000000)::bigint;

-- When sale `sale_id` starts, given the sale length the servers run with (SALE_LENGTH, default
-- one hour): sale n covers [n·L, (n+1)·L). The database cannot know L, so the caller says it:
--   SELECT sale_id, sale_start(sale_id, interval '1 hour') FROM sales;
CREATE FUNCTION sale_start(sale_id bigint, sale_length interval) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN micros_to_timestamptz(sale_id * timestamptz_to_micros(timestamptz 'epoch' + sale_length));

-- Every checkout attempt with well-formed parameters, whatever it answered. `outcome` is the
-- answer: held (a code was handed out), or a refusal (sold_out, item_sold, item_held,
-- user_limit_reached). `code` and `expires_at` are set only for `held`.
CREATE VIEW attempts AS
SELECT attempt_id,
       seq,
       sale_id,
       item_id,
       user_id,
       outcome,
       code,
       micros_to_timestamptz(attempted_at) AS attempted_at,
       micros_to_timestamptz(expires_at)   AS expires_at
FROM checkout_attempts;
COMMENT ON VIEW attempts IS 'checkout_attempts with attempted_at and expires_at as timestamptz';

-- Every completed purchase: one row per item sold (one per code, one per item of a sale).
-- `user_limit` is the per-user limit the purchase was decided under (NULL for rows written before
-- migration 002).
CREATE VIEW sold_items AS
SELECT code,
       seq,
       sale_id,
       item_id,
       user_id,
       micros_to_timestamptz(purchased_at) AS purchased_at,
       user_limit
FROM purchases;
COMMENT ON VIEW sold_items IS 'purchases with purchased_at as timestamptz: one row per item sold';

-- One row per sale id that has any attempt or purchase: what ran and how it went.
--   items_sold           purchases recorded (the number of items sold)
--   buyers               distinct users with a purchase
--   first/last_purchase_at
--   attempts, holds      checkout attempts, and those that handed out a code
--   first/last_attempt_at
--   first_sold_out_at    the first checkout answered sold_out, which the server answers only once
--                        every item of the sale is sold: when it is set, the sale sold out and
--                        last_purchase_at is its sell-out time. NULL: no one was told sold_out (the
--                        sale may still have sold out with no one asking afterwards; compare
--                        items_sold with the configured items per sale).
CREATE VIEW sales AS
WITH p AS (
    SELECT sale_id,
           count(*)                AS items_sold,
           count(DISTINCT user_id) AS buyers,
           min(purchased_at)       AS first_purchase,
           max(purchased_at)       AS last_purchase
    FROM purchases GROUP BY sale_id
), a AS (
    SELECT sale_id,
           count(*)                                       AS attempts,
           count(*) FILTER (WHERE outcome = 'held')       AS holds,
           min(attempted_at)                              AS first_attempt,
           max(attempted_at)                              AS last_attempt,
           min(attempted_at) FILTER (WHERE outcome = 'sold_out') AS first_sold_out
    FROM checkout_attempts GROUP BY sale_id
)
SELECT coalesce(a.sale_id, p.sale_id)               AS sale_id,
       coalesce(p.items_sold, 0)                    AS items_sold,
       coalesce(p.buyers, 0)                        AS buyers,
       micros_to_timestamptz(p.first_purchase)      AS first_purchase_at,
       micros_to_timestamptz(p.last_purchase)       AS last_purchase_at,
       coalesce(a.attempts, 0)                      AS attempts,
       coalesce(a.holds, 0)                         AS holds,
       micros_to_timestamptz(a.first_attempt)       AS first_attempt_at,
       micros_to_timestamptz(a.last_attempt)        AS last_attempt_at,
       micros_to_timestamptz(a.first_sold_out)      AS first_sold_out_at
FROM a FULL OUTER JOIN p ON p.sale_id = a.sale_id;
COMMENT ON VIEW sales IS 'one row per sale id seen: items sold, buyers, attempts, first/last times';

-- How many checkout attempts each refusal reason got, per sale (held attempts are not refusals:
-- see sales.holds). One row per (sale, reason) that occurred.
CREATE VIEW refusals_by_reason AS
SELECT sale_id,
       outcome                                  AS reason,
       count(*)                                 AS refusals,
       micros_to_timestamptz(min(attempted_at)) AS first_at,
       micros_to_timestamptz(max(attempted_at)) AS last_at
FROM checkout_attempts
WHERE outcome <> 'held'
GROUP BY sale_id, outcome;
COMMENT ON VIEW refusals_by_reason IS 'per sale and refusal reason (non-held outcome): how many attempts';

-- Who bought what: per sale and user, the items bought (count and item ids, ascending).
CREATE VIEW user_purchases AS
SELECT sale_id,
       user_id,
       count(*)                                  AS items_bought,
       array_agg(item_id ORDER BY item_id)       AS item_ids,
       micros_to_timestamptz(min(purchased_at))  AS first_purchase_at,
       micros_to_timestamptz(max(purchased_at))  AS last_purchase_at
FROM purchases
GROUP BY sale_id, user_id;
COMMENT ON VIEW user_purchases IS 'per sale and user: items bought';
