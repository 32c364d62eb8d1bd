#!/usr/bin/env python3
"""Plots bench/report-sip_calls.md: goodput and refused share against the
offered rate, and setup latency p50/p99, Sirius next to sipp-to-sipp direct.

    python3 bench/plot_sip_calls.py      # writes bench/sip_calls.png

Needs matplotlib (pip install matplotlib); bench/sip_calls.sh calls this when
it is there and says so when it is not.
"""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def rows(report):
    """The ramp table: one dict per offered rate."""
    out = []
    for line in report.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 14 or not cells[0].isdigit():
            continue
        num = lambda s: float(s) if s not in ("", "n/a") else float("nan")
        out.append({
            "offered": num(cells[0]), "cps": num(cells[1]), "refused": num(cells[2]),
            "failed": num(cells[3]), "retrans": num(cells[4]), "p50": num(cells[5]),
            "p99": num(cells[6]), "direct": num(cells[9]), "dp50": num(cells[11]),
            "dp99": num(cells[12]),
        })
    return out


def main():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: pip install matplotlib", file=sys.stderr)
        return 1
    report = HERE / "report-sip_calls.md"
    data = rows(report)
    import re
    m = re.search(r"Each step: (\d+)s", report.read_text())
    duration = int(m.group(1)) if m else 8
    if not data:
        print("no ramp rows in bench/report-sip_calls.md", file=sys.stderr)
        return 1
    x = [r["offered"] for r in data]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(x, x, ":", color="grey", label="offered")
    a.plot(x, [r["direct"] for r in data], "s--", label="sipp → sipp direct")
    a.plot(x, [r["cps"] for r in data], "o-", label="through Sirius (goodput)")
    a.set_xlabel("offered calls/s")
    a.set_ylabel("completed calls/s")
    share = a.twinx()
    total = [r["offered"] * duration for r in data]
    share.bar(x, [100.0 * (r["refused"] + r["failed"]) / t for r, t in zip(data, total)],
              width=120, alpha=0.25, color="red", label="refused + failed %")
    share.set_ylabel("refused (503) + failed, % of calls")
    a.legend(loc="upper left")
    share.legend(loc="lower right")
    a.set_title("Throughput and overload")
    b.plot(x, [r["p50"] for r in data], "o-", label="Sirius p50")
    b.plot(x, [r["p99"] for r in data], "o-", label="Sirius p99")
    b.plot(x, [r["dp99"] for r in data], "s--", label="direct p99")
    b.set_xlabel("offered calls/s")
    b.set_ylabel("INVITE → 200 OK, ms")
    b.set_title("Setup latency")
    b.legend()
    fig.tight_layout()
    fig.savefig(HERE / "sip_calls.png", dpi=100)
    print("wrote bench/sip_calls.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
