#!/usr/bin/env python3
"""One reading of the counters scripts/bench turns into cost per request: the CPU time used so
far by the server processes, by the process in front of them (HAProxy, when the bench loads a
balancer), by PostgreSQL (the postmaster and every backend and helper it forked) and by Redis,
and the stores' operation counters. Two readings, before and after a scenario's load, give its
costs; bench-report.py takes the differences.

    bench-snapshot.py OUT.json [--pids "PID ..."] [--front-port PORT] [--pg URL] [--redis HOST:PORT]

Everything is read from /proc, `redis-cli INFO` and `pg_stat_database`, so the stores must run
on this machine (their CPU is then read through the process listening on their port).
"""
import argparse
import json
import os
import re
import subprocess
import time
import urllib.parse

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [0] is the state, [1] the parent pid."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, children=False):
    """User + system time of a process (all its threads); with children, also the time of the
    children it has reaped (cutime + cstime)."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def listening_pid(port):
    """The pid of the process listening on a local TCP port, if this user may see it."""
    try:
        out = subprocess.run(["ss", "-ltnpH", "sport = :%d" % port], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"pid=(\d+)", out)
    return int(match.group(1)) if match else None


def process_tree_cpu(root):
    """A PostgreSQL cluster's CPU: the postmaster with the backends it reaped, plus every live child."""
    total = cpu_seconds(root, children=True)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(stat_fields(int(entry))[1]) == root:
                    total += cpu_seconds(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return total


def redis_info(host, port, section):
    out = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "info", section],
                         capture_output=True, text=True, timeout=10).stdout
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("#"))


def redis_reading(address):
    host, port = address.rsplit(":", 1)
    cpu = redis_info(host, port, "cpu")
    calls = {}
    for key, value in redis_info(host, port, "commandstats").items():
        fields = dict(part.split("=", 1) for part in value.strip().split(","))
        calls[key.replace("cmdstat_", "")] = int(fields["calls"])
    return {
        "redis_cpu_s": float(cpu.get("used_cpu_user", 0)) + float(cpu.get("used_cpu_sys", 0)),
        "redis_calls": calls,
    }


def pg_reading(url):
    parsed = urllib.parse.urlparse(url)
    reading = {}
    pid = listening_pid(parsed.port or 5432)
    if pid:
        reading["pg_cpu_s"] = process_tree_cpu(pid)
    query = ("SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_returned, tup_fetched "
             "FROM pg_stat_database WHERE datname = current_database()")
    out = subprocess.run(["psql", url, "-XAtq", "-c", query], capture_output=True, text=True, timeout=30).stdout.strip()
    if out:
        names = ["xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_returned", "tup_fetched"]
        reading["pg_stats"] = dict(zip(names, map(int, out.split("|"))))
    return reading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--pids", default="")
    parser.add_argument("--front-port", type=int)
    parser.add_argument("--pg")
    parser.add_argument("--redis")
    args = parser.parse_args()
    reading = {"monotonic_s": time.monotonic()}
    pids = [int(p) for p in args.pids.split()]
    if pids:
        reading["server_cpu_s"] = sum(cpu_seconds(p) for p in pids)
    if args.front_port:
        front = listening_pid(args.front_port)
        if front and front not in pids:
            reading["front_cpu_s"] = cpu_seconds(front)
            reading["front_command"] = open("/proc/%d/comm" % front).read().strip()
    if args.pg:
        reading.update(pg_reading(args.pg))
    if args.redis:
        reading.update(redis_reading(args.redis))
    with open(args.out, "w") as f:
        json.dump(reading, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
