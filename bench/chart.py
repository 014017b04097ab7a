"""Bar chart of a benchmark result: each system's rate as a fraction of the limit.

    bench/.venv-peers/bin/python bench/chart.py bench/results/latest.json out.png

Reads a JSON file whose ``rows`` is a list of
``{"system": str, "events_s": float, "ratio": float, "check": str}`` (``check`` is "ok" for a
run whose final metric matched River offline; anything else marks the row invalid) and draws one
horizontal bar per system, in the file's order from the top: length = ratio to the limit, label =
events/s. Invalid rows are drawn hatched in grey and labelled with their check. Optional top-level
``events`` and ``reps`` go into the title. Needs matplotlib (in the peers venv; see
bench/peers/setup.sh).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

VALID_COLOR = "#3b7dd8"
LIMIT_COLOR = "#2a9d5c"
INVALID_COLOR = "#b0b0b0"


def is_valid(row: dict) -> bool:
    return str(row.get("check", "")).strip().lower() == "ok"


def draw(result: dict, out: Path) -> None:
    rows = result.get("rows") or []
    if not rows:
        raise SystemExit("chart: the file has no rows")
    names = [str(r["system"]) for r in rows]
    ratios = [float(r["ratio"]) for r in rows]
    top = max([1.0, *ratios])

    fig, ax = plt.subplots(figsize=(10, 1.1 + 0.55 * len(rows)), dpi=120)
    ys = range(len(rows))
    for y, row, ratio in zip(ys, rows, ratios, strict=True):
        valid = is_valid(row)
        color = (LIMIT_COLOR if ratio == 1.0 else VALID_COLOR) if valid else INVALID_COLOR
        ax.barh(
            y,
            ratio,
            height=0.6,
            color=color,
            hatch=None if valid else "//",
            edgecolor="#555555" if not valid else color,
        )
        label = f"{float(row['events_s']):,.0f} ev/s  ({ratio:.2f}×)"
        if not valid:
            check = str(row.get("check", "")).strip()
            label += "  INVALID" if check.upper() in ("", "INVALID") else f"  INVALID ({check})"
        ax.text(
            ratio + top * 0.01,
            y,
            label,
            va="center",
            fontsize=9,
            color="black" if valid else "#b00020",
            zorder=3,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
        )

    ax.axvline(1.0, color="#444444", linestyle="--", linewidth=1, zorder=1)
    ax.set_yticks(list(ys), names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.45)
    ax.set_xlabel("events/s as a fraction of the limit (dashed line = 1.0)")
    title = "Throughput relative to the limit"
    details = []
    if "events" in result:
        details.append(f"{result['events']:,} events")
    if "reps" in result:
        details.append(f"median of {result['reps']} runs")
    if details:
        title += f" ({', '.join(details)})"
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python bench/chart.py RESULTS.json OUT.png", file=sys.stderr)
        return 2
    src, out = Path(argv[0]), Path(argv[1])
    draw(json.loads(src.read_text()), out)
    print(f"chart: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
