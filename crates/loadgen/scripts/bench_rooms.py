#!/usr/bin/env python3
"""Creates the benchmark rooms on a running Palaver through its REST API.

Logs into the panel as `admin`, creates an API token, then creates rooms
(no PIN, no join/leave beeps, no greeting wait, max participants as asked)
with public numbers on the `local` trunk, so a load generator on loopback
can call them without digest. Prints the numbers it made, one per line.

    bench_rooms.py --http 127.0.0.1:8080 --password PW --big 7000 \
        --small-base 7100 --small-count 400 --small-size 5

Standard library only (urllib, http.cookiejar). Loopback only.
"""

import argparse
import http.cookiejar
import json
import re
import sys
import urllib.parse
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True, help="host:port of the panel (loopback)")
    ap.add_argument("--password", required=True, help="the admin password")
    ap.add_argument("--big", help="number of the one big room (max 1000)")
    ap.add_argument("--small-base", type=int, help="first number of the small rooms")
    ap.add_argument("--small-count", type=int, default=0)
    ap.add_argument("--small-size", type=int, default=5)
    ap.add_argument("--trunk", default="local")
    a = ap.parse_args()
    host = a.http.split(":")[0]
    if not (host.startswith("127.") or host in ("localhost", "[::1]")):
        sys.exit("bench_rooms.py talks to loopback only")
    base = "http://" + a.http

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def form(path, fields):
        data = urllib.parse.urlencode(fields).encode()
        return opener.open(urllib.request.Request(base + path, data=data)).read().decode()

    form("/login", {"username": "admin", "password": a.password, "next": "/tokens"})
    page = opener.open(base + "/tokens").read().decode()
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    if not m:
        sys.exit("login failed: no CSRF field on /tokens (wrong admin password?)")
    page = form("/tokens", {"csrf": m.group(1), "name": "bench"})
    m = re.search(r'id="token-value"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*id="token-value"', page
    )
    if not m:
        sys.exit("could not create an API token")
    token = m.group(1)

    def api(method, path, body=None):
        req = urllib.request.Request(
            base + "/api/v1" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read().decode() or "null")

    trunks = api("GET", "/trunks")
    items = trunks.get("items", trunks) if isinstance(trunks, dict) else trunks
    trunk = next((t for t in items if t.get("name") == a.trunk), None)
    if trunk is None:
        sys.exit(f"no trunk named {a.trunk!r} (start the server with --demo)")

    def room(number, name, size):
        r = api(
            "POST",
            "/rooms",
            {
                "name": name,
                "max_participants": size,
                "announce_join_leave": False,
                "wait_for_host": False,
            },
        )
        api(
            "POST",
            "/numbers",
            {
                "number": number,
                "destination": {"kind": "room", "id": r["id"]},
                "trunk_id": trunk["id"],
                "description": "benchmark",
            },
        )
        print(number)

    if a.big:
        room(a.big, "Benchmark room (1000)", 1000)
    for i in range(a.small_count):
        n = str(a.small_base + i)
        room(n, f"Benchmark room {n}", max(2, a.small_size))


if __name__ == "__main__":
    main()
