"""The malformed-request fuzzer of the crash drill (docs/drill.md): raw-socket requests that are
malformed by construction, so that none may reach a store; any 2xx or 5xx answer is a finding.

    python3 scripts/drilllib/fuzzer.py --ports 18132,18133 --count 12000 --duration 75 --items 2000 \
        --out flood.json --stop-file flood.stop

Sends --count requests spread over --duration seconds (then keeps going slowly until the stop file
exists), each to a random port, and writes a JSON summary (`sent`, `by_status`, `by_label`, the
`fivexx` and `twoxx` findings). Standard library only.
"""
import argparse
import collections
import json
import os
import random
import socket
import sys
import threading
import time


def now():
    return time.time()


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


def run(args):
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="malformed-request flood of the crash drill")
    ap.add_argument("--ports", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--items", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
