#!/usr/bin/env python3
"""Crash drill for sale-server (driven by scripts/drill, which provides the stores).

Two production-mode sale-server instances share one PostgreSQL and one Redis (started by
scripts/with-stores, whose TEST_* variables this reads). A few hundred buyer threads run a
sellout against both instances while the drill kills -9 an instance at random moments
(restarting it on the same port), restarts Redis empty and restarts PostgreSQL. A separate
process floods both instances with malformed requests. After the faults stop the sale must
sell out; then the drill checks S1-S5 (and what it can of S6/S7) from PostgreSQL and from the
log of every acknowledged response, prints a summary and one verdict line.

Modes:  drill.py run ...      the drill (default)
        drill.py flood ...    the malformed-request flood (started by `run` as a subprocess)
Standard library only.
"""
import argparse
import collections
import datetime
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

# --------------------------------------------------------------------------------------------
# helpers


def now():
    return time.time()


def parse_ms(ts):
    """RFC 3339 with milliseconds, UTC ('2026-11-25T15:36:21.485Z') -> epoch milliseconds."""
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(round(d.timestamp() * 1000))


class Log:
    """Thread-safe JSONL writer."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, rec):
        line = json.dumps(rec, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")

    def close(self):
        with self.lock:
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()


def unblock_signals():
    """preexec_fn of every child: the driver blocks SIGTERM/SIGINT (see run_main), children must not."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)


def say(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# server instances


class Instance:
    def __init__(self, name, port, args, env, out):
        self.name, self.port, self.args, self.env, self.out = name, port, args, env, out
        self.proc = None
        self.expected_down = False
        self.starts = 0
        self.unexpected_exits = []
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            logf = open(os.path.join(self.out, f"server-{self.name}.log"), "ab")
            logf.write(f"\n===== start #{self.starts + 1} at {datetime.datetime.utcnow().isoformat()}Z =====\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(self.args + ["--port", str(self.port)], env=self.env, stdout=logf,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=unblock_signals)
            logf.close()
            self.starts += 1
            self.expected_down = False
            record_pid(self.out, self.proc.pid)
            return self.proc

    def kill9(self):
        with self.lock:
            self.expected_down = True
            p = self.proc
        p.send_signal(signal.SIGKILL)
        p.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def record_pid(out, pid):
    with open(os.path.join(out, "pids"), "a") as f:
        f.write(f"{pid}\n")


def http_get(port, path, timeout=3.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_healthy(port, deadline_s):
    end = now() + deadline_s
    while now() < end:
        try:
            st, _ = http_get(port, "/health", timeout=1.0)
            if st == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------------------------
# buyers


class Shared:
    def __init__(self, cfg, sale_id, ports, log):
        self.cfg, self.sale_id, self.ports, self.log = cfg, sale_id, ports, log
        self.lock = threading.Lock()
        self.phase = "faults"  # faults -> finish -> stop
        self.t0 = now()
        self.fault_len = cfg.fault_seconds
        self.sold = set()          # items known sold (acknowledged purchase or item_sold answer)
        self.acked_purchases = 0
        self.user_bought = collections.Counter()
        self.sold_out_seen_at = None
        self.stats = collections.Counter()
        self.violations = []       # (kind, detail) seen by the clients themselves
        self.sold_out_over_hold = []  # (code, record): a live hold re-checked out answered sold_out
        self.stop = threading.Event()

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def violation(self, kind, detail):
        with self.lock:
            self.violations.append((kind, detail))


class Buyer(threading.Thread):
    def __init__(self, idx, sh):
        super().__init__(daemon=True, name=f"buyer-{idx}")
        self.sh, self.rng = sh, random.Random(sh.cfg.seed * 1000 + idx)
        self.conns = {}
        self.first_port = None  # where the next request goes first (retries go anywhere)

    # one HTTP exchange with retries on errors, timeouts and 503 (same request, random instance)
    def call(self, path, kind, deadline_s=40.0):
        sh = self.sh
        end = now() + deadline_s
        backoff = 0.05
        first, self.first_port = self.first_port, None
        while True:
            port = first or self.rng.choice(sh.ports)
            first = None
            ts = now()
            try:
                c = self.conns.get(port)
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=sh.cfg.request_timeout)
                    self.conns[port] = c
                c.request("POST", path, headers={"Content-Length": "0"})
                r = c.getresponse()
                body = r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    self.conns.pop(port, None)
            except (OSError, http.client.HTTPException) as e:
                c = self.conns.pop(port, None)
                if c is not None:
                    c.close()
                sh.count(f"{kind}_transport_error")
                if isinstance(e, socket.timeout):
                    sh.count(f"{kind}_timeout")
                status, body = None, None
            if sh.cfg.balancer and status in (502, 504):
                # HAProxy's answer when the instance it had sent the request to died or stalled: like a
                # connection error, the outcome is unknown to the buyer, who retries (the server never
                # answers 502 or 504 itself).
                sh.count(f"{kind}_balancer_{status}")
                status, body = None, None
            tr = now()
            if status is not None and status != 503:
                if status >= 500:
                    sh.count("buyer_5xx")
                    sh.violation("5xx", f"{kind} {path} on :{port} -> {status} {body[:200]!r}")
                try:
                    js = json.loads(body) if body else {}
                except ValueError:
                    js = {}
                    sh.violation("bad_json", f"{kind} {path} -> {status} {body[:200]!r}")
                return status, js, ts, tr, port
            if status == 503:
                sh.count(f"{kind}_503")
                if sh.phase != "faults" and now() - sh.faults_ended_at > sh.cfg.settle_seconds:
                    sh.count(f"{kind}_503_after_settle")
            if now() > end or sh.stop.is_set():
                sh.count(f"{kind}_gave_up")
                return None, None, ts, tr, port
            time.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 1.0)

    def pick_user(self):
        sh = self.sh
        for _ in range(20):
            u = self.rng.randrange(sh.cfg.users)
            if sh.user_bought[u] < sh.cfg.user_limit:
                return u
        return self.rng.randrange(sh.cfg.users)

    def pick_item(self):
        sh = self.sh
        n = sh.cfg.items
        for _ in range(30):
            i = self.rng.randint(1, n)
            if i not in sh.sold:
                return i
        with sh.lock:
            left = [i for i in range(1, n + 1) if i not in sh.sold]
        return self.rng.choice(left) if left else self.rng.randint(1, n)

    def checkout(self, user, item):
        sh = self.sh
        uid = f"u{user:04d}"
        st, js, ts, tr, port = self.call(f"/checkout?user_id={uid}&id={item}", "checkout")
        if st is None:
            return None
        rec = {"k": "checkout", "ts": round(ts, 4), "tr": round(tr, 4), "port": port, "user": uid, "item": item,
               "status": st}
        if st == 200:
            rec.update(code=js.get("code"), sale=js.get("sale_id"), item_ans=js.get("item_id"),
                       expires_at=js.get("expires_at"))
            sh.count("checkout_200")
            if js.get("item_id") != item or js.get("sale_id") != sh.sale_id:
                sh.violation("checkout_mismatch", json.dumps(rec))
        else:
            err = (js.get("error") or {}).get("code")
            rec.update(error=err, sale=sh.sale_id)
            sh.count(f"checkout_{st}_{err}")
            if err == "item_sold":
                with sh.lock:
                    sh.sold.add(item)
            elif err == "sold_out":
                with sh.lock:
                    if sh.sold_out_seen_at is None and sh.phase != "faults":
                        sh.sold_out_seen_at = now()
        sh.log.write(rec)
        return rec

    def purchase(self, code, item, uid, expires_ms):
        sh = self.sh
        st, js, ts, tr, port = self.call(f"/purchase?code={code}", "purchase")
        if st is None:
            return None
        rec = {"k": "purchase", "ts": round(ts, 4), "tr": round(tr, 4), "port": port, "code": code, "status": st}
        if st == 200:
            rec.update(sale=js.get("sale_id"), item=js.get("item_id"), user=js.get("user_id"),
                       purchased_at=js.get("purchased_at"))
            sh.count("purchase_200")
            if js.get("item_id") != item or js.get("user_id") != uid or js.get("sale_id") != sh.sale_id:
                sh.violation("S7_purchase_mismatch", f"code {code} held for {uid}/{item}: {json.dumps(rec)}")
        else:
            err = (js.get("error") or {}).get("code")
            rec.update(error=err)
            sh.count(f"purchase_{st}_{err}")
            if st == 404:
                sh.violation("S6_handed_out_code_unknown", json.dumps(rec))
            elif st == 410 and tr * 1000 < expires_ms:
                sh.violation("S6_live_code_refused", f"answered before expires_at {expires_ms}: {json.dumps(rec)}")
        sh.log.write(rec)
        return rec

    def run(self):
        try:
            self.loop()
        except Exception as e:  # noqa: BLE001
            import traceback
            self.sh.violation("drill_buyer_crashed", traceback.format_exc())

    def loop(self):
        sh, rng, cfg = self.sh, self.rng, self.sh.cfg
        bought = []  # (code, purchase record) of this buyer, for idempotent re-purchase probes
        while not sh.stop.is_set():
            if sh.phase == "faults":
                time.sleep(rng.uniform(0.0, cfg.think_max))
                target = cfg.items * cfg.fault_fraction * min(1.0, (now() - sh.t0) / sh.fault_len)
                if sh.acked_purchases >= target:
                    # ahead of the pace: a probe instead (refusal on a sold item, or a re-purchase)
                    if bought and rng.random() < 0.5:
                        code, first = rng.choice(bought)
                        again = self.purchase(code, first["item"], first["user"], 0)
                        if again and again["status"] == 200 and any(
                                again.get(k) != first.get(k) for k in ("sale", "item", "user", "purchased_at")):
                            sh.violation("S7_repurchase_differs", f"{json.dumps(first)} then {json.dumps(again)}")
                    elif sh.sold:
                        with sh.lock:
                            item = rng.choice(tuple(sh.sold))
                        self.checkout(self.pick_user(), item)
                    continue
            elif sh.phase == "stop" or sh.sold_out_seen_at is not None:
                return
            user, item = self.pick_user(), self.pick_item()
            rec = self.checkout(user, item)
            if rec is None or rec["status"] != 200:
                if rec is not None and rec["status"] == 403:
                    time.sleep(0.05)
                continue
            code = rec["code"]
            exp_ms = parse_ms(rec["expires_at"])
            # sometimes retry the checkout (must hand out the same code while the hold is live)
            if rng.random() < cfg.recheckout_p:
                again = self.checkout(user, item)
                # item_sold is a right answer: another buyer thread acting as the same user may
                # have bought the item with this very code in between (S1 is checked at the end);
                # so is sold_out, checked first, when that purchase was the sale's last item
                if again is not None and again.get("error") == "sold_out":
                    with sh.lock:
                        sh.sold_out_over_hold.append((code, again))  # right only if the code was bought: checked at the end
                if again is not None and again["ts"] * 1000 < exp_ms - 1000 and again.get("error") not in ("item_sold", "sold_out"):
                    if again["status"] != 200 or again["code"] != code:
                        sh.violation("retry_checkout_differs", f"{json.dumps(rec)} then {json.dumps(again)}")
            if sh.phase == "faults" and rng.random() < cfg.abandon_p:
                sh.count("abandoned_holds")
                continue
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0, 0.3))
            if rng.random() < cfg.dup_purchase_p:
                # the same purchase twice at once, one per instance: both must answer the same 200
                twin = Buyer(0, sh)
                twin.rng = random.Random(rng.random())
                box = []
                twin.first_port, self.first_port = sh.ports[1], sh.ports[0]
                th = threading.Thread(target=lambda: box.append(twin.purchase(code, item, rec["user"], exp_ms)))
                th.start()
                p = self.purchase(code, item, rec["user"], exp_ms)
                th.join()
                for c in twin.conns.values():
                    c.close()
                sh.count("duplicate_purchases")
                q = box[0] if box else None
                if p and q and p["status"] == 200 and q["status"] == 200 and any(
                        p.get(k) != q.get(k) for k in ("sale", "item", "user", "purchased_at")):
                    sh.violation("S7_duplicate_purchase_differs", f"{json.dumps(p)} / {json.dumps(q)}")
                if (p is None or p["status"] != 200) and q is not None and q["status"] == 200:
                    p = q
            else:
                p = self.purchase(code, item, rec["user"], exp_ms)
            if p is not None and p["status"] == 200:
                with sh.lock:
                    sh.acked_purchases += 1
                    sh.sold.add(item)
                    sh.user_bought[user] += 1
                bought.append((code, p))


# --------------------------------------------------------------------------------------------
# malformed-request flood (a separate process)


def malformed_request(rng, items):
    """Returns (label, list of byte chunks, delay between chunks, half_close) for one malformed request.
    Every request is malformed by construction: none of them can reach a store."""
    def rnd_text(n, alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!*'()%&=+,;:@/?"):
        return "".join(rng.choice(alphabet) for _ in range(n))

    def bad_user():
        return rng.choice([rnd_text(rng.randint(65, 300), "abc"), "a b", "%21x", "x!y", "", "u%00", "%2F..%2F",
                           "ü", "%C3%BC", "a" * 65, "<script>", "u;drop", "%20"])

    def bad_item():
        return rng.choice(["0", "-1", str(items + 1), "99999999999999999999999", "1.5", "1e3", "abc", "", "0x10",
                           " 1", "%31%00", "+1", "١"])

    def bad_code():
        return rng.choice([rnd_text(rng.randint(1, 40), "ABCDEFabcdef0123456789"), "", "..", "1.2", "x.y.z",
                           "%ff%fe", "1.2.AAAA", "1.2." + "A" * 200, "-1.-1.AAAAAAAAAAAAAAAAAAAAAA",
                           "1.2.AAAAAAAAAAAAAAAAAAAA!A"])

    def utf8_bad():
        return rng.choice(["%ff", "%fe%ff", "%C3%28", "%E2%82", "%F0%28%8C%BC", "%C0%AF", "%ED%A0%80", "%zz", "%",
                           "%4", "%%", "%G1", "%c3"])

    kind = rng.randrange(15)
    method, target, headers, body = "POST", "/checkout", [], b""
    if kind == 0:    # random query string
        target = "/" + rng.choice(["checkout", "purchase"]) + "?" + rnd_text(rng.randint(1, 200))
        if "user_id=" not in target and "code=" not in target:
            target += "&zz=" + rnd_text(3, "xyz")
        else:
            target += "&unknown%ff=1"
    elif kind == 1:  # invalid user id
        target = f"/checkout?user_id={bad_user()}&id={rng.randint(1, items)}"
    elif kind == 2:  # invalid item id
        target = f"/checkout?user_id=flood{rng.randrange(1000)}&id={bad_item()}"
    elif kind == 3:  # missing parameters
        target = rng.choice(["/checkout", "/checkout?", f"/checkout?user_id=flood1", f"/checkout?id=5", "/purchase",
                             "/purchase?", "/purchase?code=", "/checkout?user_id=&id=", "/checkout?&&", "/purchase?&"])
        method = "POST"
    elif kind == 4:  # duplicated and unknown parameters
        target = rng.choice([f"/checkout?user_id=a&user_id=b&id=1", f"/checkout?user_id=a&id=1&id=2",
                             f"/checkout?user_id=a&id=1&id=1", "/purchase?code=abc&code=abc",
                             f"/checkout?user_id=a&id=1&foo=bar", "/purchase?code=x&extra=1",
                             f"/checkout?user_id=a&id=1&user_id=a", "/checkout?USER_ID=a&ID=1"])
    elif kind == 5:  # invalid UTF-8 / bad percent escapes
        which = rng.randrange(3)
        if which == 0:
            target = f"/checkout?user_id={utf8_bad()}&id=1"
        elif which == 1:
            target = f"/checkout?user_id=a&id={utf8_bad()}"
        else:
            target = f"/purchase?code={utf8_bad()}"
    elif kind == 6:  # oversized query strings: just over 2 KiB, over 16 KiB target
        n = rng.choice([2049, 3000, 10000, 17000, 40000])
        target = "/" + rng.choice(["checkout", "purchase"]) + "?user_id=" + "a" * n + "&id=1"
    elif kind == 7:  # wrong methods and unknown paths
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "GET", "TRACE"])
        target = rng.choice(["/checkout?user_id=a&id=1", "/purchase?code=x", "/checkout", "/purchase", "/nowhere",
                             "/checkout/", "//checkout", "/CHECKOUT?user_id=a&id=1"])
        if method == "GET" and target in ("/checkout?user_id=a&id=1", "/purchase?code=x"):
            pass
        if rng.random() < 0.3:
            method = "POST"
            target = rng.choice(["/health", "/sale", "/metrics", "/sales/1/items/1", "/nowhere"])
    elif kind == 8:  # bad read paths
        method = rng.choice(["GET", "HEAD"])
        target = rng.choice(["/sales/abc/items/1", "/sales/1/items/abc", "/sales/-1/items/0",
                             "/sales/99999999999999999999999/items/1", "/users/a%20b/purchases",
                             "/users/" + "x" * 100 + "/purchases", "/users/u1/purchases?sale=abc",
                             "/users/u1/purchases?sale=1&sale=2", "/users/u1/purchases?foo=1",
                             "/sales/1/items/0/image.svg", "/sales/x/items/y/image.svg", "/users/%ff/purchases"])
    elif kind == 9:  # raw invalid bytes in the request target
        raw = bytes(rng.randrange(128, 256) for _ in range(rng.randint(1, 20)))
        return ("raw_bytes_target", [b"POST /checkout?user_id=" + raw + b"&id=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], 0, False)
    elif kind == 10:  # garbage instead of HTTP
        junk = bytes(rng.randrange(0, 256) for _ in range(rng.randint(1, 500)))
        return ("garbage", [junk + b"\r\n\r\n"], 0, True)
    elif kind == 11:  # a body on a body-less endpoint, or too big a header
        if rng.random() < 0.5:
            body = b"x" * rng.choice([10, 70000])
            target = f"/checkout?user_id={bad_user()}&id=1"
        else:
            headers.append(("X-Big", "b" * rng.choice([5000, 70000])))
            target = "/purchase?code=%ff"
    elif kind == 12:  # slow request (trickled)
        target = rng.choice([f"/checkout?user_id=!&id=1", "/purchase?code=x", "/checkout?id=0&user_id=a"])
        req = f"POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()
        step = rng.randint(1, 8)
        return ("slow", [req[i:i + step] for i in range(0, len(req), step)], rng.uniform(0.01, 0.08), False)
    elif kind == 13:  # truncated request (then close, or half-close and wait)
        # (the query is malformed too: the server may answer from the head alone, before the body)
        req = f"POST /checkout?user_id=a&id={bad_item()} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc".encode()
        cut = rng.randint(1, len(req) - 1)
        # half-close and wait for the answer, or vanish without reading anything
        return ("truncated", [req[:cut]], 0, "close" if rng.random() < 0.5 else True)
    else:  # bad HTTP: wrong version, missing Host, bad headers
        return ("bad_http", [rng.choice([b"POST /checkout?user_id=a&id=0 HTTP/9.9\r\n\r\n",
                                         b"POST /checkout?user_id=!&id=1\r\n\r\n",
                                         b"POST  /purchase?code=x  HTTP/1.1\r\nHost: x\r\n\r\n",
                                         b"POST /purchase?code=x HTTP/1.1\r\nBad Header\r\n\r\n",
                                         b"POST /purchase?code=x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                                         b"POST /purchase?code=x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                                         b"POST /purchase?code=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])],
                0, True)
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    data = head.encode("latin-1", "replace") + b"\r\n" + body
    labels = {0: "random_query", 1: "bad_user", 2: "bad_item", 3: "missing", 4: "dup_unknown", 5: "bad_utf8",
              6: "oversized", 7: "wrong_method", 8: "bad_read", 11: "body_or_big_header"}
    return (labels[kind], [data], 0, False)


def send_raw(port, chunks, delay, half_close, timeout=10.0):
    """Returns the HTTP status (int), 'closed' if the server closed without a status line, or raises
    ConnectionRefusedError if the instance is down."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            for i, ch in enumerate(chunks):
                s.sendall(ch)
                if delay and i + 1 < len(chunks):
                    time.sleep(delay)
            if half_close == "close":
                return "client_closed"
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        buf = b""
        while b"\r\n" not in buf and len(buf) < 4096:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                break
            if not d:
                break
            buf += d
        if not buf:
            return "closed"
        line = buf.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
            return int(line[1])
        return "garbled"
    finally:
        s.close()


def flood_main(args):
    ports = [int(p) for p in args.ports.split(",")]
    rng0 = random.Random(args.seed)
    lock = threading.Lock()
    stats = {"sent": 0, "by_status": collections.Counter(), "by_label": collections.Counter(),
             "fivexx": [], "twoxx": [], "refused_retries": 0, "timeouts": 0}
    t_start = now()
    stop_file = args.stop_file
    done = threading.Event()

    def worker(wid):
        rng = random.Random(rng0.random() + wid)
        while not done.is_set():
            with lock:
                if stats["sent"] >= args.count and os.path.exists(stop_file):
                    return
                idx = stats["sent"]
            # pace: spread the requests over the duration, then keep going slowly until told to stop
            due = t_start + args.duration * idx / args.count
            if now() < due:
                time.sleep(min(0.2, due - now()))
                continue
            label, chunks, delay, half = malformed_request(rng, args.items)
            status = None
            for _attempt in range(50):
                port = rng.choice(ports)
                try:
                    status = send_raw(port, chunks, delay, half)
                    break
                except ConnectionRefusedError:
                    with lock:
                        stats["refused_retries"] += 1
                    time.sleep(0.1)
                except socket.timeout:
                    status = "timeout"
                    break
                except OSError as e:
                    status = f"oserror:{e.__class__.__name__}"
                    break
            with lock:
                stats["sent"] += 1
                stats["by_status"][str(status)] += 1
                stats["by_label"][label] += 1
                if isinstance(status, int) and status >= 500:
                    stats["fivexx"].append((label, port, status, repr(b"".join(chunks)[:300])))
                if isinstance(status, int) and status < 300:
                    stats["twoxx"].append((label, port, status, repr(b"".join(chunks)[:300])))

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = {"sent": stats["sent"], "by_status": dict(stats["by_status"]), "by_label": dict(stats["by_label"]),
           "fivexx": stats["fivexx"][:50], "fivexx_count": len(stats["fivexx"]), "twoxx": stats["twoxx"][:50],
           "twoxx_count": len(stats["twoxx"]), "refused_retries": stats["refused_retries"],
           "seconds": round(now() - t_start, 1)}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


# --------------------------------------------------------------------------------------------
# PostgreSQL access (psql) and the checks


def psql(url, sql):
    r = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=120,
                       preexec_fn=unblock_signals)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def check(cfg, sh, out, db_url):
    """All checks from PostgreSQL and the acknowledged-response log. Returns (problems, figures)."""
    problems = []
    sale = sh.sale_id
    purchases = psql(db_url, f"SELECT code, sale_id, item_id, user_id, purchased_at FROM purchases ORDER BY seq")
    attempts = psql(db_url, "SELECT attempt_id, sale_id, item_id, user_id, outcome, coalesce(code,''), "
                            "coalesce(expires_at::text,''), attempted_at FROM checkout_attempts ORDER BY seq")
    with open(os.path.join(out, "pg-purchases.tsv"), "w") as f:
        f.writelines("\t".join(r) + "\n" for r in purchases)
    with open(os.path.join(out, "pg-checkout-attempts.tsv"), "w") as f:
        f.writelines("\t".join(r) + "\n" for r in attempts)

    # S1 / S2 / S3 in PostgreSQL
    per_item = collections.defaultdict(list)
    per_user = collections.defaultdict(list)
    per_sale = collections.Counter()
    pg_by_code = {}
    for code, s, item, user, pat in purchases:
        per_item[(s, item)].append(code)
        per_user[(s, user)].append(code)
        per_sale[s] += 1
        pg_by_code[code] = (int(s), int(item), user, int(pat))
    oversold = [(k, v) for k, v in per_item.items() if len(v) > 1]
    overlimit = [(k, v) for k, v in per_user.items() if len(v) > cfg.user_limit]
    over_items = [(s, n) for s, n in per_sale.items() if n > cfg.items]
    for k, v in oversold:
        problems.append(f"S1 item sold twice in PostgreSQL: sale/item {k}: codes {v}")
    for k, v in overlimit:
        problems.append(f"S2 user over the limit in PostgreSQL: sale/user {k}: {len(v)} purchases")
    for s, n in over_items:
        problems.append(f"S3 sale {s} sold {n} > {cfg.items} items")

    # the acknowledged-response log
    recs = []
    with open(os.path.join(out, "acked.jsonl")) as f:
        for line in f:
            recs.append(json.loads(line))
    acked_p = {}          # code -> first 200 purchase record
    acked_p_all = []      # every 200 purchase answer (retries and concurrent duplicates included)
    answers_200 = collections.Counter()  # code -> number of 200 checkout answers
    acked_items = collections.defaultdict(set)   # (sale, item) -> codes acknowledged as purchased
    acked_users = collections.defaultdict(set)
    checkouts_200 = {}    # code -> first 200 checkout record
    refusals = collections.Counter()
    for r in recs:
        if r["k"] == "purchase" and r["status"] == 200:
            acked_p.setdefault(r["code"], r)
            acked_p_all.append(r)
            acked_items[(r["sale"], r["item"])].add(r["code"])
            acked_users[(r["sale"], r["user"])].add(r["code"])
        elif r["k"] == "checkout" and r["status"] == 200:
            checkouts_200.setdefault(r["code"], r)
            answers_200[r["code"]] += 1
            if r["code"] in checkouts_200 and (checkouts_200[r["code"]]["user"], checkouts_200[r["code"]]["item"]) != (r["user"], r["item"]):
                problems.append(f"S7 one code handed to two holders: {checkouts_200[r['code']]} / {r}")
        elif r["k"] == "checkout":
            refusals[(r["sale"], r["item"], r["user"], r.get("error"))] += 1

    client_oversold = [(k, v) for k, v in acked_items.items() if len(v) > 1]
    client_overlimit = [(k, v) for k, v in acked_users.items() if len(v) > cfg.user_limit]
    for k, v in client_oversold:
        problems.append(f"S1 clients were told they bought the same item with different codes: {k}: {sorted(v)}")
    for k, v in client_overlimit:
        problems.append(f"S2 one user was acknowledged {len(v)} purchases in sale {k[0]}: {k[1]}")

    # S4: every acknowledged purchase is in PostgreSQL, same sale/item/user (and purchased_at)
    lost = set()
    seen = set()
    for r in acked_p_all:
        code = r["code"]
        key = (code, r["sale"], r["item"], r["user"], r["purchased_at"])
        if key in seen:
            continue  # a repeat of an answer already checked
        seen.add(key)
        row = pg_by_code.get(code)
        if row is None:
            lost.add(code)
            problems.append(f"S4 acknowledged purchase missing from PostgreSQL: {json.dumps(r)}")
        elif (row[0], row[1], row[2]) != (r["sale"], r["item"], r["user"]):
            lost.add(code)
            problems.append(f"S4 acknowledged purchase differs in PostgreSQL: ack {json.dumps(r)} row {row}")
        elif row[3] // 1000 != parse_ms(r["purchased_at"]):
            problems.append(f"S4 purchased_at differs: ack {r['purchased_at']} row {row[3]}")
    # sold_out over a live hold of the same user is right only if that hold's code was bought
    for code, r in sh.sold_out_over_hold:
        if code not in pg_by_code:
            problems.append(f"S6 sold_out answered over the user's live hold {code}, which was never bought: {json.dumps(r)}")
    # a completed code answers 200 forever: a 404/410 to a request sent after a 200 was received
    first_ok = {}
    for r in acked_p_all:
        first_ok[r["code"]] = min(first_ok.get(r["code"], r["tr"]), r["tr"])
    for r in recs:
        if r["k"] == "purchase" and r["status"] in (404, 410) and r["code"] in first_ok and r["ts"] > first_ok[r["code"]]:
            problems.append(f"S7 completed code answered {r['status']} afterwards: {json.dumps(r)}")
    # S6: no code is sold after an instance answered 410 for it (expiry is decided on the store's
    # clock, the one the sale's compare-and-set is checked against): a 200 received after a 410 was
    # received for the same code means a late commit (a paused instance) sold an expired code
    first_expired = {}
    for r in recs:
        if r["k"] == "purchase" and r["status"] == 410:
            first_expired[r["code"]] = min(first_expired.get(r["code"], r["tr"]), r["tr"])
    for r in acked_p_all:
        if r["code"] in first_expired and r["tr"] > first_expired[r["code"]]:
            problems.append(f"S6 code sold after a 410 for it (at {first_expired[r['code']]}): {json.dumps(r)}")
    # S7: a purchase buys the checkout's own item for its own user
    for code, r in acked_p.items():
        c = checkouts_200.get(code)
        if c is not None and (c["item"], c["user"], c["sale"]) != (r["item"], r["user"], r["sale"]):
            problems.append(f"S7 code bought another item/user: checkout {c} purchase {r}")

    # S5: every acknowledged checkout answer is in checkout_attempts
    held_by_code = {}
    pg_refusals = collections.Counter()
    for aid, s, item, user, outcome, code, exp, at in attempts:
        if outcome == "held":
            held_by_code.setdefault(code, []).append((int(s), int(item), user, int(exp) if exp else None))
        else:
            pg_refusals[(int(s), int(item), user, outcome)] += 1
    missing_attempts = 0
    for code, r in checkouts_200.items():
        rows = held_by_code.get(code) or []
        exp_ms = parse_ms(r["expires_at"])
        matching = [1 for s, i, u, e in rows
                    if (s, i, u) == (r["sale"], r["item"], r["user"]) and e is not None and e // 1000 == exp_ms]
        if not rows:
            missing_attempts += answers_200[code]
            problems.append(f"S5 handed-out code not in checkout_attempts: {json.dumps(r)}")
        elif len(matching) < answers_200[code]:
            # every 200 answer is an attempt of its own (a repeat hands out the same code again)
            missing_attempts += answers_200[code] - len(matching)
            problems.append(f"S5 code answered {answers_200[code]} times but {len(matching)} matching held rows "
                            f"(holder/item/expiry): ack {json.dumps(r)} rows {rows}")
    for key, n in refusals.items():
        if pg_refusals[key] < n:
            missing_attempts += 1
            problems.append(f"S5 {n} acknowledged refusals {key} but {pg_refusals[key]} rows in checkout_attempts")
    # codes purchased must have been handed out as holds for the same item/user
    for code, row in pg_by_code.items():
        rows = held_by_code.get(code)
        if not rows or not any((s, i, u) == row[:3] for s, i, u, _ in rows):
            problems.append(f"S7 purchase without a matching held checkout attempt: {code} {row}")

    sold_pg = per_sale.get(str(sale), 0)
    figures = {
        "pg_purchases": len(purchases), "pg_sold_in_sale": sold_pg, "pg_checkout_attempts": len(attempts),
        "acked_purchases": len(acked_p), "acked_purchase_answers": len(acked_p_all),
        "acked_checkout_codes": len(checkouts_200),
        "acked_checkout_answers": sum(1 for r in recs if r["k"] == "checkout"),
        "acked_refusals": sum(refusals.values()), "log_records": len(recs),
        "lost": len(lost), "oversold": len(oversold) + len(client_oversold),
        "overlimit": len(overlimit) + len(client_overlimit), "missing_attempts": missing_attempts,
        "max_per_user": max((len(v) for v in per_user.values()), default=0),
        "users_at_limit": sum(1 for v in per_user.values() if len(v) == cfg.user_limit),
    }
    return problems, figures


# --------------------------------------------------------------------------------------------
# the drill


def choose_sale_length(min_left_s):
    """A sale length (about a week) under which the current sale has at least min_left_s left."""
    t = int(now())
    for k in range(0, 200):
        L = 7 * 86400 + k * 3600
        if L - (t % L) >= min_left_s:
            return L
    raise RuntimeError("no sale length found")


def start_balancer(cfg, out):
    """HAProxy on cfg.balancer (statistics on the next port) in front of the drill's instances,
    configured by scripts/haproxy-config as scripts/run-cluster is."""
    here = os.path.dirname(os.path.abspath(__file__))
    config = os.path.join(out, "haproxy.cfg")
    with open(config, "w") as f:
        subprocess.run([os.path.join(here, "haproxy-config"), str(cfg.balancer), str(cfg.balancer + 1)]
                       + [str(p) for p in cfg.ports], stdout=f, check=True)
    proc = subprocess.Popen(["haproxy", "-db", "-f", config], stdout=open(os.path.join(out, "haproxy.log"), "w"),
                            stderr=subprocess.STDOUT)
    record_pid(out, proc.pid)
    if not wait_healthy(cfg.balancer, 30):
        proc.kill()
        raise RuntimeError(f"HAProxy on :{cfg.balancer} did not pass requests; see {out}/haproxy.log")
    return proc


def run_main(cfg):
    out = cfg.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "driver.pid"), "w") as f:
        f.write(f"{os.getpid()}\n")

    # SIGTERM/SIGINT: blocked in every thread and taken by one waiter thread, which logs who sent
    # it and interrupts the main thread (KeyboardInterrupt), which stops everything and reports.
    interrupted = []

    def signal_waiter():
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
    threading.Thread(target=signal_waiter, daemon=True).start()
    db_url, redis_url = os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"]
    redis_restart = os.environ["TEST_REDIS_RESTART"]
    pg_data = os.environ["TEST_PG_DATA"]
    pg_bin = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
    rng = random.Random(cfg.seed)
    sale_length = cfg.sale_length or choose_sale_length(1800)
    T0 = now()
    timeline = []

    def event(msg):
        t = now() - T0
        timeline.append((round(t, 2), msg))
        say(f"[{t:7.2f}s] {msg}")

    env = dict(os.environ)
    env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, LOG_LEVEL="warning", SALE_ITEMS=str(cfg.items),
               USER_LIMIT=str(cfg.user_limit), HOLD_TTL=str(cfg.hold_ttl), SALE_LENGTH=str(sale_length),
               MIGRATIONS_DIR=cfg.migrations, HOST="127.0.0.1",
               # Every simulated buyer connects from 127.0.0.1: the per-client abuse limits would count
               # them as one client (they are exercised by Tests/ServerTests/AbuseTests.swift).
               CLIENT_CHECKOUT_RATE="0", CLIENT_MAX_HOLDS="0")
    insts = [Instance(n, p, [cfg.bin], env, out) for n, p in zip("AB", cfg.ports)]
    problems = []
    flood = None
    balancer = None
    buyers = []
    sh = None
    kills = 0
    rollbacks = 0
    pauses = 0
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

        # monitor: an instance that exits without being killed by the drill is a failure
        mon_stop = threading.Event()

        def monitor():
            while not mon_stop.is_set():
                for inst in insts:
                    with inst.lock:
                        p = inst.proc
                        died = p is not None and p.poll() is not None and not inst.expected_down
                    if died:
                        msg = f"instance {inst.name} exited by itself with status {p.returncode}"
                        inst.unexpected_exits.append((round(now() - T0, 2), p.returncode))
                        event("UNEXPECTED: " + msg + " (restarting it)")
                        problems.append(msg)
                        time.sleep(0.5)
                        inst.start()
                time.sleep(0.1)
        threading.Thread(target=monitor, daemon=True).start()

        log = Log(os.path.join(out, "acked.jsonl"))
        buyer_ports = cfg.ports
        if cfg.balancer:
            # --balancer: the buyers go through HAProxy in front of both instances (the deployed shape);
            # kills, pauses and the malformed flood still address the instances.
            balancer = start_balancer(cfg, out)
            buyer_ports = [cfg.balancer, cfg.balancer]
            event(f"HAProxy on :{cfg.balancer} in front of both instances; the buyers go through it")
        sh = Shared(cfg, sale_id, buyer_ports, log)
        sh.faults_ended_at = float("inf")
        stop_file = os.path.join(out, "flood.stop")
        flood = subprocess.Popen([sys.executable, os.path.abspath(__file__), "flood", "--ports",
                                  ",".join(map(str, cfg.ports)), "--count", str(cfg.malformed), "--duration",
                                  str(cfg.fault_seconds), "--items", str(cfg.items), "--seed", str(cfg.seed),
                                  "--out", os.path.join(out, "flood.json"), "--stop-file", stop_file],
                                 stdout=open(os.path.join(out, "flood.log"), "w"), stderr=subprocess.STDOUT,
                                 preexec_fn=unblock_signals)
        record_pid(out, flood.pid)
        buyers = [Buyer(i, sh) for i in range(cfg.buyers)]
        sh.t0 = now()
        for b in buyers:
            b.start()
        event(f"load started: {cfg.buyers} buyers over {cfg.users} users; malformed flood of {cfg.malformed} requests")

        # the fault schedule: kills at random moments, Redis empty once, PostgreSQL once, Redis back
        # from an older snapshot (SAVE, more sales, restart loading that dump) and an instance paused
        # (SIGSTOP past a hold's expiry, then SIGCONT) as many times as asked;
        # one of the kills lands right after the Redis restart, while the instances rebuild
        faults = ["kill"] * (cfg.kills - 1) + ["redis+kill", "pg"] + ["rollback"] * cfg.rollbacks + ["pause"] * cfg.pauses
        rng.shuffle(faults)
        span = cfg.fault_seconds - 6.0
        # one fault per slot of the fault window, at a random moment within its slot
        moments = sorted(3.0 + span * (i + rng.random() * 0.8) / len(faults) for i in range(len(faults)))
        pg_restart_cmd = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        pg_restart_cmd += [f"{pg_bin}/pg_ctl", "-D", pg_data, "-w", "-t", "60", "-m", cfg.pg_mode, "restart",
                           "-l", os.path.join(os.path.dirname(pg_data), "pgrun", "pg.log")]
        redis_host, redis_port = redis_url.split("//", 1)[1].split("/")[0].rsplit(":", 1)
        redis_cli = ["redis-cli", "-h", redis_host, "-p", redis_port]
        for when, what in zip(moments, faults):
            while now() < sh.t0 + when:  # short sleeps: an interruption is taken promptly
                time.sleep(0.2)
            if what == "rollback":
                saved = subprocess.run(redis_cli + ["SAVE"], capture_output=True, text=True)
                dump = "/".join(subprocess.run(redis_cli + ["CONFIG", "GET", x], capture_output=True, text=True)
                                .stdout.split()[1] for x in ("dir", "dbfilename"))
                acked_at_save = sh.acked_purchases
                time.sleep(rng.uniform(1.0, 4.0))  # sales go on, and are not in the dump
                info = subprocess.run(redis_cli + ["INFO", "persistence"], capture_output=True, text=True).stdout
                lost = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                             if ln.startswith("rdb_changes_since_last_save:")), "?")
                r = subprocess.run([redis_restart], capture_output=True, text=True, preexec_fn=unblock_signals)
                try:
                    os.remove(dump)  # later restarts come back empty, as the "redis+kill" fault means
                except OSError as e:
                    problems.append(f"cannot remove Redis dump {dump}: {e}")
                rollbacks += 1
                event(f"Redis restarted from an older snapshot (SAVE {saved.stdout.strip()}, restart status {r.returncode}, "
                      f"{lost} writes since the snapshot lost); "
                      f"acked purchases at the snapshot {acked_at_save}, now {sh.acked_purchases} [{rollbacks}]")
                if r.returncode != 0 or saved.stdout.strip() != "OK":
                    problems.append(f"Redis rollback failed: {saved.stdout} {r.stderr}")
                continue
            if what == "pause":
                inst = rng.choice(insts)
                length = rng.uniform(0.5, cfg.hold_ttl + 3.0)
                with inst.lock:
                    proc = inst.proc
                if proc is None or proc.poll() is not None:
                    continue
                proc.send_signal(signal.SIGSTOP)
                pauses += 1
                event(f"SIGSTOP instance {inst.name} (:{inst.port}) for {length:.1f}s [{pauses}]")
                time.sleep(length)
                proc.send_signal(signal.SIGCONT)
                event(f"SIGCONT instance {inst.name}")
                continue
            if what == "redis+kill":
                r = subprocess.run([redis_restart], capture_output=True, text=True, preexec_fn=unblock_signals)
                event(f"Redis restarted empty (status {r.returncode}); acked purchases so far {sh.acked_purchases}")
                if r.returncode != 0:
                    problems.append(f"Redis restart failed: {r.stderr}")
                time.sleep(rng.uniform(0.0, 0.5))
                what = "kill"
            if what == "kill":
                inst = rng.choice(insts)
                inst.kill9()
                kills += 1
                down = rng.uniform(0.2, 3.0)
                event(f"kill -9 instance {inst.name} (:{inst.port}) [{kills}]; "
                      f"acked purchases so far {sh.acked_purchases}; restarting in {down:.1f}s")
                time.sleep(down)
                inst.start()
                ok = wait_healthy(inst.port, 30)
                event(f"instance {inst.name} restarted ({'healthy' if ok else 'NOT healthy after 30s'})")
                if not ok:
                    problems.append(f"instance {inst.name} not healthy 30 s after restart")
            else:  # "pg"
                t1 = now()
                r = subprocess.run(pg_restart_cmd, capture_output=True, text=True, preexec_fn=unblock_signals)
                event(f"PostgreSQL restarted (pg_ctl -m {cfg.pg_mode}, status {r.returncode}, {now() - t1:.1f}s); "
                      f"acked purchases so far {sh.acked_purchases}")
                if r.returncode != 0:
                    problems.append(f"PostgreSQL restart failed: {r.stderr} {r.stdout}")
        left = sh.t0 + cfg.fault_seconds - now()
        if left > 0:
            time.sleep(left)
        sh.faults_ended_at = now()
        sh.phase = "finish"
        event(f"faults stopped; acked purchases {sh.acked_purchases}; buyers now buy every hold until sold out")

        # liveness: the sale must sell out once faults stop
        deadline = now() + cfg.sellout_deadline
        while now() < deadline and sh.sold_out_seen_at is None:
            time.sleep(0.5)
        sold_out = sh.sold_out_seen_at is not None
        if sold_out:
            event(f"sold out: first 409 sold_out {sh.sold_out_seen_at - sh.faults_ended_at:.1f}s after faults stopped")
        else:
            problems.append(f"L1/L2 the sale did not sell out within {cfg.sellout_deadline}s after faults stopped")
            event("NOT sold out by the deadline")
        sh.phase = "stop"
        for b in buyers:
            b.join(timeout=60)
        stuck = sum(1 for b in buyers if b.is_alive())
        if stuck:
            problems.append(f"{stuck} buyers still waiting for an answer 60 s after the end")
        sh.stop.set()
        log.close()
        open(stop_file, "w").close()
        flood.wait(timeout=120)
        event("load and flood stopped")

        # servers stay up and keep serving
        health = {}
        for inst in insts:
            try:
                st, body = http_get(inst.port, "/health")
                health[inst.name] = (st, json.loads(body).get("status"))
            except Exception as e:  # noqa: BLE001
                health[inst.name] = (None, str(e))
            if health[inst.name][0] != 200 or not inst.alive():
                problems.append(f"instance {inst.name} not healthy after the drill: {health[inst.name]}")
        sale_views = {}
        time.sleep(1.1)  # the /sale counts are cached for up to 1 s
        for inst in insts:
            try:
                st, body = http_get(inst.port, "/sale")
                sale_views[inst.name] = json.loads(body)
            except Exception as e:  # noqa: BLE001
                sale_views[inst.name] = {"error": str(e)}

        with open(os.path.join(out, "flood.json")) as f:
            fl = json.load(f)
        if cfg.tamper:
            # checker self-test: damage PostgreSQL the way a broken server would; the drill must fail
            psql(db_url, "DELETE FROM purchases WHERE code = (SELECT code FROM purchases ORDER BY seq LIMIT 1)")
            psql(db_url, "UPDATE purchases SET user_id = (SELECT user_id FROM purchases GROUP BY user_id "
                         "ORDER BY count(*) DESC LIMIT 1) WHERE seq = (SELECT max(seq) FROM purchases)")
            psql(db_url, "DELETE FROM checkout_attempts WHERE attempt_id = (SELECT attempt_id FROM checkout_attempts "
                         "WHERE outcome = 'item_sold' ORDER BY seq LIMIT 1)")
            event("TAMPER: deleted one purchase, moved one to the busiest user, deleted one item_sold attempt")
        # the checks
        chk_problems, fig = check(cfg, sh, out, db_url)
        problems.extend(chk_problems)
        problems.extend(f"client-side: {k}: {d}" for k, d in sh.violations)
        if fl["sent"] < cfg.malformed:
            problems.append(f"only {fl['sent']} malformed requests sent (< {cfg.malformed})")
        if fl["fivexx_count"]:
            problems.append(f"{fl['fivexx_count']} malformed requests answered 5xx, e.g. {fl['fivexx'][:5]}")
        if fl["twoxx_count"]:
            problems.append(f"{fl['twoxx_count']} malformed requests answered 2xx, e.g. {fl['twoxx'][:5]}")
        if fig["pg_sold_in_sale"] != cfg.items:
            problems.append(f"L1 sale {sale_id} has {fig['pg_sold_in_sale']} of {cfg.items} items sold in PostgreSQL")
        for name, v in sale_views.items():
            items = v.get("items", {})
            if v.get("sale_id") != sale_id:
                problems.append(f"instance {name} /sale shows sale {v.get('sale_id')} (rolled over or failed): {v}")
            elif items.get("sold") != cfg.items or items.get("held") != 0:
                problems.append(f"L2 instance {name} /sale after the drill: {items} (expected all sold, none held)")
        if sh.stats.get("checkout_503_after_settle", 0) + sh.stats.get("purchase_503_after_settle", 0):
            problems.append(f"L2 503 answers more than {cfg.settle_seconds}s after faults stopped: "
                            f"checkout {sh.stats.get('checkout_503_after_settle', 0)}, purchase {sh.stats.get('purchase_503_after_settle', 0)}")
        gave_up = sh.stats.get("checkout_gave_up", 0) + sh.stats.get("purchase_gave_up", 0)
        if gave_up:
            problems.append(f"L2 {gave_up} requests got no definite answer in 40 s of retries (every fault lasts a few seconds)")
        fivexx = fl["fivexx_count"] + sh.stats.get("buyer_5xx", 0)

        # summary
        say("")
        say("==== crash drill summary ====")
        say(f"output (logs, acknowledged responses, PostgreSQL dumps): {out}")
        say(f"sale {sale_id}: SALE_ITEMS={cfg.items} USER_LIMIT={cfg.user_limit} HOLD_TTL={cfg.hold_ttl}s "
            f"SALE_LENGTH={sale_length}s; instances A :{cfg.ports[0]} B :{cfg.ports[1]}")
        say(f"load: {cfg.buyers} buyers, {cfg.users} users, faults for {cfg.fault_seconds}s, "
            f"seed {cfg.seed}, total {now() - T0:.0f}s")
        say(f"faults: kill -9 x{kills} (starts: A {insts[0].starts}, B {insts[1].starts}), Redis restarted empty x1, "
            f"Redis restarted from an older snapshot x{rollbacks}, instance paused x{pauses}, "
            f"PostgreSQL restarted x1 (-m {cfg.pg_mode}); unexpected exits: "
            f"{sum(len(i.unexpected_exits) for i in insts)}")
        ans = sorted((k, v) for k, v in sh.stats.items())
        say("buyer answers: " + ", ".join(f"{k}={v}" for k, v in ans))
        say(f"acknowledged: {fig['acked_purchases']} purchases, {fig['acked_checkout_codes']} checkout codes, "
            f"{fig['acked_checkout_answers']} checkout answers ({fig['acked_refusals']} refusals); "
            f"{fig['log_records']} log records")
        say(f"PostgreSQL: {fig['pg_purchases']} purchases ({fig['pg_sold_in_sale']} in sale {sale_id}), "
            f"{fig['pg_checkout_attempts']} checkout attempts; max purchases per user {fig['max_per_user']}, "
            f"users at the limit {fig['users_at_limit']}")
        say(f"checks: S1 oversold={fig['oversold']} S2 overlimit={fig['overlimit']} "
            f"S3 sold={fig['pg_sold_in_sale']}/{cfg.items} S4 lost={fig['lost']} "
            f"S5 missing attempts={fig['missing_attempts']}; client-side violations={len(sh.violations)}; "
            f"requests given up={gave_up}")
        say(f"sellout after faults: {'yes' if sold_out else 'NO'}; /sale after: "
            + "; ".join(f"{n}: {v.get('items')}" for n, v in sale_views.items()))
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
                f"overlimit={fig['overlimit']} 5xx={fivexx} rollbacks={rollbacks} pauses={pauses}")
        if problems or kills < 5 or rollbacks < cfg.rollbacks or pauses < cfg.pauses:
            say(f"drill FAILED: {keys}")
            return 1
        say(f"drill ok: {keys}")
        return 0
    except KeyboardInterrupt:
        say(f"drill FAILED: kills={kills} acked={sh.acked_purchases if sh else 0} lost=? oversold=? overlimit=? 5xx=? "
            f"(interrupted: {interrupted[0] if interrupted else 'KeyboardInterrupt'})")
        return 130
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        say(f"drill FAILED: kills={kills} acked={sh.acked_purchases if sh else 0} lost=? oversold=? overlimit=? 5xx=? "
            f"(drill error: {e})")
        return 1
    finally:
        if sh is not None:
            sh.stop.set()
        if flood is not None and flood.poll() is None:
            flood.kill()
        if balancer is not None:
            balancer.terminate()
            balancer.wait(timeout=15)
        for inst in insts:
            if inst.alive():
                inst.expected_down = True
                inst.proc.terminate()
                try:
                    inst.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    inst.proc.kill()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode")
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True)
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
    r.add_argument("--dup-purchase-p", type=float, default=0.15,
                   help="share of purchases sent twice at once, one to each instance")
    r.add_argument("--tamper", action="store_true", help="checker self-test: damage PostgreSQL before the checks")
    r.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    f = sub.add_parser("flood")
    f.add_argument("--ports", required=True)
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--duration", type=float, required=True)
    f.add_argument("--items", type=int, required=True)
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--threads", type=int, default=32)
    f.add_argument("--out", required=True)
    f.add_argument("--stop-file", required=True)
    args = ap.parse_args()
    if args.mode == "flood":
        flood_main(args)
        return 0
    args.ports = [int(p) for p in args.ports.split(",")]
    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
