"""The fleet sweep's figure: catch-up, CPU per event and peak RSS against fleet size, one PNG.

A picture because the question the sweep answers is a shape (does cost grow with the fleet, and how), which three
points on log-scaled axes show at a glance; the numbers themselves go to the JSON beside it. matplotlib is imported
here only, so the default benchmark does not pay for it.
"""

from __future__ import annotations

import json
import os


def _tick(y: float, _position) -> str:
    return f"{y:,.0f}" if y >= 10 or y == 0 else f"{y:,.1f}"


def sweep_png(points: list[dict], path: str, *, title: str, rss_bound_mb: float) -> str:
    """Write the PNG to `path` and the points as JSON beside it (same name, .json); returns the JSON's path.

    `points`: one dict per fleet size, with charge_points, catchup_events_per_s, cpu_ms_per_1000, peak_rss_mb.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    sizes = [p["charge_points"] for p in points]
    panels = [
        ("catchup_events_per_s", "catch-up, events/s", None),
        ("cpu_ms_per_1000", "CPU per 1,000 events, ms", None),
        ("peak_rss_mb", "peak RSS, MB", rss_bound_mb),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(13, 4), constrained_layout=True)
    for axis, (key, label, bound) in zip(axes, panels):
        values = [p[key] for p in points]
        axis.plot(sizes, values, marker="o")
        for x, y in zip(sizes, values):
            axis.annotate(f"{y:,.0f}" if y >= 100 else f"{y:,.1f}", (x, y), textcoords="offset points",
                          xytext=(0, 7), ha="center", fontsize=8)
        if bound is not None:
            axis.axhline(bound, color="tab:red", linestyle="--", linewidth=1)
            axis.annotate(f"target ≤ {bound:,.0f}", (sizes[0], bound), textcoords="offset points", xytext=(2, 3),
                          fontsize=8, color="tab:red")
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{s:,}" for s in sizes])
        axis.minorticks_off()
        axis.set_xlabel("charge points")
        axis.set_title(label)
        axis.yaxis.set_major_formatter(FuncFormatter(_tick))
        axis.set_ylim(bottom=0, top=max(values + ([bound] if bound else [])) * 1.15)
        axis.grid(True, alpha=0.3)
    figure.suptitle(title, fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    data = os.path.splitext(path)[0] + ".json"
    with open(data, "w") as f:
        json.dump({"title": title, "points": points}, f, indent=2)
        f.write("\n")
    return data
