"""The one verifier of what the clients were told against what PostgreSQL kept: the crash drill's
checks of S1-S5 (and what can be seen of S6/S7) and the benchmark's post-checks (scripts/bench-report.py)
both live here (docs/drill.md, docs/bench.md).

The clients' record is a history as sale-load --history writes it (docs/histories.md): one JSON
object per request, times in microseconds since the epoch. PostgreSQL's rows come from psql. The
checks are pure functions of both, so that the unit tests (test_verifier.py) can show each one
failing. Standard library only.
"""
import collections
import json
import re
import subprocess

# --------------------------------------------------------------------------------------------
# inputs


def load_history(path):
    """The operations of a history file (a rules line, if any, is skipped)."""
    ops = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                op = json.loads(line)
                if op.get("op") != "rules":
                    ops.append(op)
    return ops


def psql(url, sql, preexec_fn=None):
    r = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=120, preexec_fn=preexec_fn)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


PURCHASES_SQL = "SELECT code, sale_id, item_id, user_id, purchased_at FROM purchases ORDER BY seq"
ATTEMPTS_SQL = ("SELECT attempt_id, sale_id, item_id, user_id, outcome, coalesce(code,''), "
                "coalesce(expires_at::text,''), attempted_at FROM checkout_attempts ORDER BY seq")


def ms(us):
    """Microseconds to whole milliseconds (the API's times have millisecond precision)."""
    return int(us) // 1000


# --------------------------------------------------------------------------------------------
# the drill: the history against PostgreSQL


def check_sale(ops, purchases, attempts, sale_id, items, user_limit):
    """S1-S5 (and what can be seen of S6/S7) from the history `ops` and PostgreSQL's `purchases`
    (code, sale, item, user, purchased_at µs) and `attempts` (attempt_id, sale, item, user,
    outcome, code, expires_at µs, attempted_at) rows. Returns (problems, figures)."""
    problems = []
    per_item = collections.defaultdict(list)
    per_user = collections.defaultdict(list)
    per_sale = collections.Counter()
    pg_by_code = {}
    for code, s, item, user, at in purchases:
        per_item[(s, item)].append(code)
        per_user[(s, user)].append(code)
        per_sale[s] += 1
        pg_by_code[code] = (int(s), int(item), user, int(at))
    oversold = [(k, v) for k, v in per_item.items() if len(v) > 1]
    overlimit = [(k, v) for k, v in per_user.items() if len(v) > user_limit]
    for k, v in oversold:
        problems.append(f"S1 item sold twice in PostgreSQL: sale/item {k}: codes {v}")
    for k, v in overlimit:
        problems.append(f"S2 user over the limit in PostgreSQL: sale/user {k}: {len(v)} purchases")
    for s, n in per_sale.items():
        if n > items:
            problems.append(f"S3 sale {s} sold {n} > {items} items")

    purchases_200 = [op for op in ops if op["op"] == "purchase" and op.get("status") == 200]
    checkouts_200 = {}        # code -> first 200 checkout
    answers_200 = collections.Counter()
    refusals = collections.Counter()
    for op in ops:
        if op["op"] != "checkout" or op.get("complete") is None:
            continue
        if op.get("status") == 200:
            code = op["result_code"]
            first = checkouts_200.setdefault(code, op)
            answers_200[code] += 1
            if (first["user"], first["item"]) != (op["user"], op["item"]):
                problems.append(f"S7 one code handed to two holders: {json.dumps(first)} / {json.dumps(op)}")
        elif op.get("status") in (403, 409):
            refusals[(sale_id, op["item"], op["user"], op.get("error"))] += 1

    acked_items = collections.defaultdict(set)
    acked_users = collections.defaultdict(set)
    for op in purchases_200:
        acked_items[(op["result_sale"], op["result_item"])].add(op["code"])
        acked_users[(op["result_sale"], op["result_user"])].add(op["code"])
    client_oversold = [(k, v) for k, v in acked_items.items() if len(v) > 1]
    client_overlimit = [(k, v) for k, v in acked_users.items() if len(v) > user_limit]
    for k, v in client_oversold:
        problems.append(f"S1 clients were told they bought the same item with different codes: {k}: {sorted(v)}")
    for k, v in client_overlimit:
        problems.append(f"S2 one user was acknowledged {len(v)} purchases in sale {k[0]}: {k[1]}")

    # S4: every acknowledged purchase is in PostgreSQL, same sale/item/user and purchased_at
    lost, seen = set(), set()
    for op in purchases_200:
        key = (op["code"], op["result_sale"], op["result_item"], op["result_user"], op["purchased_at"])
        if key in seen:
            continue
        seen.add(key)
        row = pg_by_code.get(op["code"])
        if row is None:
            lost.add(op["code"])
            problems.append(f"S4 acknowledged purchase missing from PostgreSQL: {json.dumps(op)}")
        elif row[:3] != (op["result_sale"], op["result_item"], op["result_user"]):
            lost.add(op["code"])
            problems.append(f"S4 acknowledged purchase differs in PostgreSQL: ack {json.dumps(op)} row {row}")
        elif ms(row[3]) != ms(op["purchased_at"]):
            problems.append(f"S4 purchased_at differs: ack {op['purchased_at']} row {row[3]}")

    # a completed code answers 200 forever; no code is sold after a 410 for it was received
    first_ok, first_expired = {}, {}
    for op in purchases_200:
        first_ok[op["code"]] = min(first_ok.get(op["code"], op["complete"]), op["complete"])
    for op in ops:
        if op["op"] == "purchase" and op.get("status") == 410:
            first_expired[op["code"]] = min(first_expired.get(op["code"], op["complete"]), op["complete"])
    for op in ops:
        if op["op"] == "purchase" and op.get("status") in (404, 410) and op["code"] in first_ok \
                and op["invoke"] > first_ok[op["code"]]:
            problems.append(f"S7 completed code answered {op['status']} afterwards: {json.dumps(op)}")
    for op in purchases_200:
        if op["code"] in first_expired and op["complete"] > first_expired[op["code"]]:
            problems.append(f"S6 code sold after a 410 for it: {json.dumps(op)}")
    # S7: a purchase buys the checkout's own item for its own user
    for op in purchases_200:
        c = checkouts_200.get(op["code"])
        if c is not None and (c["item"], c["user"]) != (op["result_item"], op["result_user"]):
            problems.append(f"S7 code bought another item/user: checkout {json.dumps(c)} purchase {json.dumps(op)}")

    # S5: every acknowledged checkout answer is in checkout_attempts
    held_by_code = collections.defaultdict(list)
    pg_refusals = collections.Counter()
    for _aid, s, item, user, outcome, code, exp, _at in attempts:
        if outcome == "held":
            held_by_code[code].append((int(s), int(item), user, int(exp) if exp else None))
        else:
            pg_refusals[(int(s), int(item), user, outcome)] += 1
    missing_attempts = 0
    for code, op in checkouts_200.items():
        rows = held_by_code.get(code) or []
        matching = [1 for s, i, u, e in rows
                    if (s, i, u) == (op.get("sale", sale_id), op["item"], op["user"]) and e is not None
                    and ms(e) == ms(op["expires_at"])]
        if not rows:
            missing_attempts += answers_200[code]
            problems.append(f"S5 handed-out code not in checkout_attempts: {json.dumps(op)}")
        elif len(matching) < answers_200[code]:
            missing_attempts += answers_200[code] - len(matching)
            problems.append(f"S5 code answered {answers_200[code]} times but {len(matching)} matching held rows "
                            f"(holder/item/expiry): ack {json.dumps(op)} rows {rows}")
    for key, n in refusals.items():
        if pg_refusals[key] < n:
            missing_attempts += 1
            problems.append(f"S5 {n} acknowledged refusals {key} but {pg_refusals[key]} rows in checkout_attempts")
    for code, row in pg_by_code.items():
        if not any((s, i, u) == row[:3] for s, i, u, _ in held_by_code.get(code, [])):
            problems.append(f"S7 purchase without a matching held checkout attempt: {code} {row}")

    figures = {
        "pg_purchases": len(purchases), "pg_sold_in_sale": per_sale.get(str(sale_id), 0),
        "pg_checkout_attempts": len(attempts), "acked_purchases": len({op["code"] for op in purchases_200}),
        "acked_purchase_answers": len(purchases_200), "acked_checkout_codes": len(checkouts_200),
        "acked_checkout_answers": sum(1 for op in ops if op["op"] == "checkout" and op.get("complete") is not None
                                      and op.get("status") != 503),
        "acked_refusals": sum(refusals.values()), "log_records": len(ops),
        "lost": len(lost), "oversold": len(oversold) + len(client_oversold),
        "overlimit": len(overlimit) + len(client_overlimit), "missing_attempts": missing_attempts,
        "max_per_user": max((len(v) for v in per_user.values()), default=0),
        "users_at_limit": sum(1 for v in per_user.values() if len(v) == user_limit),
    }
    if figures["pg_sold_in_sale"] != items:
        problems.append(f"L1 sale {sale_id} has {figures['pg_sold_in_sale']} of {items} items sold in PostgreSQL")
    return problems, figures


def check_buyers(result, ops, faults_ended_us, settle_s, allowed_5xx=()):
    """The buyers' own report (sale-load's JSON result) and the history after the faults: the sale
    sold out, no 5xx but 503 (and `allowed_5xx`: a balancer's 502 and 504 for an instance that died
    under a request), no 503 more than `settle_s` after the faults, nothing given up (L1/L2)."""
    problems = []
    if "first_sold_out_s" not in result:
        problems.append("L1/L2 the sale did not sell out before the buyers' deadline")
    for endpoint, entry in result.get("endpoints", {}).items():
        for outcome, n in entry.get("outcomes", {}).items():
            if outcome.startswith("5") and not outcome.startswith(("503",) + tuple(allowed_5xx)):
                problems.append(f"{n} {endpoint} answers {outcome}")
    gave_up = result.get("errors", {}).get("gave_up", 0)
    if gave_up:
        problems.append(f"L2 {gave_up} requests got no definite answer in the buyers' retry time")
    late = [op for op in ops if op.get("status") == 503 and op["invoke"] > faults_ended_us + settle_s * 1e6]
    if late:
        problems.append(f"L2 {len(late)} answers 503 more than {settle_s}s after the faults stopped, e.g. {json.dumps(late[0])}")
    return problems


def check_flood(flood, malformed):
    """The fuzzer's summary: enough requests sent, none answered 2xx or 5xx."""
    problems = []
    if flood["sent"] < malformed:
        problems.append(f"only {flood['sent']} malformed requests sent (< {malformed})")
    if flood["fivexx_count"]:
        problems.append(f"{flood['fivexx_count']} malformed requests answered 5xx, e.g. {flood['fivexx'][:5]}")
    if flood["twoxx_count"]:
        problems.append(f"{flood['twoxx_count']} malformed requests answered 2xx, e.g. {flood['twoxx'][:5]}")
    return problems


def check_sale_views(views, sale_id, items):
    """Each instance's GET /sale after the run: the same sale, everything sold, nothing held (L2)."""
    problems = []
    for name, v in sorted(views.items()):
        counts = v.get("items", {})
        if v.get("sale_id") != sale_id:
            problems.append(f"instance {name} /sale shows sale {v.get('sale_id')} (rolled over or failed): {v}")
        elif counts.get("sold") != items or counts.get("held") != 0:
            problems.append(f"L2 instance {name} /sale after the run: {counts} (expected all sold, none held)")
    return problems


LINEARIZABLE = re.compile(r"^linearizable=(yes|no)$", re.M)


def linearizability(checker, history, items, user_limit, hold_s, sale_length_s):
    """sale-history-check on the buyers' history: ('yes' | 'no' | 'error', its output)."""
    r = subprocess.run([checker, history, "--items", str(items), "--limit", str(user_limit), "--hold", str(hold_s),
                        "--sale-length", str(sale_length_s), "--max-violations", "3"],
                       capture_output=True, text=True, timeout=1800)
    found = LINEARIZABLE.findall(r.stdout)
    verdict = found[-1] if found and r.returncode in (0, 1) else "error"
    return verdict, (r.stdout + r.stderr).strip()


# --------------------------------------------------------------------------------------------
# the benchmark's post-checks (scripts/bench-report.py)


def check_sellout(result, pg_row, sale_view):
    """Sellout: as many purchases acknowledged as rows in PostgreSQL, as distinct items, as
    GET /sale's sold and total; no error. `pg_row` is count, distinct (sale, item), distinct sale."""
    total = sale_view.get("items", {}).get("total")
    sold = sale_view.get("items", {}).get("sold")
    check = {"purchases_acknowledged": result["purchases"], "pg_purchases": int(pg_row[0]),
             "pg_distinct_items": int(pg_row[1]), "get_sale_sold": sold, "get_sale_total": total}
    check["ok"] = (int(pg_row[0]) == total == sold == result["purchases"] == int(pg_row[1])) and not result["errors"]
    return check


def check_flood_attempts(result, attempts_added):
    """Flood: every checkout answered (other than 503) is a row of checkout_attempts."""
    answered = result["checkouts_answered_non_503"]
    return {"answered_non_503": answered, "pg_checkout_attempts": attempts_added,
            "ok": attempts_added == answered and not result["errors"]}


def check_hot(result, pg_row, hot_items=10):
    """Hot: exactly the hot items sold, each once. `pg_row`: count, distinct items, max item, distinct users."""
    check = {"purchases_acknowledged": result["purchases"], "pg_purchases": int(pg_row[0]),
             "pg_distinct_items": int(pg_row[1]), "pg_max_item": int(pg_row[2]), "pg_distinct_users": int(pg_row[3])}
    check["ok"] = (result["purchases"] == hot_items and int(pg_row[0]) == hot_items and int(pg_row[1]) == hot_items
                   and int(pg_row[2]) <= hot_items and not result["errors"])
    return check
