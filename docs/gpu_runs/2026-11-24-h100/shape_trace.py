# One-off probe run on the H100 (2026-11-24) to find the CUDA tail latencies: per-call time of one classifier
# when the face count changes between calls. Run from the repo root with PYTHONPATH=. ; results beside this file.
import time, numpy as np
from inference.models import load_model
from inference.runtime import RuntimeConfig
from inference.defaults import MODELS_DIR
rng = np.random.default_rng(0)
for search in ("HEURISTIC",):
    m = load_model(MODELS_DIR / "resnet10_balanced.onnx", "classifier", RuntimeConfig(provider="cuda", cudnn_conv_algo_search=search))
    first = {}
    for n in (1, 2, 4, 8, 16):
        t = time.perf_counter(); m.predict(rng.integers(0, 255, (n, 112, 112, 3), dtype=np.uint8)); first[n] = round((time.perf_counter() - t) * 1000, 1)
    print(search, "first call per bucket ms", first)
    ts = {}
    for i in range(400):
        n = int(rng.integers(1, 17))
        x = rng.integers(0, 255, (n, 112, 112, 3), dtype=np.uint8)
        t = time.perf_counter(); m.predict(x); dt = (time.perf_counter() - t) * 1000
        ts.setdefault(m.batch_size_for(n), []).append(dt)

    for n, v in sorted(ts.items()): print("  bucket", n, "p50/p95/p99 ms", np.percentile(v, [50, 95, 99]).round(2), len(v))
