# One-off probe (2026-12-06): does an exponential moving average of the CycleGAN generator's weights (`train
# cyclegan --ema`) steady the skin-tone drift that the trained weights swing through? Run from the repo root:
#   PYTHONPATH=. .venv/bin/python docs/probes/ema_drift.py runs/cyclegan_ema_s0 runs/cyclegan_ema_s1
# Reads each run's drift.csv (mean ΔITA° on 16 fixed validation faces, every --sample-every steps), from step
# 3,000 on (past the first swings), for the trained generator and its average. Result: docs/architecture.md.
import csv
import sys

import numpy as np

FROM_STEP = 3000


def curve(rows: list[dict], column: str) -> np.ndarray:
    return np.array([float(r[column]) for r in rows if int(r["step"]) >= FROM_STEP])


for run in sys.argv[1:]:
    with open(f"{run}/drift.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    print(f"{run}: {len(rows)} points, the last at step {rows[-1]['step'] if rows else '-'}")
    for label, column in (("trained", "mean_delta_ita"), ("average", "ema_mean_delta_ita")):
        if not rows or column not in rows[0]:
            print(f"  {label:8s} not logged (train cyclegan --ema logs the average)")
            continue
        c = curve(rows, column)
        if len(c) < 2:
            print(f"  {label:8s} fewer than two points from step {FROM_STEP}: nothing to compare")
            continue
        print(f"  {label:8s} from step {FROM_STEP}: range {c.min():+6.2f} to {c.max():+6.2f} ({np.ptp(c):5.2f}°), "
              f"mean |change| between points {np.abs(np.diff(c)).mean():5.2f}°, sd {c.std(ddof=1):5.2f}°, "
              f"last {c[-1]:+6.2f}°")
