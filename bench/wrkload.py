"""Closed-loop HTTP load from `wrk` (Debian package `wrk`), for servers faster than a Python client can drive: on
2 cores, 8 Python client processes spend more time in `requests` than a fast server spends answering.
`rate(url, body, keys)` POSTs `body % random_key` with `connections` open connections for `seconds`."""
import os
import re
import shutil
import subprocess
import tempfile


def available():
    return shutil.which("wrk") is not None


def rate(url, body, keys, connections=8, seconds=4, headers=None):
    """Requests per second and p50/p99 latency (ms) of POST `url` with `body` (a %-format taking one random key in
    [0, keys)); answers other than 2xx are counted and reported."""
    head = {"Content-Type": "application/json", **(headers or {})}
    lines = ", ".join(f'["{k}"] = "{v}"' for k, v in head.items())
    script = f"""
math.randomseed(7)
local headers = {{{lines}}}
request = function()
  return wrk.format("POST", nil, headers, string.format('{body}', math.random(0, {keys - 1})))
end
done = function(summary, latency, requests)
  io.write(string.format("non2xx %d\\n", summary.errors.status))
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", f.name, url],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(f.name)

    def ms(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"non2xx (\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    return {"req_per_s": round(rps), "p50_ms": round(ms(50), 3), "p99_ms": round(ms(99), 3),
            "non_2xx": int(errors.group(1)) if errors else 0, "socket_errors": socket_errors.group(0) if socket_errors else ""}
