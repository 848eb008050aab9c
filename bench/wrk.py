"""Random GETs driven by wrk (a load generator written in C) instead of Python clients.

On a 2-core machine the load generator shares the CPU with the server it measures. Eight
httpx clients in one Python process cost 0.4-0.6 ms of CPU per GET and hold the GIL:
they cap the rate near 2,000 GETs per second whatever the server does, which hides most
of the difference between servers. wrk costs a few microseconds per request.

Each wrk thread has one connection (``-t8 -c8``): requests on a connection are sent one
after the other, so the thread knows which item each response is for and checks the
status and the item's UID in the body, as the httpx workload does. wrk runs for a fixed
time (its main thread sleeps that long whatever its threads do), so the figure is the
requests answered in that time; thread i walks the plan from entry i in steps of the
thread count, wrapping around, so every server is asked for the same items in the same
order.
"""

from __future__ import annotations

import base64
import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_LUA = r"""
local plan = {
%(plan)s
}
local nthreads = %(threads)d
local threads = {}
local counter = 0
wrk.headers["Authorization"] = "%(auth)s"

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  pos = id + 1
  got, bad_status, bad_body = 0, 0, 0
  -- wrk calls thread 0's request() once before the run to check what it returns
  -- (script_verify_request); that request is never sent, so it must not be queued.
  dry_run = (id == 0)
  pending, head, tail = {}, 1, 0
end

function request()
  if dry_run then
    dry_run = false
    return wrk.format("GET", plan[1][1])
  end
  local k = pos
  if k > #plan then k = ((k - 1) %% #plan) + 1 end
  pos = pos + nthreads
  tail = tail + 1
  pending[tail] = k
  return wrk.format("GET", plan[k][1])
end

function response(status, headers, body)
  local k = pending[head]
  pending[head] = nil
  head = head + 1
  got = got + 1
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif not string.find(body, "UID:" .. plan[k][2], 1, true) then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local g, s, b = 0, 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("got")
    s = s + t:get("bad_status")
    b = b + t:get("bad_body")
  end
  io.write(string.format(
    "BENCH got=%%d bad_status=%%d bad_body=%%d errors=%%d p50_us=%%d p99_us=%%d duration_us=%%d\n",
    g, s, b,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    bad_status: int
    bad_body: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    cpu_s: float  # wrk's own CPU time


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run(
    base_url: str,
    auth: tuple[str, str] | None,
    plan: list[tuple[str, str]],
    connections: int,
    seconds: float,
) -> WrkResult:
    """GET the (path, uid) entries of `plan` over `connections` connections for `seconds`."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    token = ""
    if auth is not None:
        token = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    entries = ",\n".join(f"{{{_lua_string(p)}, {_lua_string(u)}}}" for p, u in plan)
    script = _LUA % {"plan": entries, "threads": connections, "auth": token}
    with tempfile.TemporaryDirectory(prefix="homeport-wrk-") as tmp:
        path = Path(tmp) / "gets.lua"
        path.write_text(script)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        threads = [f"-t{connections}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        proc = subprocess.run(
            [exe, *threads, "--timeout", "30s", "-s", str(path), base_url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(
        r"BENCH got=(\d+) bad_status=(\d+) bad_body=(\d+) errors=(\d+) "
        r"p50_us=(\d+) p99_us=(\d+) duration_us=(\d+)",
        proc.stdout,
    )
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-300:] or proc.stdout}")
    got, bad_s, bad_b, errors, p50, p99, duration = (int(x) for x in match.groups())
    return WrkResult(
        requests=got,
        seconds=duration / 1e6 if duration else wall,
        bad_status=bad_s,
        bad_body=bad_b,
        socket_errors=errors,
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
        cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
