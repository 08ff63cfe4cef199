# One-off probe (2026-11-24): would looking for each face only near where the previous frame had it, instead
# of scanning the whole frame, lift the CPU detector's floor under the GPU frame rate? Run from the repo root:
#   PYTHONPATH=. .venv/bin/python docs/probes/near_detection.py .ortgpu/faces
# Frames are the bench's (faces tiled at fixed places, a different face each frame); the previous frame's
# full-scan boxes guide the search. Result and decision: docs/performance.md, "Looking for faces only near".
import sys
import time

import cv2
import numpy as np

from inference.bench_frames import make_frames
from inference.faces import HaarDetector
from inference.tracking import iou

detector = HaarDetector()
cascade = detector._cascade()


def near(frame: np.ndarray, boxes, face_px: int, window: float) -> list[tuple[int, int, int, int]]:
    """Each old box's surroundings (``window`` × its side, edges replicated) scaled so the face is ``face_px``,
    scanned only at 0.65-1.5 × the old size."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    out: list[tuple[int, int, int, int]] = []
    for x, y, w, h in boxes:
        side = max(w, h)
        s = min(1.0, face_px / side)
        n = int(round(side * window * s))
        ox, oy = x + w / 2 - side * window / 2, y + h / 2 - side * window / 2
        to_roi = np.array([[s, 0, -ox * s], [0, s, -oy * s]])
        roi = cv2.warpAffine(gray, to_roi, (n, n), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        f = side * s
        found = cascade.detectMultiScale(roi, detector.scale_factor, detector.min_neighbors,
                                         minSize=(int(f * 0.65),) * 2, maxSize=(int(f * 1.5) + 1,) * 2)
        for a, b, c, d in found if len(found) else []:
            box = (int(a / s + ox), int(b / s + oy), int(c / s), int(d / s))
            if all(iou(box, o) < 0.5 for o in out):
                out.append(box)
    return out


source = sys.argv[1] if len(sys.argv) > 1 else ".ortgpu/faces"
for n_faces in (1, 4, 16):
    frames = make_frames(source, n_faces, (640, 480), 60)
    full, full_ms = [], []
    for f in frames:
        t = time.perf_counter()
        full.append([d.box for d in detector.detect(f)])
        full_ms.append((time.perf_counter() - t) * 1000)
    print(f"{n_faces} face(s): full scan finds {np.mean([len(b) for b in full]):.2f} a frame, p50 {np.median(full_ms):.1f} ms")
    for face_px, window in ((48, 2.0), (64, 2.0), (40, 1.6)):
        found, ms, best = [], [], []
        for i in range(1, len(frames)):
            t = time.perf_counter()
            boxes = near(frames[i], full[i - 1], face_px, window)
            ms.append((time.perf_counter() - t) * 1000)
            found.append(len(boxes))
            best += [max([iou(b, o) for o in boxes] or [0.0]) for b in full[i]]
        print(f"   near, face at {face_px} px, window {window}×: finds {np.mean(found):.2f} a frame, p50 {np.median(ms):.1f} ms; "
              f"of the full scan's faces {np.mean(np.array(best) > 0.5):.0%} found again (IoU > 0.5), median IoU {np.median(best):.2f}")
