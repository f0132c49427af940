#!/usr/bin/env python3
"""Crash drill for sale-server (driven by scripts/drill, which provides the stores). docs/drill.md.

Two production-mode sale-server instances share one PostgreSQL and one Redis (started by
scripts/with-stores, whose TEST_* variables this reads). This driver only composes the pieces:

  drilllib/supervisor.py  starts the instances, kills -9 / pauses / restarts them at planned
                          moments, restarts Redis (empty, or from an older snapshot) and PostgreSQL;
  sale-load --scenario drill
                          the buyers: a paced sellout over both instances while the faults run,
                          then until sold out, with every request and answer in a history;
  drilllib/fuzzer.py      a separate process flooding both instances with malformed requests;
  drilllib/verifier.py    S1-S5 (and what can be seen of S6/S7, L1/L2) from PostgreSQL and the history;
  sale-history-check      the history judged for linearizability (docs/histories.md).

It prints a timeline, a summary and one verdict line, the last:
  drill ok: kills=K acked=A lost=0 oversold=0 overlimit=0 5xx=0 rollbacks=R pauses=P linearizable=yes
Standard library only.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drilllib import supervisor, verifier  # noqa: E402
from drilllib.supervisor import Instance, Monitor, Stores, http_get, record_pid, unblock_signals, wait_healthy  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def say(msg):
    print(msg, flush=True)


def install_signal_waiter():
    """SIGTERM/SIGINT: blocked in every thread and taken by one waiter thread, which notes who sent
    it and interrupts the main thread (KeyboardInterrupt), which stops everything and reports."""
    interrupted = []

    def waiter():
        info = signal.sigwaitinfo({signal.SIGTERM, signal.SIGINT})
        try:
            with open(f"/proc/{info.si_pid}/cmdline", "rb") as f:
                sender = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            sender = "?"
        interrupted.append(f"signal {info.si_signo} from pid {info.si_pid} ({sender})")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    def on_usr1(signum, frame):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # once: the clean-up must not be interrupted
        raise KeyboardInterrupt()
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    threading.Thread(target=waiter, daemon=True).start()
    return interrupted


def buyers_command(cfg, ports, out):
    """sale-load as the drill's buyers (Sources/Bench/Load/DrillBuyers.swift)."""
    return [cfg.load_bin, "--scenario", "drill", "--ports", ",".join(map(str, ports)),
            "--connections", str(cfg.buyers), "--users", str(cfg.users), "--items", str(cfg.items),
            "--user-limit", str(cfg.user_limit), "--pace-seconds", str(cfg.fault_seconds),
            "--pace-fraction", str(cfg.fault_fraction), "--think-ms", str(int(cfg.think_max * 1000)),
            "--abandon-p", str(cfg.abandon_p), "--recheckout-p", str(cfg.recheckout_p),
            "--request-timeout", str(cfg.request_timeout), "--retry-seconds", "40",
            "--max-seconds", str(cfg.fault_seconds + cfg.sellout_deadline),
            "--history", os.path.join(out, "history.jsonl"), "--out", os.path.join(out, "buyers.json"), "--label", "drill"]


def run_main(cfg):
    out = cfg.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "driver.pid"), "w") as f:
        f.write(f"{os.getpid()}\n")
    interrupted = install_signal_waiter()
    stores = Stores(os.environ, cfg.pg_mode)
    rng = random.Random(cfg.seed)
    sale_length = cfg.sale_length or supervisor.choose_sale_length(time.time(), 1800)
    T0 = time.time()
    timeline = []

    def event(msg):
        t = time.time() - T0
        timeline.append((round(t, 2), msg))
        say(f"[{t:7.2f}s] {msg}")

    def sold_so_far():
        try:
            return verifier.psql(stores.db_url, "SELECT count(*) FROM purchases", unblock_signals)[0][0]
        except Exception:  # noqa: BLE001  (PostgreSQL may be the store being restarted)
            return "?"

    env = dict(os.environ)
    env.update(DATABASE_URL=stores.db_url, REDIS_URL=stores.redis_url, LOG_LEVEL="warning", SALE_ITEMS=str(cfg.items),
               USER_LIMIT=str(cfg.user_limit), HOLD_TTL=str(cfg.hold_ttl), SALE_LENGTH=str(sale_length),
               MIGRATIONS_DIR=cfg.migrations, HOST="127.0.0.1",
               # Every simulated buyer connects from 127.0.0.1: the per-client abuse limits would count
               # them as one client (they are exercised by Tests/ServerTests/AbuseTests.swift).
               CLIENT_CHECKOUT_RATE="0", CLIENT_MAX_HOLDS="0")
    insts = [Instance(n, p, [cfg.bin], env, out) for n, p in zip("AB", cfg.ports)]
    problems = []
    flood = buyers = balancer = monitor = None
    kills = rollbacks = pauses = 0
    try:
        for inst in insts:
            inst.start()
        for inst in insts:
            if not wait_healthy(inst.port, 60):
                raise RuntimeError(f"instance {inst.name} (:{inst.port}) did not become healthy; see {out}/server-{inst.name}.log")
        st, body = http_get(cfg.ports[0], "/sale")
        sale = json.loads(body)
        sale_id = sale["sale_id"]
        event(f"2 instances up on :{cfg.ports[0]} and :{cfg.ports[1]}; sale {sale_id} ends {sale['ends_at']} "
              f"(SALE_LENGTH={sale_length}), {cfg.items} items, limit {cfg.user_limit}, hold {cfg.hold_ttl}s")

        def on_exit(inst, status):
            msg = f"instance {inst.name} exited by itself with status {status}"
            event("UNEXPECTED: " + msg + " (restarting it)")
            problems.append(msg)
        monitor = Monitor(insts, on_exit)
        monitor.start()

        buyer_ports = cfg.ports
        if cfg.balancer:
            # The buyers go through HAProxy in front of both instances (the deployed shape); kills,
            # pauses and the malformed flood still address the instances.
            balancer = supervisor.start_balancer(cfg.balancer, cfg.ports, out)
            buyer_ports = [cfg.balancer]
            event(f"HAProxy on :{cfg.balancer} in front of both instances; the buyers go through it")
        stop_file = os.path.join(out, "flood.stop")
        flood = subprocess.Popen([sys.executable, os.path.join(HERE, "drilllib", "fuzzer.py"), "--ports",
                                  ",".join(map(str, cfg.ports)), "--count", str(cfg.malformed), "--duration",
                                  str(cfg.fault_seconds), "--items", str(cfg.items), "--seed", str(cfg.seed),
                                  "--out", os.path.join(out, "flood.json"), "--stop-file", stop_file],
                                 stdout=open(os.path.join(out, "flood.log"), "w"), stderr=subprocess.STDOUT,
                                 preexec_fn=unblock_signals)
        record_pid(out, flood.pid)
        buyers = subprocess.Popen(buyers_command(cfg, buyer_ports, out), stdout=open(os.path.join(out, "buyers.log"), "w"),
                                  stderr=subprocess.STDOUT, preexec_fn=unblock_signals)
        record_pid(out, buyers.pid)
        t0 = time.time()
        event(f"load started: sale-load with {cfg.buyers} buyers over {cfg.users} users; "
              f"malformed flood of {cfg.malformed} requests")

        # The faults, each at its planned moment (drilllib/supervisor.py, plan_faults).
        for when, what in supervisor.plan_faults(rng, cfg.kills, cfg.rollbacks, cfg.pauses, cfg.fault_seconds):
            while time.time() < t0 + when:  # short sleeps: an interruption is taken promptly
                time.sleep(0.2)
            if what == "rollback":
                saved, dump = stores.snapshot_redis()
                sold_at_save = sold_so_far()
                time.sleep(rng.uniform(1.0, 4.0))  # sales go on, and are not in the dump
                lost = stores.redis_changes_since_save()
                status, err = stores.restart_redis()
                try:
                    os.remove(dump)  # later restarts come back empty, as the "redis+kill" fault means
                except OSError as e:
                    problems.append(f"cannot remove Redis dump {dump}: {e}")
                rollbacks += 1
                event(f"Redis restarted from an older snapshot (SAVE {saved}, restart status {status}, "
                      f"{lost} writes since the snapshot lost); sold at the snapshot {sold_at_save}, now {sold_so_far()} "
                      f"[{rollbacks}]")
                if status != 0 or saved != "OK":
                    problems.append(f"Redis rollback failed: {saved} {err}")
                continue
            if what == "pause":
                inst = rng.choice(insts)
                length = rng.uniform(0.5, cfg.hold_ttl + 3.0)
                event(f"SIGSTOP instance {inst.name} (:{inst.port}) for {length:.1f}s [{pauses + 1}]")
                if inst.pause(length):
                    pauses += 1
                    event(f"SIGCONT instance {inst.name}")
                continue
            if what == "redis+kill":
                status, err = stores.restart_redis()
                event(f"Redis restarted empty (status {status}); sold so far {sold_so_far()}")
                if status != 0:
                    problems.append(f"Redis restart failed: {err}")
                time.sleep(rng.uniform(0.0, 0.5))
                what = "kill"
            if what == "kill":
                inst = rng.choice(insts)
                inst.kill9()
                kills += 1
                down = rng.uniform(0.2, 3.0)
                event(f"kill -9 instance {inst.name} (:{inst.port}) [{kills}]; restarting in {down:.1f}s")
                time.sleep(down)
                inst.start()
                ok = wait_healthy(inst.port, 30)
                event(f"instance {inst.name} restarted ({'healthy' if ok else 'NOT healthy after 30s'})")
                if not ok:
                    problems.append(f"instance {inst.name} not healthy 30 s after restart")
            elif what == "pg":
                t1 = time.time()
                status, err = stores.restart_postgres()
                event(f"PostgreSQL restarted (pg_ctl -m {cfg.pg_mode}, status {status}, {time.time() - t1:.1f}s)")
                if status != 0:
                    problems.append(f"PostgreSQL restart failed: {err}")
        left = t0 + cfg.fault_seconds - time.time()
        if left > 0:
            time.sleep(left)
        faults_ended = time.time()
        event(f"faults stopped; sold {sold_so_far()}; the buyers now buy every hold until sold out")

        # Liveness: the buyers stop at the first sold_out, or at their deadline.
        try:
            buyers.wait(timeout=cfg.sellout_deadline + 60)
        except subprocess.TimeoutExpired:
            buyers.kill()
            problems.append(f"the buyers (sale-load) were still running {cfg.sellout_deadline + 60:.0f}s after the faults")
        if buyers.returncode:
            problems.append(f"the buyers (sale-load) exited with status {buyers.returncode}; see {out}/buyers.log")
        if not os.path.exists(os.path.join(out, "buyers.json")):
            raise RuntimeError(f"the buyers (sale-load) left no result; see {out}/buyers.log")
        with open(os.path.join(out, "buyers.json")) as f:
            result = json.load(f)
        if "first_sold_out_s" in result:
            event(f"sold out: first 409 sold_out {t0 + result['first_sold_out_s'] - faults_ended:.1f}s after faults stopped")
        else:
            event("NOT sold out by the deadline")
        open(stop_file, "w").close()
        flood.wait(timeout=120)
        monitor.stopped.set()
        event("load and flood stopped")

        # The servers stay up and keep serving.
        health, sale_views = {}, {}
        for inst in insts:
            try:
                st, body = http_get(inst.port, "/health")
                health[inst.name] = (st, json.loads(body).get("status"))
            except Exception as e:  # noqa: BLE001
                health[inst.name] = (None, str(e))
            if health[inst.name][0] != 200 or not inst.alive():
                problems.append(f"instance {inst.name} not healthy after the drill: {health[inst.name]}")
        time.sleep(1.1)  # the /sale counts are cached for up to 1 s
        for inst in insts:
            try:
                st, body = http_get(inst.port, "/sale")
                sale_views[inst.name] = json.loads(body)
            except Exception as e:  # noqa: BLE001
                sale_views[inst.name] = {"error": str(e)}

        if cfg.tamper:
            # checker self-test: damage PostgreSQL the way a broken server would; the drill must fail
            verifier.psql(stores.db_url, "DELETE FROM purchases WHERE code = (SELECT code FROM purchases ORDER BY seq LIMIT 1)")
            verifier.psql(stores.db_url, "UPDATE purchases SET user_id = (SELECT user_id FROM purchases GROUP BY user_id "
                                         "ORDER BY count(*) DESC LIMIT 1) WHERE seq = (SELECT max(seq) FROM purchases)")
            verifier.psql(stores.db_url, "DELETE FROM checkout_attempts WHERE attempt_id = (SELECT attempt_id FROM "
                                         "checkout_attempts WHERE outcome = 'item_sold' ORDER BY seq LIMIT 1)")
            event("TAMPER: deleted one purchase, moved one to the busiest user, deleted one item_sold attempt")

        # The checks (drilllib/verifier.py) and the history's linearizability.
        purchases = verifier.psql(stores.db_url, verifier.PURCHASES_SQL)
        attempts = verifier.psql(stores.db_url, verifier.ATTEMPTS_SQL)
        for name, rows in (("pg-purchases.tsv", purchases), ("pg-checkout-attempts.tsv", attempts)):
            with open(os.path.join(out, name), "w") as f:
                f.writelines("\t".join(r) + "\n" for r in rows)
        history = os.path.join(out, "history.jsonl")
        ops = verifier.load_history(history)
        found, fig = verifier.check_sale(ops, purchases, attempts, sale_id, cfg.items, cfg.user_limit)
        problems.extend(found)
        problems.extend(verifier.check_buyers(result, ops, int(faults_ended * 1e6), cfg.settle_seconds,
                                              allowed_5xx=("502", "504") if cfg.balancer else ()))
        with open(os.path.join(out, "flood.json")) as f:
            fl = json.load(f)
        problems.extend(verifier.check_flood(fl, cfg.malformed))
        problems.extend(verifier.check_sale_views(sale_views, sale_id, cfg.items))
        t1 = time.time()
        linearizable, verdict = verifier.linearizability(cfg.check_bin, history, cfg.items, cfg.user_limit, cfg.hold_ttl,
                                                         sale_length)
        with open(os.path.join(out, "history-check.txt"), "w") as f:
            f.write(verdict + "\n")
        if linearizable != "yes":
            problems.append(f"the buyers' history is not linearizable ({linearizable}): {verdict}")
        allowed = ("503", "502", "504") if cfg.balancer else ("503",)  # HAProxy's, for an instance that died: retried
        buyer_5xx = sum(n for e in result.get("endpoints", {}).values() for k, n in e.get("outcomes", {}).items()
                        if k.startswith("5") and not k.startswith(allowed))
        fivexx = fl["fivexx_count"] + buyer_5xx

        # Summary.
        say("")
        say("==== crash drill summary ====")
        say(f"output (logs, history, PostgreSQL dumps): {out}")
        say(f"sale {sale_id}: SALE_ITEMS={cfg.items} USER_LIMIT={cfg.user_limit} HOLD_TTL={cfg.hold_ttl}s "
            f"SALE_LENGTH={sale_length}s; instances A :{cfg.ports[0]} B :{cfg.ports[1]}")
        say(f"load: {cfg.buyers} buyers (sale-load), {cfg.users} users, faults for {cfg.fault_seconds}s, "
            f"seed {cfg.seed}, total {time.time() - T0:.0f}s")
        say(f"faults: kill -9 x{kills} (starts: A {insts[0].starts}, B {insts[1].starts}), Redis restarted empty x1, "
            f"Redis restarted from an older snapshot x{rollbacks}, instance paused x{pauses}, "
            f"PostgreSQL restarted x1 (-m {cfg.pg_mode}); unexpected exits: {sum(len(i.unexpected_exits) for i in insts)}")
        for endpoint, entry in sorted(result.get("endpoints", {}).items()):
            say(f"buyer {endpoint} answers: " + ", ".join(f"{k}={v}" for k, v in sorted(entry.get("outcomes", {}).items())))
        say("buyer errors (retried unless gave_up): " + ", ".join(f"{k}={v}" for k, v in sorted(result.get("errors", {}).items())))
        say(f"acknowledged: {fig['acked_purchases']} purchases ({fig['acked_purchase_answers']} answers), "
            f"{fig['acked_checkout_codes']} checkout codes, {fig['acked_checkout_answers']} checkout answers "
            f"({fig['acked_refusals']} refusals); {fig['log_records']} history records")
        say(f"PostgreSQL: {fig['pg_purchases']} purchases ({fig['pg_sold_in_sale']} in sale {sale_id}), "
            f"{fig['pg_checkout_attempts']} checkout attempts; max purchases per user {fig['max_per_user']}, "
            f"users at the limit {fig['users_at_limit']}")
        say(f"checks: S1 oversold={fig['oversold']} S2 overlimit={fig['overlimit']} "
            f"S3 sold={fig['pg_sold_in_sale']}/{cfg.items} S4 lost={fig['lost']} "
            f"S5 missing attempts={fig['missing_attempts']}; gave up={result.get('errors', {}).get('gave_up', 0)}")
        say(f"history: {verdict.splitlines()[-2] if len(verdict.splitlines()) > 1 else verdict} "
            f"({time.time() - t1:.1f}s with the file's reading)")
        say("sale after: " + "; ".join(f"{n}: {v.get('items')}" for n, v in sale_views.items()))
        say(f"malformed: {fl['sent']} requests in {fl['seconds']}s, 5xx={fl['fivexx_count']}, "
            f"2xx={fl['twoxx_count']}, retried after refused connection={fl['refused_retries']}; by answer: "
            + ", ".join(f"{k}={v}" for k, v in sorted(fl["by_status"].items())))
        say("malformed kinds: " + ", ".join(f"{k}={v}" for k, v in sorted(fl["by_label"].items())))
        say("health after: " + ", ".join(f"{n}: {v[0]} {v[1]}" for n, v in health.items()))
        with open(os.path.join(out, "timeline.txt"), "w") as f:
            f.writelines(f"{t:8.2f}s {m}\n" for t, m in timeline)
        for p in problems[:60]:
            say(f"VIOLATION: {p}")
        if len(problems) > 60:
            say(f"... and {len(problems) - 60} more (see {out}/problems.txt)")
        with open(os.path.join(out, "problems.txt"), "w") as f:
            f.writelines(p + "\n" for p in problems)
        keys = (f"kills={kills} acked={fig['acked_purchases']} lost={fig['lost']} oversold={fig['oversold']} "
                f"overlimit={fig['overlimit']} 5xx={fivexx} rollbacks={rollbacks} pauses={pauses} linearizable={linearizable}")
        if problems or kills < 5 or rollbacks < cfg.rollbacks or pauses < cfg.pauses:
            say(f"drill FAILED: {keys}")
            return 1
        say(f"drill ok: {keys}")
        return 0
    except KeyboardInterrupt:
        say(f"drill FAILED: kills={kills} acked=? lost=? oversold=? overlimit=? 5xx=? linearizable=? "
            f"(interrupted: {interrupted[0] if interrupted else 'KeyboardInterrupt'})")
        return 130
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        say(f"drill FAILED: kills={kills} acked=? lost=? oversold=? overlimit=? 5xx=? linearizable=? (drill error: {e})")
        return 1
    finally:
        if monitor is not None:
            monitor.stopped.set()
        for proc in (buyers, flood):
            if proc is not None and proc.poll() is None:
                proc.kill()
        if balancer is not None:
            balancer.terminate()
            balancer.wait(timeout=15)
        for inst in insts:
            inst.stop()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode")
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True, help="sale-server; sale-load and sale-history-check are taken from its folder")
    r.add_argument("--out", required=True)
    r.add_argument("--migrations", required=True)
    r.add_argument("--ports", default="18132,18133")
    r.add_argument("--balancer", type=int, default=0,
                   help="port for an HAProxy in front of both instances that the buyers go through (0: none)")
    r.add_argument("--items", type=int, default=2000)
    r.add_argument("--user-limit", type=int, default=10)
    r.add_argument("--hold-ttl", type=int, default=10)
    r.add_argument("--sale-length", type=int, default=0, help="0: about a week, chosen so no rollover happens")
    r.add_argument("--buyers", type=int, default=300)
    r.add_argument("--users", type=int, default=300)
    r.add_argument("--kills", type=int, default=6)
    r.add_argument("--rollbacks", type=int, default=1, help="Redis restarts from an older snapshot")
    r.add_argument("--pauses", type=int, default=1, help="SIGSTOP/SIGCONT pauses of an instance")
    r.add_argument("--fault-seconds", type=float, default=75.0)
    r.add_argument("--fault-fraction", type=float, default=0.8, help="share of the items sold while faults run")
    r.add_argument("--sellout-deadline", type=float, default=120.0)
    r.add_argument("--settle-seconds", type=float, default=10.0)
    r.add_argument("--malformed", type=int, default=12000)
    r.add_argument("--pg-mode", default="immediate", choices=["fast", "immediate"])
    r.add_argument("--think-max", type=float, default=0.4)
    r.add_argument("--abandon-p", type=float, default=0.1)
    r.add_argument("--recheckout-p", type=float, default=0.1)
    r.add_argument("--request-timeout", type=float, default=5.0)
    r.add_argument("--tamper", action="store_true", help="checker self-test: damage PostgreSQL before the checks")
    r.add_argument("--seed", type=int, default=int(time.time()) % 100000, help="the fault plan's and the fuzzer's seed")
    args = ap.parse_args()
    if args.mode != "run":
        ap.error("the mode is `run` (the fuzzer is drilllib/fuzzer.py)")
    args.ports = [int(p) for p in args.ports.split(",")]
    folder = os.path.dirname(os.path.abspath(args.bin))
    args.load_bin = os.path.join(folder, "sale-load")
    args.check_bin = os.path.join(folder, "sale-history-check")
    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
