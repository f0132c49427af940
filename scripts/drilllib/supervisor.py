"""The crash drill's process supervisor (docs/drill.md): starts, kills, pauses and restarts the
sale-server instances, restarts the stores, runs HAProxy, and plans when each fault happens.

Everything it starts is recorded in OUT/pids, so that scripts/drill's last-resort trap can stop it.
Standard library only.
"""
import datetime
import http.client
import os
import signal
import subprocess
import threading
import time


def unblock_signals():
    """preexec_fn of every child: the driver blocks SIGTERM/SIGINT (drill.py), children must not."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)


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
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            st, _ = http_get(port, "/health", timeout=1.0)
            if st == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


class Instance:
    """One sale-server process on a fixed port, restarted on the same port after a kill."""

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
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
            logf.write(f"\n===== start #{self.starts + 1} at {stamp} =====\n".encode())
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

    def pause(self, seconds):
        """SIGSTOP for `seconds`, then SIGCONT; False when the instance was not running."""
        with self.lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        proc.send_signal(signal.SIGCONT)
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def died_unexpectedly(self):
        """The exit status when the process exited without being killed by the drill, else None."""
        with self.lock:
            p = self.proc
            if p is not None and p.poll() is not None and not self.expected_down:
                self.expected_down = True
                return p.returncode
        return None

    def stop(self):
        if self.alive():
            self.expected_down = True
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Monitor(threading.Thread):
    """Restarts an instance that exits without being killed by the drill, and reports it (`on_exit`)."""

    def __init__(self, instances, on_exit):
        super().__init__(daemon=True, name="monitor")
        self.instances, self.on_exit = instances, on_exit
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for inst in self.instances:
                status = inst.died_unexpectedly()
                if status is not None:
                    inst.unexpected_exits.append(status)
                    self.on_exit(inst, status)
                    time.sleep(0.5)
                    inst.start()
            time.sleep(0.1)


class Stores:
    """The throw-away PostgreSQL and Redis of scripts/with-stores (its TEST_* variables)."""

    def __init__(self, environ, pg_mode):
        self.db_url, self.redis_url = environ["TEST_DATABASE_URL"], environ["TEST_REDIS_URL"]
        self.redis_restart_command = environ["TEST_REDIS_RESTART"]
        pg_data = environ["TEST_PG_DATA"]
        pg_bin = environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
        self.pg_restart_command = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.pg_restart_command += [f"{pg_bin}/pg_ctl", "-D", pg_data, "-w", "-t", "60", "-m", pg_mode, "restart",
                                    "-l", os.path.join(os.path.dirname(pg_data), "pgrun", "pg.log")]
        host, port = self.redis_url.split("//", 1)[1].split("/")[0].rsplit(":", 1)
        self.redis_cli = ["redis-cli", "-h", host, "-p", port]

    def redis(self, *args):
        return subprocess.run(self.redis_cli + list(args), capture_output=True, text=True).stdout

    def restart_redis(self):
        """Redis restarted (empty, unless a dump is there); returns (status, stderr)."""
        r = subprocess.run([self.redis_restart_command], capture_output=True, text=True, preexec_fn=unblock_signals)
        return r.returncode, r.stderr

    def snapshot_redis(self):
        """SAVE; returns (SAVE's answer, the dump's path)."""
        saved = self.redis("SAVE").strip()
        dump = "/".join(self.redis("CONFIG", "GET", x).split()[1] for x in ("dir", "dbfilename"))
        return saved, dump

    def redis_changes_since_save(self):
        info = self.redis("INFO", "persistence")
        return next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                     if ln.startswith("rdb_changes_since_last_save:")), "?")

    def restart_postgres(self):
        r = subprocess.run(self.pg_restart_command, capture_output=True, text=True, preexec_fn=unblock_signals)
        return r.returncode, (r.stderr + r.stdout).strip()


def start_balancer(port, instance_ports, out):
    """HAProxy on `port` (statistics on the next port) in front of the instances, configured by
    scripts/haproxy-config as scripts/run-cluster is."""
    scripts = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = os.path.join(out, "haproxy.cfg")
    with open(config, "w") as f:
        subprocess.run([os.path.join(scripts, "haproxy-config"), str(port), str(port + 1)]
                       + [str(p) for p in instance_ports], stdout=f, check=True)
    proc = subprocess.Popen(["haproxy", "-db", "-f", config], stdout=open(os.path.join(out, "haproxy.log"), "w"),
                            stderr=subprocess.STDOUT)
    record_pid(out, proc.pid)
    if not wait_healthy(port, 30):
        proc.kill()
        raise RuntimeError(f"HAProxy on :{port} did not pass requests; see {out}/haproxy.log")
    return proc


def plan_faults(rng, kills, rollbacks, pauses, fault_seconds):
    """When each fault happens: (seconds after the load starts, kind), in time order. One fault per
    equal slot of the window [3 s, fault_seconds - 3 s], at a random moment within the first 80 % of
    its slot, in random order: kills-1 plain kills, one Redis restart empty followed by a kill
    ("redis+kill"), one PostgreSQL restart, the rollbacks (Redis back from an older snapshot) and
    the pauses (SIGSTOP/SIGCONT)."""
    faults = ["kill"] * (kills - 1) + ["redis+kill", "pg"] + ["rollback"] * rollbacks + ["pause"] * pauses
    rng.shuffle(faults)
    span = fault_seconds - 6.0
    moments = sorted(3.0 + span * (i + rng.random() * 0.8) / len(faults) for i in range(len(faults)))
    return list(zip(moments, faults))


def choose_sale_length(now_s, min_left_s):
    """A sale length (about a week) under which the current sale has at least min_left_s left, so
    no rollover happens during the drill."""
    t = int(now_s)
    for k in range(0, 200):
        length = 7 * 86400 + k * 3600
        if length - (t % length) >= min_left_s:
            return length
    raise RuntimeError("no sale length found")
