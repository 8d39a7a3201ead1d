"""Output: the terminal tables, docs/benchmarks.md and the SVG chart."""

from __future__ import annotations

import html
import math
import re
import shlex
import statistics
import sys

from .common import NGINX_CONF, THREADS, WSGI_APP
from .servers import Server, machine
from .wrk import Scenario, check, fmt_mib, fmt_ms, fmt_rps, fmt_us, ratio, worker_split, wrk_argv


def table(headers: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A markdown table, also readable as plain text (padded)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return [line(headers), sep, *(line(r) for r in rows)]


def scenario_table(servers: list[Server], sc: Scenario, res: dict, refs: list[Server], full: bool = True) -> list[str]:
    """One scenario's table, a row per server: its req/s, that as a multiple of each of `refs`' req/s,
    p99, CPU µs/request, (with `full`) connections in service and the workers' CPU split, and errors."""
    headers = ["server", "req/s (median)", *(f"× {ref.label}" for ref in refs), "p99 (median)", "CPU µs/req",
               *(["conns in service", "workers' CPU split"] if full else []), "errors"]
    rows = []
    for s in servers:
        r = res[s.key][sc.key]
        rows.append([s.label, fmt_rps(r.rps), *(f"{ratio(r.rps, res[ref.key][sc.key].rps):.2f}×" for ref in refs),
                     fmt_ms(r.p99_ms), fmt_us(r.cpu_us),
                     *(["–" if r.served is None else f"{r.served:.0f}", worker_split(r.runs)] if full else []),
                     str(r.errors) + (f" ({r.error_detail})" if r.errors else "")])
    return table(headers, rows, "l" + "r" * (len(headers) - 2) + "l")


def best_line(servers: list[Server], sc: Scenario, res: dict) -> str:
    best = max(servers, key=lambda s: res[s.key][sc.key].rps)
    cheapest = min((s for s in servers if res[s.key][sc.key].cpu_us), key=lambda s: res[s.key][sc.key].cpu_us,
                   default=None)
    return f"Most requests/s: **{best.label}**" + (f"; least CPU per request: **{cheapest.label}**." if cheapest else ".")


def nice_step(vmax: float, ticks: int = 5) -> float:
    raw = vmax / ticks if vmax > 0 else 1
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def short_num(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def svg_chart(servers: list[Server], scenarios: list[Scenario], res: dict, title_note: str) -> str:
    """Two panels of grouped bars (one group per scenario, one bar per server; the servers of the Python
    app after a gap, with their own legend line): requests/s on a linear axis, CPU µs/request on a
    logarithmic one (the Python servers use 10-40x the CPU of the others)."""
    W, left, right = 980, 78, 20
    panel_h, top0 = 300, 74
    panels = [
        ("Requests per second (median of the rounds; higher is better)", lambda s: s.rps, short_num, False),
        ("Server CPU time per request, µs, log scale (all its processes; lower is better)",
         lambda s: s.cpu_us or 0.0, lambda v: f"{v:.0f}" if v >= 10 else f"{v:.1f}", True),
    ]
    H = top0 + len(panels) * (panel_h + 70) + 10
    plot_w = W - left - right
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="#fff"/>',
           f'<text x="{left}" y="20" font-size="15" font-weight="bold">rustgun (native and WSGI) vs nginx, gunicorn, '
           f'granian: hello app, wrk, 2 workers each</text>',
           f'<text x="{left}" y="37" fill="#555">{html.escape(title_note)}</text>']
    legend = [("native app:", [s for s in servers if not s.python]),
              ("Python WSGI app:", [s for s in servers if s.python])]
    for y, (caption, group) in zip((45, 63), (g for g in legend if g[1])):
        out.append(f'<text x="{left}" y="{y + 10}" fill="#555">{html.escape(caption)}</text>')
        x = left + 116
        for s in group:
            out.append(f'<rect x="{x:.0f}" y="{y}" width="11" height="11" fill="{s.colour}"/>')
            out.append(f'<text x="{x + 15:.0f}" y="{y + 10}">{html.escape(s.label)}</text>')
            x += 26 + 6.7 * len(s.label)
    n_s, n_b = len(scenarios), len(servers)
    # The Python app's bars start after a gap of `gap` bars when both kinds are shown.
    first_py = next((i for i, s in enumerate(servers) if s.python), n_b)
    gap = 0.7 if 0 < first_py < n_b else 0.0
    group_w = plot_w / n_s
    bar_w = group_w * 0.84 / (n_b + gap)
    for pi, (ptitle, value, fmt, log_scale) in enumerate(panels):
        top = top0 + 30 + pi * (panel_h + 70)
        bottom = top + panel_h
        vals = [value(res[s.key][sc.key]) for s in servers for sc in scenarios]
        vmax = max(vals, default=1) or 1
        if log_scale:
            positive = [v for v in vals if v > 0] or [1.0]
            lo = 10 ** math.floor(math.log10(min(positive)))
            hi = 10 ** math.ceil(math.log10(vmax * 1.3))
            ticks = [m * 10 ** e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1) for m in (1, 2, 5)
                     if lo <= m * 10 ** e <= hi]

            def height(v: float, lo=lo, hi=hi) -> float:
                return panel_h * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            step = nice_step(vmax * 1.08)
            ymax = step * max(1, -(-vmax * 1.08 // step))
            ticks = [i * step for i in range(int(round(ymax / step)) + 1)]

            def height(v: float, ymax=ymax) -> float:
                return panel_h * v / ymax
        out.append(f'<text x="{left}" y="{top - 10}" font-weight="bold">{html.escape(ptitle)}</text>')
        for t in ticks:
            y = bottom - height(t)
            out.append(f'<line x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
                       f'{short_num(t) if t else "0"}</text>')
        out.append(f'<line x1="{left}" x2="{W - right}" y1="{bottom}" y2="{bottom}" stroke="#333"/>')
        for gi, sc in enumerate(scenarios):
            gx = left + gi * group_w + group_w * 0.08
            for bi, s in enumerate(servers):
                v = value(res[s.key][sc.key])
                h = height(v)
                bx = gx + (bi + (gap if bi >= first_py else 0)) * bar_w
                out.append(f'<rect x="{bx:.1f}" y="{bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                           f'fill="{s.colour}"><title>{html.escape(s.label)}, {html.escape(sc.label)}: '
                           f'{fmt(v)}</title></rect>')
                tx, ty = bx + (bar_w - 2) / 2 + 3.5, bottom - h - 4
                out.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="10" fill="#222" '
                           f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{fmt(v)}</text>')
            out.append(f'<text x="{left + gi * group_w + group_w / 2:.1f}" y="{bottom + 18}" text-anchor="middle">'
                       f'{html.escape(sc.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render(args, servers, scenarios, res, idle, started, load_before, load_after, nofile, vers) -> dict:
    by = {s.key: s for s in servers}
    rg = [s for s in servers if s.rustgun_class and not s.python]  # rustgun with the native hello app
    wsgi = [s for s in servers if s.rustgun_class and s.python]  # rustgun + libwsgi.so
    py = [s for s in servers if s.python]  # every server of the Python app
    has = lambda k: k in res  # noqa: E731
    refs = lambda *keys: [by[k] for k in keys if has(k)]  # noqa: E731

    # Per-scenario tables: every server against nginx, then the Python app's servers against gunicorn
    # sync and granian.
    result_lines: list[str] = []
    wsgi_lines: list[str] = []
    text_tables: list[str] = []
    for sc in scenarios:
        everyone = scenario_table(servers, sc, res, refs("nginx"))
        result_lines += [f"### {sc.label}", "", *everyone, "", best_line(servers, sc, res), ""]
        text_tables += [f"{sc.label}:", *everyone, ""]
        if wsgi:
            python = scenario_table(py, sc, res, refs("gunicorn-sync", "granian"), full=False)
            wsgi_lines += [f"### WSGI, {sc.label}", "", *python, "", best_line(py, sc, res), ""]
            text_tables += [f"WSGI app, {sc.label}:", *python, ""]

    # The bridge's overhead: CPU µs/request of rustgun + libwsgi.so less the same class's with libhello.so.
    overhead_rows = []
    for w in wsgi:
        native = next((s for s in rg if s.rustgun_class == w.rustgun_class), None)
        if native is None:
            continue
        cells = []
        for sc in scenarios:
            n, p = res[native.key][sc.key].cpu_us, res[w.key][sc.key].cpu_us
            cells.append("–" if n is None or p is None else f"+{p - n:.1f} ({n:.1f} → {p:.1f})")
        overhead_rows.append([f"`{w.rustgun_class}`", *cells])
    overhead_lines = table(["class", *(sc.label for sc in scenarios)], overhead_rows) if overhead_rows else []

    rss_rows = []
    for s in servers:
        rss_rows.append([s.label, str(len(s.rss_idle)), fmt_mib(s.rss_idle), fmt_mib(s.pss_idle),
                         fmt_mib(s.rss_after), fmt_mib([s.master_rss] if s.master_rss else [])])
    rss_lines = table(["server", "worker processes", "idle RSS/worker MiB", "idle PSS/worker MiB",
                       "RSS/worker after the load MiB", "master RSS MiB"], rss_rows, "lrrrrr")

    # Targets.
    tgt: list[list[str]] = []
    def sc_of(conns, close):
        return next((sc.key for sc in scenarios if sc.conns == conns and sc.close == close), None)
    if has("rustgun-event") and has("nginx"):
        k = sc_of(256, False)
        e, n = res["rustgun-event"][k], res["nginx"][k]
        ok = ratio(e.rps, n.rps) >= 1.0 and e.p99_ms is not None and n.p99_ms is not None and e.p99_ms <= n.p99_ms
        tgt.append(["`event`, keep-alive, 256 conns: ≥ 1.0× nginx req/s, p99 ≤ nginx's",
                    f"{ratio(e.rps, n.rps):.2f}× ({fmt_rps(e.rps)} vs {fmt_rps(n.rps)}); p99 {fmt_ms(e.p99_ms)} vs "
                    f"{fmt_ms(n.p99_ms)}", check(ok)])
    if has("nginx"):
        for s in rg:
            vals = [ratio(res[s.key][sc_of(c, True)].rps, res["nginx"][sc_of(c, True)].rps) for c in (32, 256)]
            tgt.append([f"`{s.rustgun_class}`, `Connection: close`: ≥ 0.95× nginx",
                        f"{vals[0]:.2f}× at 32, {vals[1]:.2f}× at 256", check(min(vals) >= 0.95)])
    def ahead(group: list[Server], suffix: str, gunicorn_times: float) -> list[list[str]]:
        """The req/s targets against gunicorn sync (≥ gunicorn_times) and granian (> 1×), every scenario."""
        rows = []
        for ref, want, digits, passes in (("gunicorn-sync", f"≥ {gunicorn_times:g}× gunicorn sync", 1,
                                           lambda v: v >= gunicorn_times),
                                          ("granian", "ahead of granian", 2, lambda v: v > 1.0)):
            if not has(ref):
                continue
            for s in group:
                vals = [ratio(res[s.key][sc.key].rps, res[ref][sc.key].rps) for sc in scenarios]
                rows.append([f"`{s.rustgun_class}`{suffix}: {want} (every scenario)",
                             f"min {min(vals):.{digits}f}×, " + " / ".join(f"{v:.{digits}f}×" for v in vals),
                             check(passes(min(vals)))])
        return rows

    tgt += ahead(rg, "", 10)
    for s in rg:
        mx = max(s.rss_idle) / 1024 if s.rss_idle else float("nan")
        tgt.append([f"`{s.rustgun_class}`: idle RSS per worker ≤ 5 MiB", f"{fmt_mib(s.rss_idle)} MiB (VmRSS)",
                    check(mx <= 5)])
    if idle:
        r = ratio(idle["idle"].rps, idle["base"].rps)
        ok = idle["held"] == idle["n"] and r >= 0.8
        tgt.append([f"{idle['n']:,} idle keep-alive connections held by 2 `event` workers, wrk ≥ 80% of its req/s",
                    f"{idle['held']:,} of {idle['n']:,} held; {r:.0%} ({fmt_rps(idle['idle'].rps)} vs "
                    f"{fmt_rps(idle['base'].rps)} req/s)", check(ok)])
    tgt_lines = table(["target", "measured", ""], tgt, "llc")
    tgt8 = ahead(wsgi, " + libwsgi.so", 5)
    tgt8_lines = table(["target", "measured", ""], tgt8, "llc") if tgt8 else []

    idle_lines: list[str] = []
    if idle:
        idle_lines = table(
            ["", "req/s (median)", "p99 (median)", "CPU µs/req", "errors", "RSS/worker MiB", "workers' CPU split"],
            [["without idle connections", fmt_rps(idle["base"].rps), fmt_ms(idle["base"].p99_ms),
              fmt_us(idle["base"].cpu_us), str(idle["base"].errors), fmt_mib(idle["rss_before"]),
              worker_split(idle["base"].runs)],
             [f"with {idle['n']:,} idle connections", fmt_rps(idle["idle"].rps), fmt_ms(idle["idle"].p99_ms),
              fmt_us(idle["idle"].cpu_us), str(idle["idle"].errors), fmt_mib(idle["rss_held"]),
              worker_split(idle["idle"].runs)]],
            "lrrrrrr")
        idle_lines += ["",
                       f"The {idle['n']:,} connections each made one request and then stayed idle; each round opened "
                       f"them anew (at most {idle['open_s']:.1f} s) and closed them after its wrk run. The workers held {' and '.join(str(n) for n in idle['per_worker'])} "
                       f"sockets (listener included), and after each wrk run at least {idle['held']:,} of them still answered a "
                       f"request. "
                       f"Ratio with/without: **{ratio(idle['idle'].rps, idle['base'].rps):.0%}**."]

    bg = [r.background_pct for s in servers for sc in scenarios for r in res[s.key][sc.key].runs]
    bg_med = statistics.median(bg) if bg else 0.0
    busy_note = (f"Other work on the machine during the wrk runs (CPU used by neither the server nor wrk): median "
                 f"{bg_med:.0f}% of one core, max {max(bg, default=0):.0f}%. Load average {load_before} before, "
                 f"{load_after} after.")
    busy_warning = ("" if bg_med < 25 else
                    "\n\n**This run was not quiet**: other work took a median "
                    f"{bg_med:.0f}% of a core while wrk ran, so the requests/s below are low and noisy (the slower, "
                    "CPU-hungry servers suffer most); the CPU µs/request figures are the ones to compare.")
    chart_note = (f"{started:%Y-%m-%d}, {machine()['nproc']} cores, wrk -t2, {args.rounds} × {args.duration:g} s "
                  f"rounds; background load median {bg_med:.0f}% of a core")

    text = "\n".join(
        text_tables
        + (["WSGI bridge overhead, CPU µs/request over the native app (native → WSGI):", *overhead_lines, ""]
           if overhead_lines else [])
        + ["RSS per worker (MiB):", *rss_lines, ""]
        + ([f"{args.idle_connections:,} idle keep-alive connections (rustgun event):", *idle_lines, ""] if idle else [])
        + ["Targets (issue 6):", *tgt_lines, ""]
        + (["Targets (issue 8, WSGI):", *tgt8_lines, ""] if tgt8_lines else [])
        + [busy_note])

    mach = machine()
    def shown(argv: list[str], port: int) -> str:
        """The command as run, with the ephemeral port and nginx's temporary prefix named."""
        text = shlex.join(argv).replace(f"127.0.0.1:{port}", "127.0.0.1:$PORT").replace(f"--port {port}", "--port $PORT")
        return re.sub(r"/tmp/rustgun-bench-nginx-[^/ ']+", "$PREFIX", text)

    cmds = [f"{s.label}: `{shown(s.argv, s.port)}`" for s in servers]
    if idle:
        cmds.append(f"rustgun event, idle test: `{shown(idle['argv'], idle['port'])}`")
    nginx_conf = NGINX_CONF.format(prefix="$PREFIX", port="$PORT", temp_paths="    # (*_temp_path under $PREFIX)\n")
    sample_wrk = [shlex.join(wrk_argv(0, sc.conns, args.duration, sc.close)).replace(":0/", ":$PORT/") for sc in
                  scenarios]
    argv_run = shlex.join(["python3", "benches/compare.py", *sys.argv[1:]])
    threads_note = ", ".join(f"`{s.rustgun_class}` " + (f"with `--threads {s.argv[s.argv.index('--threads') + 1]}`"
                                                        if "--threads" in s.argv else "without `--threads`")
                             for s in wsgi)
    overhead_section = "" if not overhead_lines else f"""### Bridge overhead per request

Server CPU µs/request of rustgun + `libwsgi.so` over that of the same class with the native `libhello.so`
(the native figure → the WSGI one), per scenario: what the bridge and the interpreter cost per request.

{chr(10).join(overhead_lines)}

"""
    wsgi_section = "" if not wsgi else f"""## Python WSGI app: rustgun + libwsgi.so vs gunicorn and granian

The same `target/bench/hello_wsgi.py` (below) served by rustgun with the WSGI bridge `libwsgi.so`
("rustgun+wsgi"), by gunicorn (sync, and gthread with `--threads {THREADS}`) and by granian's WSGI
interface, 2 workers each. rustgun's classes run as in the native rows:
{threads_note}
(without `--threads` the `event` class calls the app on its loop). These are rows of the tables above,
with their requests/s as multiples of gunicorn sync's and granian's.

{chr(10).join(wsgi_lines)}
{overhead_section}"""
    tgt8_section = "" if not tgt8_lines else f"""
## Targets (issue 8: the WSGI bridge)

{chr(10).join(tgt8_lines)}
"""

    md = f"""# Benchmarks

Written by `make bench` (`benches/compare.py`) on {started:%Y-%m-%d %H:%M %Z}; rerun it to refresh this page.
`make bench` builds the release binaries, installs what is missing (wrk and nginx with apt-get, gunicorn and
granian into the venv `target/bench-venv`), starts every server below once with 2 workers on its own
loopback port, and runs wrk against them in interleaved rounds. Each rustgun worker class runs twice:
with the native hello app (`libhello.so`), and as "rustgun+wsgi", the WSGI bridge (`libwsgi.so`) serving
the same Python app as gunicorn and granian
([Python WSGI app](#python-wsgi-app-rustgun--libwsgiso-vs-gunicorn-and-granian)). A quick smoke run that
leaves this page alone: `python3 benches/compare.py --duration 1 --rounds 1 --no-docs` (`--only KEY,…`
runs some of the servers: `rustgun-sync`, `wsgi-event`, `granian`, …). The criterion bench of the
protocol core (request heads parsed per second) is separate: `make bench-protocol`.

![requests/s and CPU µs/request per server and scenario](@SVG@)

## How it was measured

- This run: `{argv_run}` — {args.rounds} interleaved round{"s" if args.rounds > 1 else ""} (every server once per round, in the order below)
  of {args.duration:g} s per scenario{f", after a {args.warmup:g} s warm-up per server" if args.warmup > 0 else ""}.
  Figures are the **median** of the rounds; CPU µs/request is the server's CPU time over all rounds divided by
  the requests wrk completed in them; errors are summed.
- **CPU µs/request**: user + system time of all the server's processes (master and workers, all threads,
  plus reaped children) from `/proc/PID/stat`, read just before and after each wrk run. On this 2-core
  machine wrk (2 threads) competes with the server for the CPUs and is often the real limit of requests/s,
  so this figure, which does not depend on who wins the scheduler, is the fairer comparison of efficiency.
  The kernel's softirq time (the loopback's TCP processing, much the same for every server) is accounted
  apart on this kernel and is in no process's time, so it is not in this figure.
- **conns in service**: requests/s × wrk's mean latency (Little's law), the number of wrk's connections
  that were being served on average. Well below the connection count means the rest sat waiting: a
  `sync` worker serves one connection at a time and a `threads` worker one per thread, each until the
  client closes it, so under keep-alive the other connections wait in the accept queue and their
  requests never finish (wrk's latencies cover finished requests only, hence their low p99).
- **bridge overhead**: the CPU µs/request of rustgun + `libwsgi.so` less that of the same worker class
  serving the native `libhello.so` in the same scenario. The HTTP side (parsing, writing, the same
  response bytes) is the same code, so the difference is what the bridge and CPython add per request:
  the environ dict, the call of the app and `start_response`, turning its list into the response, the GIL.
- **workers' CPU split**: each worker's share of the workers' CPU time during the runs, busiest first:
  how evenly the kernel and the server spread wrk's connections over the 2 workers.
- **RSS per worker**: `VmRSS` of each worker process (every process of the server but the master), idle
  (after one GET), and again after all the load; PSS (`/proc/PID/smaps_rollup`) shares out the pages
  workers share with their master.
- **p99**: wrk's latency distribution; requests wrk timed out on (2 s) are in the errors, not in p99.
- **Other work** below: the machine's process CPU time (user + system from `/proc/stat`) during each wrk
  run less the server's and wrk's, i.e. what the other builds and tests on the machine took.
- Servers run with `RLIMIT_NOFILE` raised to {nofile[0]} (65536 or the hard limit), stdout/stderr to
  `target/bench/logs/`.

wrk, per scenario:

```
{chr(10).join(sample_wrk)}
```

Servers (each on its own ephemeral port, `$PORT`; paths relative to the repository; nginx's `$PREFIX` is a
temporary directory):

{chr(10).join("- " + c for c in cmds)}

`target/bench/hello_wsgi.py` (gunicorn, granian and rustgun + `libwsgi.so`):

```python
{WSGI_APP.rstrip()}
```

nginx.conf (run with `-p $PREFIX -e stderr -c $PREFIX/nginx.conf -g 'daemon off;'`):

```nginx
{nginx_conf.rstrip()}
```

## Machine

{chr(10).join(table(["machine", ""], [[k, v] for k, v in mach.items()] + [[k, v] for k, v in vers.items()], "ll"))}

{busy_note} Other engineers build and test on this machine at the same time, so
a busy neighbour skews single runs; the interleaved rounds spread that over all servers alike.{busy_warning}

## Results

{chr(10).join(result_lines)}
{wsgi_section}## Memory

{chr(10).join(rss_lines)}

## {args.idle_connections:,} idle keep-alive connections

{"Skipped (`--skip-idle`)." if not idle else ""}{chr(10).join(idle_lines)}

## Targets (issue 6)

{chr(10).join(tgt_lines)}
{tgt8_section}"""
    return {"text": text, "markdown": md, "chart_note": chart_note}
