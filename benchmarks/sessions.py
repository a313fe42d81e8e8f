"""Memory and disk per stored session of a running protonb, and what cookieless GETs store.

    python benchmarks/sessions.py --url http://127.0.0.1:8000 --pid PID \
        --db PROTOTYPE/.protonb/sessions.sqlite3 --body ../shared/bench/body.txt [--count 2000]

Run against a freshly started server (load.sh does). Prints one line per fact:

    SESSIONS target=protonb kind=cookieless-get requests=N cookies_set=N rows_created=N
    SESSIONS target=protonb kind=empty sessions=N rss_bytes_per_session=B disk_bytes_per_session=B
    SESSIONS target=protonb kind=20-answers sessions=N rss_bytes_per_session=B disk_bytes_per_session=B

"cookieless-get" is the harness's W3 request (GET /answers, no cookie). An "empty" session is a
browser that got a cookie on its first GET and came back with it (a second GET); "20-answers" is
a new participant posting the 20-field form once. RSS is the server's (VmRSS) before and after,
disk is the store's logical size (page_count x page_size, WAL included).
"""

from __future__ import annotations

import argparse
import http.client
import sqlite3
import time
import urllib.parse
from pathlib import Path


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def store_facts(db: Path) -> tuple[int, int]:
    """(rows, logical bytes) of the store, read without disturbing the server."""
    if not db.exists():
        return 0, 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(rows), int(pages) * int(size)
    finally:
        conn.close()


class Client:
    """One kept-alive connection, like a browser's."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)

    def request(self, method: str, path: str, cookie: str = "", body: bytes = b"") -> tuple[int, str]:
        headers = {"Cookie": cookie} if cookie else {}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body or None, headers=headers)
        response = self.conn.getresponse()
        response.read()
        set_cookie = response.getheader("Set-Cookie") or ""
        return response.status, set_cookie.split(";", 1)[0]


def per_session(before: tuple[int, int], after: tuple[int, int], count: int) -> str:
    return (
        f"rss_bytes_per_session={(after[0] - before[0]) // count}"
        f" disk_bytes_per_session={(after[1] - before[1]) // count}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--target", default="protonb")
    parser.add_argument("--question", default="/question")
    parser.add_argument("--answers", default="/answers")
    args = parser.parse_args()
    body = args.body.read_bytes().strip()
    client = Client(args.url)
    n = args.count
    time.sleep(1)

    rows0, _ = store_facts(args.db)
    cookies = 0
    for _ in range(n):
        status, cookie = client.request("GET", args.answers)
        assert status == 200, status
        cookies += bool(cookie)
    rows1, _ = store_facts(args.db)
    print(
        f"SESSIONS target={args.target} kind=cookieless-get requests={n} cookies_set={cookies}"
        f" rows_created={rows1 - rows0}",
        flush=True,
    )

    def measure(kind: str, make_one) -> None:
        time.sleep(0.5)
        rows_before, disk_before = store_facts(args.db)
        rss_before = rss_bytes(args.pid)
        for _ in range(n):
            make_one()
        time.sleep(0.5)
        rows_after, disk_after = store_facts(args.db)
        rss_after = rss_bytes(args.pid)
        made = rows_after - rows_before
        line = f"SESSIONS target={args.target} kind={kind} sessions={made} requests_per_session=2"
        if made > 0:
            line += " " + per_session((rss_before, disk_before), (rss_after, disk_after), made)
        line += f" rss_before_kb={rss_before // 1024} rss_after_kb={rss_after // 1024}"
        print(line, flush=True)

    def empty_session() -> None:
        status, cookie = client.request("GET", args.answers)
        assert status == 200 and cookie, (status, cookie)
        status, _ = client.request("GET", args.answers, cookie=cookie)
        assert status == 200, status

    def filled_session() -> None:
        status, cookie = client.request("POST", args.question, body=body)
        assert status == 302 and cookie, (status, cookie)
        status, _ = client.request("GET", args.answers, cookie=cookie)
        assert status == 200, status

    measure("empty", empty_session)
    measure("20-answers", filled_session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
