"""Startup time of the PyInstaller bundle against ``python -m app`` on the same machine.

Starts each one in smoke mode (``OFFLINE_CODER_SMOKE=1``, app/smoke.py: the window opens,
the starter model loads, the window is closed through its normal close path), alternating
the two so machine noise hits both alike, and times from just before the process is started
to the lines it prints: ``window shown`` (its first paint) and ``model ready``, and to its exit.
Prints one JSON line per figure (medians); the figures that matter are the ratios bundle /
python, which should be <= 1.0 (the bundle no slower than the interpreter run).

    .venv/bin/python bench/startup.py [--bundle dist/offline-coder/offline-coder] [--rounds 7]

Needs a built bundle (bash installer/linux/build.sh). Each arm has its own home folder, used
once before timing (the first start creates the database and settings; a later start is the
common case), with offline mode off so the firewall helper (root or pkexec) stays out of it:
both arms would run it alike, but it changes the machine's firewall. Qt runs offscreen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.paths import app_paths  # noqa: E402
from app.core.settings import Settings  # noqa: E402

MARKS = {"window_shown_s": "smoke: window shown", "model_ready_s": "smoke: model ready"}


def run_once(cmd: list[str], home: Path) -> dict[str, float]:
    env = dict(os.environ, OFFLINE_CODER_HOME=str(home), OFFLINE_CODER_SMOKE="1", QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    assert p.stdout is not None
    for line in p.stdout:
        for figure, mark in MARKS.items():
            if line.startswith(mark) and figure not in times:
                times[figure] = time.perf_counter() - t0
    rc = p.wait(timeout=300)
    times["exited_s"] = time.perf_counter() - t0
    if rc != 0 or len(times) != 3:
        raise SystemExit(f"{cmd[0]} failed in smoke mode (exit status {rc}, saw {sorted(times)})")
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(ROOT / "dist" / "offline-coder" / "offline-coder"))
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    bundle = Path(args.bundle)
    if not os.access(bundle, os.X_OK):
        raise SystemExit(f"no bundle at {bundle}: build it with bash installer/linux/build.sh")
    arms = {"bundle": [str(bundle)], "python": [sys.executable, "-m", "app"]}
    with tempfile.TemporaryDirectory() as tmp:
        homes = {}
        for name in arms:
            homes[name] = Path(tmp) / name
            s = Settings()
            s.offline = False
            s.save(app_paths(homes[name]).ensure().settings_file)
            run_once(arms[name], homes[name])  # warm-up: first start, file cache
        results: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
        for i in range(args.rounds):
            order = list(arms) if i % 2 == 0 else list(reversed(arms))
            for name in order:
                results[name].append(run_once(arms[name], homes[name]))
    common = {"bench": "startup", "rounds": args.rounds, "cpus": os.cpu_count()}
    medians = {name: {f: statistics.median(r[f] for r in runs) for f in (*MARKS, "exited_s")}
               for name, runs in results.items()}
    for name, figures in medians.items():
        for figure, value in figures.items():
            print(json.dumps({**common, "figure": f"{name}_{figure}", "value": round(value, 3)}))
    for figure in (*MARKS, "exited_s"):
        ratio = medians["bundle"][figure] / medians["python"][figure]
        print(json.dumps({**common, "figure": f"bundle_over_python_{figure.removesuffix('_s')}_ratio",
                          "value": round(ratio, 3), "target": "<= 1.0"}))


if __name__ == "__main__":
    main()
