-- The durable backstop of the user limit (S2). The hot store decides the limit; PostgreSQL refuses
-- to record a purchase that would give its user more items of a sale than the limit the purchase
-- was decided under, whatever happened to the hot store (an undetected loss of a user's record
-- cannot turn into an eleventh purchase). Counted per (sale, user) in a row the insert locks, so
-- concurrent group commits on several connections are serialised on it.
ALTER TABLE purchases ADD COLUMN user_limit int NULL;

CREATE TABLE user_purchase_counts (
    sale_id   bigint NOT NULL,
    user_id   text NOT NULL,
    purchased int NOT NULL,
    PRIMARY KEY (sale_id, user_id)
);
INSERT INTO user_purchase_counts (sale_id, user_id, purchased)
    SELECT sale_id, user_id, count(*) FROM purchases GROUP BY sale_id, user_id;

-- AFTER INSERT: fires only for rows really inserted (not for an idempotent retry that ON CONFLICT
-- skipped). A breach aborts the insert with check_violation (23514).
CREATE FUNCTION count_user_purchase() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owned int;
BEGIN
    INSERT INTO user_purchase_counts AS c (sale_id, user_id, purchased) VALUES (NEW.sale_id, NEW.user_id, 1)
    ON CONFLICT (sale_id, user_id) DO UPDATE SET purchased = c.purchased + 1
    RETURNING purchased INTO owned;
    IF NEW.user_limit IS NOT NULL AND owned > NEW.user_limit THEN
        RAISE EXCEPTION 'user % would own % items of sale % (limit %)', NEW.user_id, owned, NEW.sale_id, NEW.user_limit
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER purchases_user_limit AFTER INSERT ON purchases FOR EACH ROW EXECUTE FUNCTION count_user_purchase();
