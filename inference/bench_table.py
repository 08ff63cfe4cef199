"""What a bench run prints once its rows are measured: the table, the notes on rows that found fewer (or more)
faces than were pasted or took their ratio over fewer frames, each row's stages, the targets judged, GPU memory and
the soak."""
from __future__ import annotations

from .bench_measure import Measurement, faces_label, faces_words, found_short
from .bench_ratios import ratio_notes
from .bench_targets import target_lines

# per-frame figures that split the frame three ways (and the whole): not stages of their own
SPLIT = ("end_to_end", "total", "onnx_runtime", "host")


def print_table(results: list[Measurement]) -> None:
    w = max([38, *(len(m.name) for m in results)])  # the names' column, as wide as the longest
    print(f"{'faces':>5s} {'configuration':{w}s} {'frames':>6s} {'frames/s':>9s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'p99 ms':>8s} {'found/frame':>11s} {'× eager':>8s} {'(per face)':>10s}")
    for m in results:
        if m.status != "ok":
            print(f"{faces_label(m.faces):>5s} {m.name:{w}s} {m.status}")
            continue
        e = m.latency_ms["end_to_end"]
        ratios = f"{m.vs_eager:7.2f}×" if m.vs_eager is not None else f"{'—':>8s}"
        ratios += f"{m.vs_eager_faces:9.2f}×" if m.vs_eager_faces is not None else f"{'—':>10s}"
        fps = f"{m.fps:9.1f}" if m.fps >= 10 else f"{m.fps:9.2f}"
        print(f"{faces_label(m.faces):>5s} {m.name:{w}s} {m.frames:6d} {fps} {e['p50']:8.1f} {e['p95']:8.1f} {e['p99']:8.1f} "
              f"{m.faces_seen:11.2f} {ratios}")


def short_of_faces(results: list[Measurement]) -> list[str]:
    """A note for the rows whose detector found fewer faces a frame than were placed: their frames/s time that much
    less model work (a frame of no face found printed a ratio against eager as if the models had run). A video's
    rows place no faces, so only one that found none is noted (it had printed its ratios without a word)."""
    lines = []
    for m in results:
        if m.status == "ok" and found_short(m):
            lines.append(f"note: {m.name} at {faces_words(m.faces)} found {m.faces_seen:.2f} a frame: its figures time "
                         "the models on those only" + (" (none: no model ran)" if m.faces_seen == 0 else ""))
    return lines


def dropped_faces(results: list[Measurement], most: int) -> list[str]:
    """A note for the rows whose detector found more faces a frame than the pipeline analyses (``max_faces``, at
    least the largest --faces): those faces were found but not timed, where the eager baseline analyses them all."""
    return [f"note: {m.name} at {faces_words(m.faces)} found {m.faces_seen:.2f} a frame and analysed "
            f"{m.faces_seen - m.faces_dropped:.2f}: the pipeline analyses only the largest {most} "
            "(PipelineConfig.max_faces); × eager (per face) counts those analysed"
            for m in results if m.status == "ok" and m.faces_dropped > 0]


def print_results(results: list[Measurement], most: int, filter_size: int | None, resolution: tuple[int, int],
                  n_classifiers: int, soak: dict | None) -> None:
    """The table and all said after it; ``most``: the faces a frame the pipelines analysed (``bench_max_faces``)."""
    print_table(results)
    for line in [*short_of_faces(results), *dropped_faces(results, most), *ratio_notes(results)]:
        print(line)
    for m in results:
        if m.status == "ok" and m.provider != "eager" and m.variant == ("filter" if filter_size else "plain"):
            stages = ", ".join(f"{k} {q['p50']:.1f}" for k, q in m.latency_ms.items() if k not in SPLIT)
            print(f"  stages p50 ms, {m.name}, {faces_words(m.faces)}: {stages}")
            if {"onnx_runtime", "host"} <= set(m.latency_ms):
                q = {k: m.latency_ms[k]["p50"] for k in ("detect", "onnx_runtime", "host") if k in m.latency_ms}
                print(f"    a frame, p50 ms: {q.get('detect', 0.0):.1f} finding faces, {q['onnx_runtime']:.1f} inside ONNX "
                      f"Runtime's runs (the models, with their copies), {q['host']:.1f} on the host around them")
    print()
    for line in target_lines(results, resolution, filter_size, n_classifiers):
        print(line)
    for m in results:
        if m.gpu_memory_mib is not None:
            print(f"  GPU memory in use after {m.name}, {faces_words(m.faces)}: {m.gpu_memory_mib:.0f} MiB above the run's start")
    if soak:
        gpu_line = (f"; GPU memory {soak['gpu_start_mib']:.0f} → {soak['gpu_end_mib']:.0f} MiB"
                    if soak["gpu_start_mib"] is not None and soak["gpu_end_mib"] is not None else "")
        print(f"soak ({soak['provider']}): {soak['frames']} frames in {soak['seconds']:.0f} s"
              f"{' (cut short)' if soak.get('interrupted') else ''}; "
              f"RSS {soak['rss_start_mb']:.0f} MB → {soak['rss_end_mb']:.0f} MB{gpu_line}")
