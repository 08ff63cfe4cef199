"""FramePipeline: frame → faces → classifiers (+CAM) → filter → classifiers again → skin tone → FrameResult.

All faces of a frame go to each model in one batched call. The same code
path serves the live app (``process``) and offline studies
(``process_images``), so a number in the audit means what it means on screen.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator, Mapping, NamedTuple, Sequence

import cv2
import numpy as np

from .device_chain import DeviceChain
from .detect_ahead import detecting_ahead
from .faces import Detected, FaceDetector, crop_square, detect_faces, face_region_mask, whole_image_crop
from .frame_depth import as_bgr_uint8
from .images import NOT_AN_IMAGE, UNREADABLE, read_rgb_checked, resize_batch
from .models import Classifier, Filter
from .results import ClassifierOutput, FaceResult, FaceView, FrameResult, Prediction, SkinShift, SkinTone
from .runtime import device_of
from .skin import aligned_onto, compare_skin, face_skin_mask, measure_skin_tones
from .sources import ImageListSource
from .tracking import IoUTracker

log = logging.getLogger(__name__)


# Bump when a measurement changes meaning (caches of per-face results key on it).
# 2: CAM focus is measured on the predicted class's CAM.
# 3: upscaled crops are interpolated in float and rounded (the GPU path resamples identically).
# 4: detector crops are framed 0.97× the Haar box (was 1.2×), as measured on UTKFace.
# 5: skin is measured on crops shrunk to PipelineConfig.skin_px (crops above 128 px change).
# 6: a truncated JPEG is unreadable (it was decoded half grey and measured).
# 7: skin needs b* ≥ 2 to be measured (a blue or magenta cast gave ITA outside ±90°).
# 8: ΔP(female) and flips compare with the crop through the filter's resampling alone, as skin does.
# 9: a filtered face's skin leaves out the pixels its original had clipped, not its own (what a filter clips counts).
# 10: a detected face's crop is its square resized with pixel centres aligned, as training resizes faces (it sat half
#     a crop pixel up and to the left); the ONNX Haar cascade skips the window rows OpenCV's stripes skip.
# 11: an aligned face is read as a frame is (a float TIFF had been unreadable, a 16-bit colour TIFF rounded
#     otherwise), an AVIF turned by its irot/imir boxes (it was read sideways).
# 12: a TIFF whose first page is a thumbnail or mask is read from its first photo page (the preview was measured).
# 13: a filtered face's clipping the filter only moved is left out as its original's was; images read in sRGB from an
#     embedded profile, a JPEG damaged inside unreadable, float16/uint32 TIFFs read (an audit's cache had kept the
#     old numbers for an --out audited before).
# 14: a float frame rounded to its nearest level (a float16 TIFF's had read half its pixels a level dark), an AVIF
#     read in sRGB from its profile, a JPEG damaged after a harmless warning unreadable.
# 15: a JPEG padded before a repeated marker and damaged after it unreadable (14's check had stopped at a copy it
#     could not judge), a TIFF page OpenCV refuses beside a float16 page read as a one-page file of it.
# 16: a filtered face's skin is measured where the filter moved the face (a whole-pixel translation undone), and the
#     move recorded (a filter that moved faces 3 px down had read +3° ΔITA with no colour changed).
# 17: a filter's move is read at its own resolution and undone only where that lines the faces up under the skin mask
#     (a mosaic that moved nothing had read 89 of 300 faces as moved, a 0.44 px move had been undone by 1 px).
# 18: an aligned image that is not square (CelebA's 178×218) is its centred square, not squashed into one.
MEASURES_VERSION = 18


class AnalysedFace(NamedTuple):
    """What ``analyse_crops`` measured on one crop; the filtered side is None without a filter."""

    original: FaceView
    filtered: FaceView | None
    skin_shift: SkinShift | None
    delta_p_female: dict[str, float]
    reference: Mapping[str, Prediction]  # see FaceResult.reference


@dataclass(frozen=True)
class PipelineConfig:
    # cam_class's choice of each face's predicted class, by classifier: "where did it look for its answer", the map
    # its CAM focus is measured on. A fixed class shows next to nothing on faces called the other (on UTKFace men
    # called male the female map showed on a median 0.6-2.9 % of the face, their male map on 55-79 %).
    PREDICTED: ClassVar[str] = "predicted"
    # the class whose CAM is kept: a label, or PREDICTED. The commands keep "female" (their outputs draw no map of
    # it); the app starts on PREDICTED.
    cam_class: str = "female"
    min_crop: int = 112  # crops are at least this size (and at least every model's input size)
    max_faces: int = 20  # the largest faces are kept beyond this
    track: bool = True
    apply_filter: bool = True
    # Keep the filter → classifier hand-over on the device (I/O binding): "auto" where the
    # models run on a GPU, "on" everywhere (the CPU provider too), "off" never.
    device_chain: str = "auto"
    # Measure the unfiltered faces' skin on the helper threads while the filter and the classifiers
    # run (ORT releases the GIL): "auto" where the filter runs on a GPU and the host would only wait,
    # "on" everywhere, "off" never. The figures are the same either way.
    overlap_skin: str = "auto"
    # Helper threads that share a frame's skin measurements (NumPy releases the GIL in its array
    # work); 0 = a quarter of the cores, 1 to 4. 1 (with no overlap: all measured in line) until
    # more is measured to pay: on 2 cores, beside detection and ORT, 2 threads were slower.
    skin_threads: int = 1
    # Skin is measured on the crops shrunk to at most this size: the mean of the trimmed mask changes little
    # (256 → 128 px on 300 UTKFace faces: |ΔITA| 0.27° on average, the same Monk tone for all; a filter's
    # paired shift of 11° moved by 0.11°), while the cost falls with the pixel count — a 256 px filter made
    # skin the largest host cost on the H100. The shipped models' crops (112 px) are below it: unchanged.
    skin_px: int = 128
    # A conditional filter's condition (one of its card's labels, e.g. the target gender of a counterfactual
    # filter); None: its first. A label the filter lacks is an error, never quietly another condition.
    filter_condition: str | None = None


def cam_focus(cam: np.ndarray, region: np.ndarray) -> float | None:
    """Share of the positive CAM mass inside ``region``; None when the CAM has no positive mass."""
    # A product with the region's 0/1 weights rather than a boolean gather: a fifth less of the CAM work on
    # the host, which at 16 faces runs 64 times a frame. (All of a frame's maps in one array was slower
    # still: its fresh pages cost more than the gathers.)
    pos = np.maximum(np.asarray(cam, np.float32).ravel(), 0)
    total = float(pos.sum())
    return None if total <= 0 else float(pos @ np.asarray(region, np.float32).ravel()) / total


def measure_skins(faces: np.ndarray, mask: np.ndarray, clipped_in: np.ndarray | None = None,
                  moved_from: np.ndarray | None = None,
                  filter_px: int | None = None) -> tuple[list[SkinTone], np.ndarray]:
    """The faces' skin (``measure_skin_tones``; ``clipped_in`` as there) and how far each face was moved back before
    it was measured: with ``moved_from`` (its reference, the filter's input), where the filter moved it
    (``skin.aligned_onto``, at ``filter_px``, the filter's side), so that the mask covers the same skin as on the
    reference; without, nothing moved."""
    moved = np.zeros(len(faces))
    if moved_from is not None:
        after = aligned_onto(moved_from, faces, mask, filter_px)
        faces, moved = after.crops, after.moved_px
    return measure_skin_tones(faces, mask, clipped_in=clipped_in), moved


def unreadable_because(problem: str | None) -> str:
    """process_images' error for an image the reader gave None for: its reason where it is another than the decoder
    failing ("permission denied", pixels no frame is made of), which the audit's report had called corrupt."""
    return NOT_AN_IMAGE if problem in (None, UNREADABLE) else problem


class FramePipeline:
    """Holds the models, the detector and the tracker. Not thread-safe: one worker owns it."""

    def __init__(self, classifiers: Sequence[Classifier], filter: Filter | None = None,
                 detector: FaceDetector | None = None, config: PipelineConfig = PipelineConfig()):
        self.classifiers = list(classifiers)
        self.filter = filter
        self.detector = detector
        self.config = config
        self.tracker = IoUTracker()
        self._index = 0
        self._chain: tuple[tuple[int, ...], DeviceChain | None] = ((), None)
        self._helper: ThreadPoolExecutor | None = None  # skin helpers, made on first use (PipelineConfig.skin_threads)

    def prepare(self) -> int:
        """Make every GPU batch bucket the models can be given ready before the first frame (see
        ``OnnxModel.prepare_batches``): up to ``max_faces`` for the filter, and up to ``_classified_rows`` for
        the classifiers. The owning worker calls it, never the GUI thread. Returns the number of bucket
        sessions prepared (0 on the CPU)."""
        most = self.config.max_faces
        return (sum(m.prepare_batches(self._classified_rows(most)) for m in self.classifiers)
                + (self.filter.prepare_batches(most) if self.filter is not None else 0))

    def _classified_rows(self, faces: int) -> int:
        """The most rows a classifier's call is given for ``faces`` faces: twice as many where a loaded filter's
        reference is resampled, since it rides in the crops' call (``_classify``). Prepared for max_faces only,
        the first frame of 17 faces (of 20) built a 64-row session mid-stream on a GPU. Counted for a filter
        loaded but switched off too: it can be switched on between frames."""
        if self.filter is None:
            return faces
        size = self._crop_size(filtering=True)
        return 2 * faces if tuple(self.filter.size) != (size, size) else faces

    # --- configuration (called by the owning worker between frames) ---------
    @property
    def applies_filter(self) -> bool:
        """A filter is loaded and switched on."""
        return self.filter is not None and self.config.apply_filter

    @property
    def crop_size(self) -> int:
        # A loaded filter that is switched off does not size the crops: a 256 px filter would otherwise make
        # every crop, CAM and skin measurement 256 px while only the classifiers run (on the H100, classifiers
        # only at 16 faces ran at 11.9 frames/s beside 43.5 with the 64 px filter loaded).
        return self._crop_size(self.applies_filter)

    def _crop_size(self, filtering: bool) -> int:
        sizes = [m.size[0] for m in self.classifiers] + ([self.filter.size[0]] if filtering else [])  # type: ignore[union-attr]
        return max([self.config.min_crop, *sizes])

    def _models(self) -> list[Classifier | Filter]:
        return [*self.classifiers, *([self.filter] if self.filter else [])]

    def stop_runs(self) -> None:
        """Asks every model run under way to end (``OnnxModel.stop_runs``), from any thread: a model that loops for
        days had kept the app's inference thread, which no signal reaches, running after its window closed."""
        for model in self._models():
            model.stop_runs()

    def _filter_condition(self) -> str | None:
        """The condition the filter runs with; None for a filter that takes none."""
        assert self.filter is not None
        return self.filter.chosen_condition(self.config.filter_condition)

    def _filter_label(self) -> str:
        """The filter's name, with the condition it ran with where it takes one: 'cvae [female]'."""
        chosen = self._filter_condition()
        return self.filter.name if chosen is None else f"{self.filter.name} [{chosen}]"  # type: ignore[union-attr]

    def providers(self) -> dict[str, str]:
        return {m.name: m.provider for m in self._models()}

    def provider_warnings(self) -> tuple[str, ...]:
        return tuple(f"{m.name}: {m.info.warning}" for m in self._models() if m.info.warning)

    def device_chain(self) -> DeviceChain | None:
        """The I/O-bound filter → classifiers chain for the current models, or None for the plain path."""
        mode = self.config.device_chain
        if mode == "off" or self.filter is None or not DeviceChain.usable(self.filter, self.classifiers):
            return None
        if mode == "auto" and device_of(self.filter.info.provider) == "cpu":
            return None  # on the host, binding saves nothing
        key = (id(self.filter), *map(id, self.classifiers))
        if self._chain[0] != key:  # models were swapped between frames
            self._chain = (key, DeviceChain(self.filter, self.classifiers))
        return self._chain[1]

    def _overlap_skin(self) -> bool:
        mode = self.config.overlap_skin
        if mode == "auto":
            return self.filter is not None and device_of(self.filter.info.provider) != "cpu"
        return mode == "on"

    def _skin_threads(self) -> int:
        n = self.config.skin_threads
        return n if n > 0 else max(1, min(4, (os.cpu_count() or 1) // 4))

    def _filter_px(self) -> int | None:
        """The side the filter makes faces at: a move is read no finer (``skin.aligned_onto``), since a face scaled up
        from it holds no finer detail of its own."""
        return None if self.filter is None else max(self.filter.size)

    def _skins_started(self, faces: np.ndarray, mask: np.ndarray, helpers: bool, clipped_in: np.ndarray | None = None,
                       moved_from: np.ndarray | None = None) -> Callable[[], tuple[list[SkinTone], np.ndarray]]:
        """The faces' skin and how far each was moved back (``measure_skins``; ``clipped_in``, ``moved_from`` as
        there, the move read at the filter's own size), started on the helper threads (one chunk of faces each) with
        ``helpers``, else measured here and now; call what this returns to have it. Finding the moves releases the GIL
        as measuring does."""
        if not helpers or len(faces) == 0:
            measured = measure_skins(faces, mask, clipped_in, moved_from, self._filter_px())
            return lambda: measured
        if self._helper is None:
            self._helper = ThreadPoolExecutor(self._skin_threads(), thread_name_prefix="skin")
        chunks = np.array_split(np.arange(len(faces)), min(self._skin_threads(), len(faces)))
        def part(x: np.ndarray | None, c: np.ndarray) -> np.ndarray | None:
            return None if x is None else x[c]
        jobs = [self._helper.submit(measure_skins, faces[c], mask, part(clipped_in, c), part(moved_from, c),
                                    self._filter_px()) for c in chunks]

        def joined() -> tuple[list[SkinTone], np.ndarray]:
            done = [job.result() for job in jobs]
            return [skin for skins, _ in done for skin in skins], np.concatenate([moved for _, moved in done])
        return joined

    # --- the per-face core --------------------------------------------------
    def _fixed_cam_index(self, model: Classifier) -> int | None:
        """The index of the class whose CAM every face keeps, None where each keeps its predicted class's
        (``PipelineConfig.PREDICTED``); a label the model lacks keeps its first class's (the commands refuse one)."""
        wanted = self.config.cam_class
        if wanted == PipelineConfig.PREDICTED:
            return None
        return model.labels.index(wanted) if wanted in model.labels else 0

    def _classify(self, crops: np.ndarray, region: np.ndarray,
                  predictions: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                  reference: np.ndarray | None = None) -> tuple[list[dict[str, ClassifierOutput]], list[dict[str, Prediction]]]:
        """Each classifier on the crops, with its CAM; ``reference``: more crops of the same size classified in
        the same batched call, probabilities only."""
        n = len(crops)
        out: list[dict[str, ClassifierOutput]] = [{} for _ in range(n)]
        refs: list[dict[str, Prediction]] = [{} for _ in range(0 if reference is None else len(reference))]
        batch = crops if reference is None else np.concatenate([crops, reference])
        size = crops.shape[1]
        inputs: dict[tuple[int, int], np.ndarray] = {}  # classifiers of one input size share one resize
        for model in self.classifiers:
            if predictions is not None:
                probs, cams = predictions[model.name]
            else:
                if model.size not in inputs:
                    inputs[model.size] = resize_batch(batch, model.size)
                probs, cams = model.predict(inputs[model.size])
            fixed = self._fixed_cam_index(model)
            for i in range(len(crops)):
                # Focus is measured on the CAM of the class the model chose: "where did it look
                # for its answer". The chosen display class would mislead on faces it rejected.
                pred = int(np.argmax(probs[i]))
                k = pred if fixed is None else fixed
                cam = cv2.resize(cams[i, k], (size, size), interpolation=cv2.INTER_LINEAR)
                evidence = cam if pred == k else cv2.resize(cams[i, pred], (size, size), interpolation=cv2.INTER_LINEAR)
                out[i][model.name] = ClassifierOutput(
                    model.name, model.labels, probs[i], cam, model.labels[k], cam_focus(evidence, region),
                    None if pred == k else evidence)
            for j, ref in enumerate(refs):
                ref[model.name] = Prediction(model.name, model.labels, probs[n + j])
        return out, refs

    def analyse_crops(self, crops: np.ndarray, timings: dict[str, float]) -> list[AnalysedFace]:
        """Everything measured on a batch of square RGB face crops (N×S×S×3)."""
        n, size = len(crops), crops.shape[1]
        skin_size = min(size, self.config.skin_px)
        region, skin_mask = face_region_mask(size), face_skin_mask((skin_size, skin_size))

        def for_skin(faces: np.ndarray) -> np.ndarray:
            return resize_batch(faces, (skin_size, skin_size))
        in_models = self._run_ms()
        filtering = self.applies_filter and n > 0
        # With the overlap, skin is measured on a helper thread while the models run (their runs release the
        # GIL): the "before" skin from the start, the "after" skin as soon as the filtered faces exist, before
        # the classifiers see them. On a GPU that hides most of the skin work behind the models'.
        overlap = filtering and self._overlap_skin()
        reference = crops  # what the filtered face is compared with
        reference_skins: Callable[[], tuple[list[SkinTone], np.ndarray]] | None = None  # its skin, when started early
        before: np.ndarray | None = None  # the reference at the skin size, made early with the overlap
        filtered_skins: Callable[[], tuple[list[SkinTone], np.ndarray]] | None = None
        prep_ms = 0.0
        if filtering:
            t = time.perf_counter()
            small = resize_batch(crops, self.filter.size)  # type: ignore[union-attr]
            # Resampling alone moves ITA by a few degrees (it blurs the percentile trimming) and P(female)
            # by about 0.01, flipping 2 % of predictions (the shipped 64 px filter on 112 px crops): the
            # "before" is the crop through the same down/up-sampling as the filter's output, so Δ is the
            # filter's own. At the filter's own size the round trip is the crop itself.
            reference = resize_batch(small, (size, size))
            if overlap:
                before = for_skin(reference)
                reference_skins = self._skins_started(before, skin_mask, helpers=True)
            prep_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        # the reference rides in the crops' batched call: its probabilities, no CAM work
        resampled = filtering and reference is not crops
        orig_cls, ref_cls = self._classify(crops, region, reference=reference if resampled else None)
        timings["classify"] = timings.get("classify", 0.0) + (time.perf_counter() - t) * 1000
        filtered = filt_cls = None
        if filtering:
            t = time.perf_counter()

            def on_filtered(faces: np.ndarray) -> None:  # the filter's output, before any classifier sees it
                nonlocal filtered, filtered_skins
                filtered = resize_batch(faces, (size, size))
                if overlap:  # the filter's inputs are the reference's pixels: what it clipped counts
                    filtered_skins = self._skins_started(for_skin(filtered), skin_mask, helpers=True,
                                                         clipped_in=before, moved_from=before)

            chain, predictions = self.device_chain(), None
            condition = self.filter.condition_rows(self.config.filter_condition, len(small))  # type: ignore[union-attr]
            if chain is not None:  # the classifiers' passes on the filtered faces happen in here too
                predictions = chain.run(small, on_filtered, condition, crop_size=size).predictions
            else:
                on_filtered(self.filter.apply(small, condition))  # type: ignore[union-attr]
            timings["filter"] = prep_ms + (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            filt_cls, _ = self._classify(filtered, region, predictions)
            timings["classify_filtered"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        several = self._skin_threads() > 1
        moved_px = np.zeros(n)  # how far the filter moved each face, undone before its skin was measured
        if filtered is None:
            skins, fskins = self._skins_started(for_skin(reference), skin_mask, several)()[0], []
        elif reference_skins is not None and filtered_skins is not None:  # measured while the models ran
            skins, (fskins, moved_px) = reference_skins()[0], filtered_skins()
        else:  # before and after in one batch: the measurement's fixed cost is paid once
            before = for_skin(reference)
            # the same skin as before, where it moved
            after = aligned_onto(before, for_skin(filtered), skin_mask, self._filter_px())
            moved_px = after.moved_px
            # the filter's inputs are the reference's pixels: what it clipped counts
            both = self._skins_started(np.concatenate([before, after.crops]), skin_mask, several,
                                       clipped_in=np.concatenate([before, before]))()[0]
            skins, fskins = both[:n], both[n:]
        results = []
        for i in range(n):
            skin = skins[i]
            view = FaceView(crops[i], orig_cls[i], skin)
            if filtered is None:
                results.append(AnalysedFace(view, None, None, {}, {}))
                continue
            fskin = fskins[i]
            fview = FaceView(filtered[i], filt_cls[i], fskin)  # type: ignore[index]
            ref = ref_cls[i] if resampled else orig_cls[i]
            dp = {name: fview.classifiers[name].p_female - ref[name].p_female for name in orig_cls[i]}
            results.append(AnalysedFace(view, fview, compare_skin(skin, fskin, float(moved_px[i])), dp, ref))
        timings["skin"] = (time.perf_counter() - t) * 1000
        timings["onnx_runtime"] = timings.get("onnx_runtime", 0.0) + self._run_ms() - in_models
        return results

    def _run_ms(self) -> float:
        return sum(m.run_ms for m in self._models())

    # --- frames ---------------------------------------------------------------
    def process(self, frame: np.ndarray, timestamp: float | None = None, source: str = "",
                detected: Detected | None = None, still: bool = False, video_s: float | None = None,
                again: bool = False) -> FrameResult:
        """Everything measured on one frame. ``detected``: its faces, found ahead by ``detect_faces`` on
        another thread (``inference.detect_ahead``, ``gui.workers.DetectThread``); without it the detector runs here. The tracker always runs
        here, in frame order. ``again``: the last frame once more (the app's re-run after a settings change), which
        keeps its number: each re-run had taken one, so the frames' numbers skipped."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if still:  # another photo's faces are other people; the same photo again keeps its ids
            self.tracker.enter_scene(source)
        else:
            self.tracker.leave_scene()
        bgr = as_bgr_uint8(frame)
        faces_boxes: list[tuple[int, tuple[float, float, float, float], float]] = []
        frame_warnings: tuple[str, ...] = ()
        n_found = None
        if self.detector is not None:
            found = detected if detected is not None else detect_faces(self.detector, bgr)
            n_found = len(found.detections)
            if len(found.detections) > self.config.max_faces:  # the rest went unanalysed without a word
                frame_warnings = (f"{len(found.detections)} faces found in this frame; the {self.config.max_faces} "
                                  "largest are analysed",)
            dets = sorted(found.detections, key=lambda d: d.box[2] * d.box[3], reverse=True)[: self.config.max_faces]
            timings["detect"] = found.ms
            # the frame too: overlap alone had kept one id through a video's cut to another person at the same place
            tracked = self.tracker.update(dets, bgr) if self.config.track else [
                (i + 1, tuple(map(float, d.box))) for i, d in enumerate(dets)]
            faces_boxes = [(tid, box, d.score) for (tid, box), d in zip(tracked, dets)]
        t = time.perf_counter()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        size = self.crop_size
        if self.detector is None:
            crop, inv = whole_image_crop(rgb, size)
            crops, transforms = [crop], [inv]
            h, w = bgr.shape[:2]
            faces_boxes = [(1, (0.0, 0.0, float(w), float(h)), 1.0)]
        else:
            pairs = [crop_square(rgb, box, size) for _, box, _ in faces_boxes]
            crops, transforms = [p[0] for p in pairs], [p[1] for p in pairs]
        timings["crop"] = (time.perf_counter() - t) * 1000
        batch = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
        analysed = self.analyse_crops(batch, timings)
        faces = tuple(
            FaceResult(
                track_id=tid, box=tuple(int(round(v)) for v in box),  # type: ignore[arg-type]
                crop_to_frame=inv, original=a.original, filtered=a.filtered, skin_shift=a.skin_shift,
                delta_p_female=a.delta_p_female, score=score, reference=a.reference,
            )
            for (tid, box, score), inv, a in zip(faces_boxes, transforms, analysed)
        )
        # a frame's latency includes finding its faces, wherever that ran
        timings["total"] = (time.perf_counter() - t0) * 1000 + (detected.ms if detected is not None else 0.0)
        # what is neither finding faces nor inside ONNX Runtime: the work around the models, on the host
        timings["host"] = timings["total"] - timings.get("detect", 0.0) - timings.get("onnx_runtime", 0.0)
        self._index += 0 if again and self._index else 1
        return FrameResult(
            index=self._index - 1, timestamp=time.monotonic() if timestamp is None else timestamp, frame=bgr,
            faces=faces, timings_ms=timings, providers=self.providers(),
            filter_name=self._filter_label() if self.applies_filter else None,
            filter_condition=self._filter_condition() if self.applies_filter else None,
            warnings=self.provider_warnings() + frame_warnings, source=source, video_s=video_s, faces_found=n_found,
        )

    def process_images(self, paths: Iterable[str | Path], batch: int = 32) -> Iterator[tuple[str, FrameResult | None, str | None]]:
        """Offline batch API: (path, result, error). Unreadable images give an error, not an exception.

        With no detector the whole image is the face (aligned datasets), and
        crops of several images share each batched model call; with a
        detector every image is processed as a frame (all its faces batched).
        """
        paths = [str(p) for p in paths]
        if self.detector is not None:
            if not paths:
                return
            # the next image's faces are found while this one is analysed, as in the app and `run`
            # an image of several frames is read as its first: said by the caller (the audit's report), not here
            frames = detecting_ahead(ImageListSource([Path(p) for p in paths], "images", say_first_frame_only=False),
                                     self.detector)
            for p, frame in zip(paths, frames):  # one frame per path, in order, unreadable ones too
                if frame.image is None:  # the reader's own reason ("permission denied"), for the report to say
                    yield p, None, unreadable_because(frame.problem)
                    continue
                self.tracker.reset()
                yield p, self.process(frame.image, timestamp=0.0, source=p, detected=frame.detected), None
            return
        size = self.crop_size
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            imgs, problems = zip(*(read_rgb_checked(p) for p in chunk))
            ok = [i for i, im in enumerate(imgs) if im is not None]
            timings: dict[str, float] = {}
            pairs = [whole_image_crop(imgs[i], size) for i in ok]
            analysed = self.analyse_crops(np.stack([c for c, _ in pairs]) if pairs else np.zeros((0, size, size, 3), np.uint8), timings)
            by_index = dict(zip(ok, zip(pairs, analysed)))
            for i, p in enumerate(chunk):
                if i not in by_index:
                    yield p, None, unreadable_because(problems[i])
                    continue
                (crop, inv), a = by_index[i]
                h, w = imgs[i].shape[:2]
                face = FaceResult(1, (0, 0, w, h), inv, a.original, a.filtered, a.skin_shift, a.delta_p_female,
                                  reference=a.reference)
                # by keyword: given in order, the warnings had gone to filter_condition and the path to warnings
                yield p, FrameResult(start + i, 0.0, np.empty((0, 0, 3), np.uint8), (face,), timings,
                                     self.providers(), self._filter_label() if self.applies_filter else None,
                                     filter_condition=self._filter_condition() if self.applies_filter else None,
                                     warnings=self.provider_warnings(), source=str(p)), None
