"""WebSocket conformance after the Autobahn testsuite's fuzzingclient, for Python 3 with the
standard library only (the ``autobahntestsuite`` package is Python 2 code).

    python3 tests/ws_cases/autobahn.py --url ws://127.0.0.1:8000/echo [--sections 1,2,9] [--cases 6.4.*]

The server at the URL must echo every message (text as text, binary as binary). Each case of
Autobahn's sections 1-7, 9, 10, 12 and 13 runs on its own connection with its own deadline
(``--timeout``, 10 s), so a run always ends. The cases themselves are in ``cases.py`` (1-7) and
``bulk.py`` (9, 10, 12, 13), the client in ``wsclient.py``, how a case is run and judged in
``runner.py``.

Prints a JSON report: per section ``{passed, failed, cases}``; the failures, each with its case
id, expectation and what was seen; the cases that passed the NON-STRICT way or by dropping TCP
without a close frame (both of which Autobahn accepts where it says so), and how many of the
connections the server had to fail it closed with which code; the informational cases' outcomes;
and which cases are extra (not Autobahn's). Exits 1 if any case failed.
"""

import argparse
import fnmatch
import json
import sys
import time

import bulk
import cases
import runner

ALL_SECTIONS = ["1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"]


def collect(sections, messages):
    found = []
    for section in sections:
        if section in cases.SECTIONS:
            found += cases.SECTIONS[section]()
        elif section in bulk.SECTIONS:
            found += bulk.SECTIONS[section](messages)
        else:
            raise SystemExit("no section %s (there are %s)" % (section, ",".join(ALL_SECTIONS)))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/path of an echo endpoint")
    parser.add_argument("--sections", default=",".join(ALL_SECTIONS), help="comma-separated, default all")
    parser.add_argument("--cases", default="*", help="only the case ids matching this glob (e.g. 6.4.*)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds each case may take")
    parser.add_argument("--messages", type=int, default=10,
                        help="messages per case of sections 12 and 13 (Autobahn: 1000)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole run: the cases left when it is spent fail unrun")
    args = parser.parse_args()
    selected = [c for c in collect(args.sections.split(","), args.messages) if fnmatch.fnmatch(c.id, args.cases)]
    started = time.monotonic()
    sections, failures, non_strict, dropped, informational, slow = {}, [], [], [], {}, []
    compressed, failing_closes = 0, {}
    for case in selected:
        began = time.monotonic()
        if args.budget is not None and began - started > args.budget:
            why = "not run: the %g s budget was spent" % args.budget
            record = runner.result(case, False, runner.FAILED, why, None)
        else:
            record = runner.run(case, args.url, args.timeout)
        took = time.monotonic() - began
        counts = sections.setdefault(case.section, {"passed": 0, "failed": 0, "cases": 0})
        counts["cases"] += 1
        counts["passed" if record["passed"] else "failed"] += 1
        compressed += record["compressed_replies"]
        if not record["passed"]:
            failures.append({k: record[k] for k in ("id", "expectation", "seen")})
        elif record["behavior"] == runner.NON_STRICT:
            non_strict.append(case.id)
        elif record["behavior"] == runner.INFORMATIONAL:
            informational[case.id] = record["seen"]
        if record["passed"] and record["closing"] and record["closing"].startswith("TCP drop"):
            dropped.append(case.id)
        if record["passed"] and not case.by_me and not case.informational:
            how = record["closing"].split(",")[0]
            failing_closes[how] = failing_closes.get(how, 0) + 1
        if took > 1.0:
            slow.append([case.id, round(took, 2)])
    report = {
        "url": args.url,
        "sections": sections,
        "passed": sum(s["passed"] for s in sections.values()),
        "failed": len(failures),
        "cases": len(selected),
        "failures": failures,
        "non_strict": non_strict,
        "tcp_drop_instead_of_close": dropped,
        "how_the_server_failed_connections": failing_closes,
        "informational": informational,
        "extra_cases": [c.id for c in selected if c.extra],
        "messages_per_compression_case": args.messages,
        "compressed_replies": compressed,
        "seconds": round(time.monotonic() - started, 2),
        "slow_cases": slow,
    }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 1 if failures or not selected else 0


if __name__ == "__main__":
    sys.exit(main())
