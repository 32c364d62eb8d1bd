#!/usr/bin/env python3
"""Plots bench/report-sip_calls.md from its per-run table: against the
offered rate, the median over the cold-start runs with min–max error bars
of goodput, p99 setup latency, CPU per call and Sirius's worst event-loop
lag, for Sirius, sipp to sipp direct and Kamailio.

    python3 bench/plot_sip_calls.py      # writes bench/sip_calls.png

Needs matplotlib (apt-get install python3-matplotlib, or pip install
matplotlib); bench/sip_calls.sh calls this when it is there and says so when
it is not.
"""
import pathlib
import statistics
import sys

HERE = pathlib.Path(__file__).resolve().parent
SYSTEMS = (("Sirius", "o-", "C0"), ("direct", "s--", "C1"), ("Kamailio", "^-.", "C2"))
# Columns of the per-run table after run, rate and system.
COLUMNS = ("load", "cps", "failed", "refused", "retrans", "p50", "p99", "cpu_us", "lag_ms",
           "unexpected", "wait_ms")


def runs(report):
    """The per-run ramp table: one dict per run, rate and system."""
    out = []
    for line in report.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 + len(COLUMNS) or not (cells[0].isdigit() and cells[1].isdigit()):
            continue
        row = {"run": int(cells[0]), "offered": float(cells[1]), "system": cells[2]}
        for name, cell in zip(COLUMNS, cells[3:]):
            try:
                row[name] = float(cell)
            except ValueError:
                row[name] = None
        out.append(row)
    return out


def spread(rows, system, column):
    """Offered rates, medians and the (below, above) error bars of column."""
    by_rate = {}
    for r in rows:
        if r["system"] == system and r[column] is not None:
            by_rate.setdefault(r["offered"], []).append(r[column])
    x = sorted(by_rate)
    med = [statistics.median(by_rate[k]) for k in x]
    below = [m - min(by_rate[k]) for k, m in zip(x, med)]
    above = [max(by_rate[k]) - m for k, m in zip(x, med)]
    return x, med, (below, above)


def main():
    report = HERE / "report-sip_calls.md"
    rows = runs(report)
    if not rows:
        print("no per-run rows in bench/report-sip_calls.md", file=sys.stderr)
        return 1
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: apt-get install python3-matplotlib", file=sys.stderr)
        return 1
    nruns = len({r["run"] for r in rows})
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (a, b), (c, d) = axes
    offered = sorted({r["offered"] for r in rows if r["system"] == "Sirius"})
    a.plot(offered, offered, ":", color="grey", label="offered")
    panels = (
        (a, "cps", "completed calls/s", "Goodput", SYSTEMS),
        (b, "p99", "INVITE → 200 OK p99, ms", "Setup latency (p99)", SYSTEMS),
        (c, "cpu_us", "CPU µs per call", "CPU per call (the box in the middle)",
         [s for s in SYSTEMS if s[0] != "direct"]),
        (d, "lag_ms", "worst per-second lag, ms", "Sirius event-loop lag (stall detector)",
         [s for s in SYSTEMS if s[0] == "Sirius"]),
    )
    for ax, column, ylabel, title, systems in panels:
        for system, style, color in systems:
            x, med, err = spread(rows, system, column)
            if x:
                ax.errorbar(x, med, yerr=err, fmt=style, color=color, capsize=3, label=system)
        ax.set_xlabel("offered calls/s")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
    c.axhline(250, color="red", linewidth=0.8, linestyle=":", label="goal 250 µs")
    d.axhline(20, color="red", linewidth=0.8, linestyle=":", label="goal 20 ms")
    c.legend()
    d.legend()
    fig.suptitle(f"Median of {nruns} cold-start run(s), bars min–max (bench/report-sip_calls.md)")
    fig.tight_layout()
    fig.savefig(HERE / "sip_calls.png", dpi=100)
    print("wrote bench/sip_calls.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
