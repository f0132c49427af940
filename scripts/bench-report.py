#!/usr/bin/env python3
"""Collects the files scripts/bench left in a run folder: verifies each scenario against
PostgreSQL, writes one JSON with everything, draws the sellout chart and prints the summary,
whose last line is the machine-readable one:

    sellout_s=S flood_rps=R baseline_rps=B ratio=R/B flood_p99_ms=P rss_mb=M ...
"""
import json
import os
import sys

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


results = {"run": os.path.basename(run), "scenarios": {}, "checks": {}, "targets": {}}
ok = True

baseline = load("baseline")
sellout = load("sellout")
flood = load("flood")
hot = load("hot")
for name, data in (("baseline", baseline), ("sellout", sellout), ("flood", flood), ("hot", hot)):
    if data is not None:
        data["server_peak_rss_mb"] = rss(name)
        data["server_cpu_us_per_request"] = cpu_per_request_us(name, data)
        results["scenarios"][name] = data

lines = []
if sellout:
    pg = (text("sellout-pg.txt") or "0|0|0").split("|")
    sale = json.loads(text("sellout-sale.json") or "{}")
    sold = sale.get("items", {}).get("sold")
    total = sale.get("items", {}).get("total")
    check = {
        "purchases_acknowledged": sellout["purchases"], "pg_purchases": int(pg[0]), "pg_distinct_items": int(pg[1]),
        "get_sale_sold": sold, "get_sale_total": total,
    }
    check["ok"] = (int(pg[0]) == total == sold == sellout["purchases"] == int(pg[1])) and not sellout["errors"]
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
if flood:
    rows = int(text("flood-pg.txt") or 0)
    answered = flood["checkouts_answered_non_503"]
    check = {"answered_non_503": answered, "pg_checkout_attempts": rows, "ok": rows == answered and not flood["errors"]}
    ok &= check["ok"]
    results["checks"]["flood"] = check
    c = flood["endpoints"]["checkout"]
    lines.append("flood: %d checkouts in %.2f s = %d req/s  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms; answered (non-503) %d, rows in checkout_attempts %d: %s"
                 % (c["count"], flood["elapsed_s"], flood["rps"], c["p50_ms"], c["p99_ms"], c["p999_ms"], answered, rows,
                    "OK" if check["ok"] else "MISMATCH"))
    lines.append("  sale-server CPU: %s µs per checkout" % flood["server_cpu_us_per_request"])
    lines.append("  outcomes: " + " ".join("%s=%d" % kv for kv in sorted(c["outcomes"].items(), key=lambda kv: -kv[1])))
if hot:
    pg = (text("hot-pg.txt") or "0|0|0|0").split("|")
    check = {"purchases_acknowledged": hot["purchases"], "pg_purchases": int(pg[0]), "pg_distinct_items": int(pg[1]),
             "pg_max_item": int(pg[2]), "pg_distinct_users": int(pg[3])}
    check["ok"] = hot["purchases"] == 10 and int(pg[0]) == 10 and int(pg[1]) == 10 and int(pg[2]) <= 10 and not hot["errors"]
    ok &= check["ok"]
    results["checks"]["hot"] = check
    lines.append("hot: %d buyers for 10 items: %d purchases acknowledged, %d in PostgreSQL (%d distinct items, %d users) in %.3f s, %d requests: %s"
                 % (hot["connections"], hot["purchases"], int(pg[0]), int(pg[1]), int(pg[3]), hot["elapsed_s"], hot["requests"],
                    "OK" if check["ok"] else "CHECK FAILED"))
if baseline:
    c = baseline["endpoints"]["checkout"]
    lines.append("baseline (noop-server): %d req/s  p50 %.2f ms  p99 %.2f ms  CPU %s µs per request"
                 % (baseline["rps"], c["p50_ms"], c["p99_ms"], baseline["server_cpu_us_per_request"]))

rss_values = [v for v in (rss("sellout"), rss("flood"), rss("hot")) if v is not None]
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
summary["checks"] = "ok" if ok else "FAILED"
results["summary"] = summary
results["targets"] = {
    "sellout_under_2s": sellout is not None and sellout["last_purchase_s"] < 2,
    "flood_at_least_half_baseline": bool(flood and baseline and flood["rps"] >= 0.5 * baseline["rps"]),
    "flood_p99_under_100ms": bool(flood and flood["endpoints"]["checkout"]["p99_ms"] < 100),
    "rss_under_300mb": peak_rss is not None and peak_rss < 300,
}
lines.append("targets: " + " ".join("%s=%s" % (k, "met" if v else "MISSED") for k, v in results["targets"].items()))
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
