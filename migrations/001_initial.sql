-- The system of record. Instants are microseconds since the Unix epoch (bigint), exactly the
-- engine's `Instant`, so every value round-trips unchanged.

-- The hot store's generation: bumped by every rebuild; writes carrying an older one are refused.
CREATE TABLE fence (
    id         int PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL
);
INSERT INTO fence (id, generation) VALUES (1, 0);

-- Every checkout attempt with well-formed parameters, whatever it answered.
CREATE TABLE checkout_attempts (
    attempt_id   text PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order (first hold of a code wins)
    sale_id      bigint NOT NULL,
    item_id      int NOT NULL,
    user_id      text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('held', 'sold_out', 'item_sold', 'user_limit_reached', 'item_held')),
    code         text NULL,
    expires_at   bigint NULL,
    attempted_at bigint NOT NULL
);
CREATE INDEX checkout_attempts_code ON checkout_attempts (code);
CREATE INDEX checkout_attempts_live_holds ON checkout_attempts (sale_id, expires_at) WHERE outcome = 'held';

-- Completed purchases: one per code, one per item of a sale (the last line of defence of S1).
CREATE TABLE purchases (
    code         text PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    sale_id      bigint NOT NULL,
    item_id      int NOT NULL,
    user_id      text NOT NULL,
    purchased_at bigint NOT NULL,
    UNIQUE (sale_id, item_id)
);
CREATE INDEX purchases_sale_user ON purchases (sale_id, user_id);
