#!/usr/bin/env python3
"""Collects the files scripts/bench left in a run folder: verifies each scenario against
PostgreSQL, writes one JSON with everything, draws the sellout chart and prints the summary,
whose last line is the machine-readable one:

    sellout_s=S flood_rps=R baseline_rps=B ratio=R/B flood_p99_ms=P rss_mb=M ... open_p99_ms=P server_cpu_us=C ...

Costs per request come from the readings bench-snapshot.py took before and after each scenario's
load (snap-NAME-before/after.json; snap-NAME-final.json for PostgreSQL's statistics, which its
backends publish when they exit).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drilllib import verifier  # noqa: E402  (the post-checks, shared with the crash drill)

run, out_json, chart = sys.argv[1], sys.argv[2], sys.argv[3]


def load(name):
    path = os.path.join(run, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def text(name):
    path = os.path.join(run, name)
    return open(path).read().strip() if os.path.exists(path) else None


def rss(name):
    value = text("rss-%s.txt" % name)
    return float(value) if value else None


def cpu_per_request_us(name, data):
    """The sale-server's CPU time (user + system, start-up included) per request answered."""
    value = text("cpu-%s.txt" % name)
    return round(float(value) * 1e6 / data["requests"], 1) if value and data and data["requests"] else None


def reading(name, when):
    path = os.path.join(run, "snap-%s-%s.json" % (name, when))
    return json.load(open(path)) if os.path.exists(path) else None


SCRIPT_COMMANDS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")


def costs(name, data):
    """CPU µs and store operations per answered request, over the scenario's load only."""
    before, after = reading(name, "before"), reading(name, "after")
    if not (before and after and data and data["requests"]):
        return {}
    requests = data["requests"]
    result = {}
    for key, label in (("server_cpu_s", "server_cpu_us"), ("front_cpu_s", "balancer_cpu_us"),
                       ("pg_cpu_s", "pg_cpu_us"), ("redis_cpu_s", "redis_cpu_us")):
        if key in before and key in after:
            result[label] = round((after[key] - before[key]) * 1e6 / requests, 1)
    if "front_command" in after:
        result["balancer"] = after["front_command"]
    if "redis_calls" in before and "redis_calls" in after:
        delta = {c: n - before["redis_calls"].get(c, 0) for c, n in after["redis_calls"].items()}
        delta = {c: n for c, n in delta.items() if n > 0 and c != "info"}  # INFO: these readings
        result["redis_commands_per_request"] = round(sum(delta.values()) / requests, 2)
        result["redis_scripts_per_request"] = round(sum(delta.get(c, 0) for c in SCRIPT_COMMANDS) / requests, 2)
        result["redis_commands"] = dict(sorted(delta.items(), key=lambda kv: -kv[1]))
    final = reading(name, "final") or after
    if "pg_stats" in before and "pg_stats" in final:
        b, f = before["pg_stats"], final["pg_stats"]
        xacts = f["xact_commit"] + f["xact_rollback"] - b["xact_commit"] - b["xact_rollback"]
        written = sum(f[k] - b[k] for k in ("tup_inserted", "tup_updated", "tup_deleted"))
        result["pg_transactions_per_request"] = round(xacts / requests, 3)
        result["pg_rows_written_per_request"] = round(written / requests, 2)
        result["pg_requests_per_transaction"] = round(requests / xacts, 1) if xacts else None
    return result


def cost_line(c):
    if not c:
        return None
    parts = ["server %s" % c.get("server_cpu_us", "?")]
    if "balancer_cpu_us" in c:
        parts.append("%s %s" % (c.get("balancer", "balancer"), c["balancer_cpu_us"]))
    if "pg_cpu_us" in c:
        parts.append("PostgreSQL %s" % c["pg_cpu_us"])
    if "redis_cpu_us" in c:
        parts.append("Redis %s" % c["redis_cpu_us"])
    line = "  CPU per request (µs): " + ", ".join(parts)
    ops = []
    if c.get("redis_commands_per_request"):
        ops.append("Redis %s commands (%s scripts)" % (c["redis_commands_per_request"], c["redis_scripts_per_request"]))
    if c.get("pg_transactions_per_request"):
        ops.append("PostgreSQL %s transactions (%s requests each), %s rows written"
                   % (c["pg_transactions_per_request"], c["pg_requests_per_transaction"], c["pg_rows_written_per_request"]))
    if ops:
        line += "; per request: " + ", ".join(ops)
    return line


OPEN = [name for name in sorted(n[:-5] for n in os.listdir(run) if n.startswith("open") and n.endswith(".json"))]
OPEN.sort(key=lambda n: int(n[4:]) if n[4:].isdigit() else 0)

results = {"run": os.path.basename(run), "scenarios": {}, "checks": {}, "targets": {}}
ok = True

baseline = load("baseline")
sellout = load("sellout")
flood = load("flood")
hot = load("hot")
opens = {name: load(name) for name in OPEN}
for name, data in [("baseline", baseline), ("sellout", sellout), ("flood", flood), ("hot", hot)] + list(opens.items()):
    if data is not None:
        data["server_peak_rss_mb"] = rss(name)
        data["server_cpu_us_per_request"] = cpu_per_request_us(name, data)
        data["costs"] = costs(name, data)
        results["scenarios"][name] = data

lines = []
if sellout:
    pg = (text("sellout-pg.txt") or "0|0|0").split("|")
    sale = json.loads(text("sellout-sale.json") or "{}")
    check = verifier.check_sellout(sellout, pg, sale)
    ok &= check["ok"]
    results["checks"]["sellout"] = check
    ep = sellout["endpoints"]
    lines.append("sellout: %d items sold in %.3f s (last purchase acknowledged), %d requests, %d req/s; %s"
                 % (sellout["purchases"], sellout["last_purchase_s"], sellout["requests"], sellout["rps"],
                    "OK" if check["ok"] else "CHECK FAILED %s" % check))
    for e in ("checkout", "purchase"):
        if e in ep:
            lines.append("  %-8s %6d req  %6d req/s  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms"
                         % (e, ep[e]["count"], ep[e]["rps"], ep[e]["p50_ms"], ep[e]["p99_ms"], ep[e]["p999_ms"], ep[e]["max_ms"]))
    lines.append(cost_line(sellout["costs"]))
if flood:
    rows = int(text("flood-pg.txt") or 0) - int(text("flood-pg-before.txt") or 0)  # before: with --url only
    check = verifier.check_flood_attempts(flood, rows)
    answered = check["answered_non_503"]
    ok &= check["ok"]
    results["checks"]["flood"] = check
    c = flood["endpoints"]["checkout"]
    lines.append("flood: %d checkouts in %.2f s = %d req/s  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms; answered (non-503) %d, rows in checkout_attempts %d: %s"
                 % (c["count"], flood["elapsed_s"], flood["rps"], c["p50_ms"], c["p99_ms"], c["p999_ms"], answered, rows,
                    "OK" if check["ok"] else "MISMATCH"))
    if flood["server_cpu_us_per_request"] is not None:
        lines.append("  sale-server CPU: %s µs per checkout (start-up included)" % flood["server_cpu_us_per_request"])
    lines.append(cost_line(flood["costs"]))
    lines.append("  outcomes: " + " ".join("%s=%d" % kv for kv in sorted(c["outcomes"].items(), key=lambda kv: -kv[1])))
if hot:
    pg = (text("hot-pg.txt") or "0|0|0|0").split("|")
    check = verifier.check_hot(hot, pg)
    ok &= check["ok"]
    results["checks"]["hot"] = check
    lines.append("hot: %d buyers for 10 items: %d purchases acknowledged, %d in PostgreSQL (%d distinct items, %d users) in %.3f s, %d requests: %s"
                 % (hot["connections"], hot["purchases"], int(pg[0]), int(pg[1]), int(pg[3]), hot["elapsed_s"], hot["requests"],
                    "OK" if check["ok"] else "CHECK FAILED"))
if baseline:
    c = baseline["endpoints"]["checkout"]
    lines.append("baseline (noop-server): %d req/s  p50 %.2f ms  p99 %.2f ms  CPU %s µs per request"
                 % (baseline["rps"], c["p50_ms"], c["p99_ms"], baseline["costs"].get("server_cpu_us", baseline["server_cpu_us_per_request"])))
for name, data in opens.items():
    if data is None or "open_loop" not in data:
        continue
    o = data["open_loop"]
    lines.append("%s: checkouts offered at %d req/s (open loop, %s s), %d answered = %d req/s; from the intended send: p50 %.2f ms"
                 "  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms (from the write: p99 %.2f ms); unsent %d, errors %s"
                 % (name, o["offered_rps"], o["duration_s"], o["answered"], o["achieved_rps"], o.get("p50_ms", 0), o.get("p99_ms", 0),
                    o.get("p999_ms", 0), o.get("max_ms", 0), o["service"].get("p99_ms", 0), o["unsent"], data["errors"] or "none"))
    lines.append(cost_line(data["costs"]))
lines = [line for line in lines if line]

rss_values = [v for v in [rss("sellout"), rss("flood"), rss("hot")] + [rss(name) for name in opens] if v is not None]
peak_rss = max(rss_values) if rss_values else None
summary = {}
if sellout:
    summary["sellout_s"] = round(sellout["last_purchase_s"], 3)
if flood:
    summary["flood_rps"] = int(flood["rps"])
if baseline:
    summary["baseline_rps"] = int(baseline["rps"])
if flood and baseline:
    summary["ratio"] = round(flood["rps"] / baseline["rps"], 3)
if flood:
    summary["flood_p99_ms"] = flood["endpoints"]["checkout"]["p99_ms"]
if peak_rss is not None:
    summary["rss_mb"] = peak_rss
if sellout:
    summary["sellout_rps"] = int(sellout["rps"])
if flood and flood["server_cpu_us_per_request"] is not None:
    summary["flood_server_cpu_us"] = flood["server_cpu_us_per_request"]
if hot:
    summary["hot_sold"] = int((text("hot-pg.txt") or "0").split("|")[0])
open50 = opens.get("open50")
if open50 and open50.get("open_loop", {}).get("count"):
    summary["open_p99_ms"] = open50["open_loop"]["p99_ms"]
flood_costs = flood["costs"] if flood else {}
for key in ("server_cpu_us", "pg_cpu_us", "redis_cpu_us"):
    if key in flood_costs:
        summary[key] = flood_costs[key]
summary["checks"] = "ok" if ok else "FAILED"
results["summary"] = summary
# Issue 13's targets (this 2-core machine, same-run ratios).
# None: not measured in this run.
results["targets"] = {
    "flood_at_least_half_baseline": flood["rps"] >= 0.5 * baseline["rps"] if flood and baseline else None,
    "open_p99_at_most_15ms_at_half_baseline": summary["open_p99_ms"] <= 15 if "open_p99_ms" in summary else None,
    "sellout_at_most_1.6s": sellout["last_purchase_s"] <= 1.6 if sellout else None,
    "server_cpu_at_most_70us_per_checkout": summary["server_cpu_us"] <= 70 if "server_cpu_us" in summary else None,
    "rss_under_150mb": peak_rss < 150 if peak_rss is not None else None,
}
lines.append("targets: " + " ".join("%s=%s" % (k, "not_measured" if v is None else "met" if v else "MISSED")
                                    for k, v in results["targets"].items()))
json.dump(results, open(out_json, "w"), indent=1, sort_keys=True)
lines.append("results: %s" % out_json)

if sellout and sellout["series"]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        series = sellout["series"]
        t = [row["t_s"] for row in series]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
        for e, colour in (("checkout", "tab:blue"), ("purchase", "tab:orange")):
            top.plot(t, [row.get(e, {}).get("rps", 0) for row in series], label="%s requests/s" % e, color=colour)
        top.plot(t, [row.get("purchases_per_s", 0) for row in series], label="items sold/s", color="tab:green", linestyle="--")
        top.set_ylabel("per second (100 ms buckets)")
        top.legend(loc="upper right", fontsize=8)
        top.set_title("Sellout: %d buyers, %d items sold in %.2f s (sale-server on PostgreSQL + Redis)"
                      % (sellout["connections"], sellout["purchases"], sellout["last_purchase_s"]))
        for e, colour in (("checkout", "tab:blue"), ("purchase", "tab:orange")):
            rows = [(row["t_s"], row[e]) for row in series if row.get(e, {}).get("rps", 0) > 0]
            bottom.plot([r[0] for r in rows], [r[1]["p50_ms"] for r in rows], label="%s p50" % e, color=colour)
            bottom.plot([r[0] for r in rows], [r[1]["p99_ms"] for r in rows], label="%s p99" % e, color=colour, linestyle=":")
        bottom.set_ylabel("latency (ms)")
        bottom.set_xlabel("seconds since the sale opened")
        bottom.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(chart, dpi=100)
        lines.append("chart: %s" % chart)
    except Exception as error:  # the figures matter more than the picture
        lines.append("chart: not drawn (%s)" % error)

print("\n".join(lines))
print(" ".join("%s=%s" % kv for kv in summary.items()))
sys.exit(0 if ok else 1)
