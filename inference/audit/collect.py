"""Run the pipeline's batch API over what the cache lacks, and read every face back as a flat row."""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from ..datasets import Sample
from ..models import Classifier, Filter, name_uniquely
from ..pipeline import MEASURES_VERSION, FramePipeline, PipelineConfig
from ..results import FaceResult, SkinTone
from ..strict_json import measured
from ..stopping import StopSaid
from ..file_identity import file_hash
from ..images import opening_failed
from .cache import Cache

log = logging.getLogger(__name__)
MIN_CROP = PipelineConfig().min_crop
MAX_FACES = PipelineConfig().max_faces  # faces analysed per image, the largest first, unless --max-faces says more


@dataclass
class ModelSet:
    """The models of one audit under unique display names, with their file hashes."""

    classifiers: dict[str, Classifier]
    filter: Filter | None
    hashes: dict[str, str] = field(default_factory=dict)  # display name → sha256

    @classmethod
    def build(cls, classifiers: Sequence[Classifier], filt: Filter | None) -> "ModelSet":
        # renamed, not only keyed: the pipeline keys each face's outputs by the model's name
        out = cls({m.name: m for m in name_uniquely(classifiers)}, filt)
        for name, m in out.classifiers.items():
            out.hashes[name] = file_hash(m.path)
        if filt is not None:
            out.hashes["__filter__"] = file_hash(filt.path)
        return out

    @property
    def crop_size(self) -> int:
        sizes = [m.size[0] for m in self.classifiers.values()] + ([self.filter.size[0]] if self.filter else [])
        return max([MIN_CROP, *sizes])


def _r(x, nd):
    return None if x is None else round(float(x), nd)


def skin_dict(s: SkinTone) -> dict:
    if not s.measurable:
        return {"measurable": False, "n_pixels": int(s.n_pixels)}
    return {"measurable": True, "n_pixels": int(s.n_pixels), "L": _r(s.L, 4), "a": _r(s.a, 4), "b": _r(s.b, 4),
            "ita": _r(s.ita, 4), "category": s.ita_category, "mst": int(s.mst)}


class Collector:
    def __init__(self, models: ModelSet, cache: Cache, detector=None, mode: str = "aligned",
                 cam_class: str = "female", batch: int = 32, progress: bool = True, filter_condition: str | None = None,
                 max_faces: int = MAX_FACES):
        self.models, self.cache, self.detector, self.mode = models, cache, detector, mode
        self.cam_class, self.batch, self.progress = cam_class, batch, progress
        self.filter_condition, self.max_faces = filter_condition, max_faces
        crop = models.crop_size
        # MEASURES_VERSION changes whenever the pipeline measures differently, so stale caches are not reused.
        self.suffix = f"{mode}-{crop}-m{MEASURES_VERSION}"
        if detector is not None:
            # the faces analysed in an image depend on --max-faces: an audit cached at 20 had been reused for
            # --max-faces 30 without a word (and its entries, older than the count of faces found, lack it)
            self.suffix += f"-max{max_faces}"
        # With a filter the pipeline measures the "before" skin through the filter's resampling,
        # so the original skin depends on the filter's input size: it is part of the key.
        via = f"via{models.filter.size[0]}" if models.filter else "raw"
        self.base = cache.component(f"base-{self.suffix}-{via}")
        fh = models.hashes.get("__filter__", "")[:16]
        if filter_condition is not None:  # another condition, other outputs
            fh += condition_key(filter_condition)
        self.fcomp = cache.component(f"filter-{fh}-{self.suffix}") if models.filter else None
        self.ccomp = {n: cache.component(f"clf-{models.hashes[n][:16]}-{self.suffix}") for n in models.classifiers}
        self.cfcomp = {n: cache.component(f"clf-{models.hashes[n][:16]}-on-{fh}-{self.suffix}")
                       for n in models.classifiers} if models.filter else {}
        self.computed = 0  # images that went through the models in this run
        self._keys: dict[str, str] = {}  # path → cache key, fixed for the audit (see key())

    def pipeline(self, classifiers: Sequence[Classifier], filt: Filter | None, detector=None) -> FramePipeline:
        cfg = PipelineConfig(cam_class=self.cam_class, min_crop=self.models.crop_size, track=False,
                             apply_filter=filt is not None, filter_condition=self.filter_condition,
                             max_faces=self.max_faces)
        return FramePipeline(list(classifiers), filt, detector, cfg)

    def _needs(self, key: str) -> tuple[bool, bool, tuple[str, ...]] | None:
        if key in self.base and opening_failed(self.base.get(key)["error"]):
            # an image that could not be opened (permission denied) is tried again: put right, its size and time
            # stay as they were, and the cache had gone on calling it unreadable. Its entries are dropped so that
            # the new ones are kept (a component keeps a key's first value; on reading, a file's last line wins).
            for component in (self.base, self.fcomp, *self.ccomp.values(), *self.cfcomp.values()):
                if component is not None:
                    component.drop(key)
            return True, self.fcomp is not None, tuple(self.models.classifiers)
        base_missing = key not in self.base
        clf_needed = tuple(n for n in self.models.classifiers
                           if key not in self.ccomp[n] or (n in self.cfcomp and key not in self.cfcomp[n]))
        filt_needed = self.fcomp is not None and (base_missing or key not in self.fcomp or any(
            key not in self.cfcomp[n] for n in self.models.classifiers))
        if not (base_missing or clf_needed or filt_needed):
            return None
        return base_missing, filt_needed, clf_needed

    def key(self, path: str) -> str:
        """The cache's key for an image: its path, with its size and modification time as they were when this
        audit began (a photo replaced under the same name had kept the old one's numbers)."""
        if path not in self._keys:
            self._keys[path] = file_key(path)
        return self._keys[path]

    def run(self, paths: Sequence[str]) -> None:
        """Compute and cache whatever is missing for ``paths`` (resolved path strings), then drop from the cache
        what no audit reads any more (``compact_cache``)."""
        # the cache holds these images' values only: a --limit 500 rerun into the --out of a 200,000-image audit
        # had read every image's (2.5 GB)
        self.cache.want([self.key(p) for p in paths])
        plans: dict[tuple[bool, tuple[str, ...]], list[str]] = {}
        for p in paths:
            need = self._needs(self.key(p))
            if need is not None:
                plans.setdefault((need[1], need[2]), []).append(p)
        todo = sum(len(v) for v in plans.values())
        if todo:
            self._compute(plans, todo)
        # only here, every image of the audit in the cache: a stopped run raised above, and keeps its lines to resume
        self.compact_cache(paths)

    def compact_cache(self, paths: Sequence[str]) -> None:
        """The cache's components rewritten without the lines of images since changed or deleted, once those are a
        real share of it (see ``Cache.compact``). What this audit's ``paths`` (all of them cached now) were keyed by
        is kept, and so is every key another audit of this folder may read: the components are shared by audits of
        other datasets, splits and limits, so an image this audit did not list is looked at on disk."""
        used = {self.key(p) for p in paths}
        known = dict(self._keys)  # and those of the other images, looked at once for all the components
        self.cache.compact(used, lambda key: still_read(key, known))

    def _compute(self, plans: dict[tuple[bool, tuple[str, ...]], list[str]], todo: int) -> None:
        bar = tqdm(total=todo, desc="audit", unit="img", disable=not self.progress, leave=False)
        try:
            for (use_filter, names), group in sorted(plans.items()):
                pipe = self.pipeline([self.models.classifiers[n] for n in names],
                                     self.models.filter if use_filter else None, self.detector)
                for i, (path, result, error) in enumerate(pipe.process_images(group, batch=self.batch)):
                    faces = list(result.faces) if result is not None else []
                    # the faces beyond --max-faces too, which the audit had dropped without a word
                    found = 0 if result is None else len(result.faces) if result.faces_found is None \
                        else result.faces_found
                    self._store(self.key(path), faces, error, names, use_filter, found)
                    self.computed += 1
                    bar.update(1)
                    if (i + 1) % self.batch == 0:
                        self.cache.flush()
                self.cache.flush()
        except KeyboardInterrupt as stop:
            self.cache.flush()
            # what a Ctrl-C keeps, said: it had printed only "interrupted"
            # on stderr, with "stopped (SIGTERM)" and every error: a CI step keeping stdout as its summary had it there
            tqdm.write(f"interrupted: the {self.computed} image(s) computed so far are cached; the same command goes on "
                       "from them", file=sys.stderr)
            raise StopSaid.of(stop) from stop
        finally:
            bar.close()
            self.cache.flush()

    def _store(self, key: str, faces: list[FaceResult], error: str | None, names: Sequence[str], use_filter: bool,
               found: int) -> None:
        self.base.put(key, {"error": error, "n_found": found, "faces": [
            {"box": [int(v) for v in f.box], "score": _r(f.score, 4), "skin": skin_dict(f.original.skin)} for f in faces]})
        if use_filter and self.fcomp is not None:
            vals = []
            for f in faces:
                sh = f.skin_shift
                vals.append({"skin": skin_dict(f.filtered.skin) if f.filtered else None,
                             "d_ita": _r(sh.delta_ita, 4) if sh else None, "d_l": _r(sh.delta_l, 4) if sh else None,
                             "d_mst": sh.delta_mst if sh else None, "moved_px": _r(sh.moved_px, 4) if sh else None})
            self.fcomp.put(key, {"faces": vals})
        for n in names:
            model_name = self.models.classifiers[n].name
            self.ccomp[n].put(key, {"faces": [_clf(f.original.classifiers[model_name]) for f in faces]})
            if use_filter and n in self.cfcomp:
                # with the reference the deltas are measured against (the crop through the filter's resampling)
                self.cfcomp[n].put(key, {"faces": [{**_clf(f.filtered.classifiers[model_name]),
                                                    **_reference(f.reference[model_name])} for f in faces if f.filtered]})

    def rows(self, samples: Sequence[Sample], root: str) -> tuple[list[dict], list[dict]]:
        """One row per face found, and one record per image (file, error, number of faces)."""
        rows, images = [], []
        for s in samples:
            path = resolve(s.path)
            key = self.key(path)
            base = self.base.get(key) or {"error": "not processed", "faces": []}
            rel = relative(s.path, root)
            # the labels travel with the image too: whose faces were found is counted per image (audit.detection);
            # n_found counts the faces beyond --max-faces too (an aligned image's one face has no count cached)
            images.append({"file": rel, "error": base["error"], "n_faces": len(base["faces"]),
                           "n_found": base.get("n_found", len(base["faces"])), "gender": s.gender,
                           "race": s.race, "age_band": s.age_band, "group": s.group})
            filt = self.fcomp.get(key) if self.fcomp is not None else None
            person = {"gender": s.gender, "race": s.race, "age": age_as_given(s), "age_band": s.age_band}
            for i, face in enumerate(base["faces"]):
                # An annotation describes one person, taken to be the image's largest face (the first); the
                # other faces are people it says nothing about, so they are "unknown", never the annotated
                # person's gender or race. A groups CSV labels the image, so its group holds for every face.
                labels = person if i == 0 else dict.fromkeys(person)
                row = {"file": rel, "path": path, "face": i, "box": face["box"], **labels, "group": s.group,
                       "skin": face["skin"], "filtered_skin": None, "d_ita": None, "d_l": None, "d_mst": None,
                       "moved_px": None, "clf": {}}
                if filt is not None:
                    fv = filt["faces"][i]
                    row.update(filtered_skin=fv["skin"], d_ita=fv["d_ita"], d_l=fv["d_l"], d_mst=fv["d_mst"],
                               moved_px=fv.get("moved_px"))
                for n in self.models.classifiers:
                    o = self.ccomp[n].get(key)["faces"][i]
                    c = {"p": o["p"], "pred": o["pred"], "focus": o["focus"]}
                    if n in self.cfcomp:
                        fo = self.cfcomp[n].get(key)["faces"][i]
                        c.update(p_ref=fo["p_ref"], pred_ref=fo["pred_ref"], p_f=fo["p"], pred_f=fo["pred"],
                                 focus_f=fo["focus"],
                                 dp=None if fo["p_ref"] is None or fo["p"] is None else round(fo["p"] - fo["p_ref"], 6),
                                 flip=None if fo["pred"] is None or fo["pred_ref"] is None
                                 else fo["pred"] != fo["pred_ref"])
                    row["clf"][n] = c
                rows.append(row)
        return rows, images


def file_key(path: str) -> str:
    """The cache's key for the image at ``path`` as it is now: the path, its size and modification time (a photo
    replaced under the same name is measured again); the path alone where it cannot be looked at (reading it then
    fails, and says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def keyed_path(key: str) -> str:
    """The image path a cache key (``file_key``) names."""
    path, *stamp = key.rsplit("|", 2)
    return path if len(stamp) == 2 and all(part.lstrip("-").isdigit() for part in stamp) else key


def still_read(key: str, known: dict[str, str]) -> bool:
    """Whether an audit may still read the cached ``key``: its image's key now (``known``: path → key, this audit's
    as it began, and filled in from the disk for the others), or the key of an image that cannot be looked at now,
    unless it was deleted from a folder still there. Kept so: a folder gone (a drive not mounted, a dataset moved)
    may come back with its files unchanged."""
    path = keyed_path(key)
    now = known.get(path)
    if now is None:
        now = known[path] = file_key(path)
    if now != path:
        return key == now  # the file is there: its older keys are superseded for every audit
    return not deleted(path)


def deleted(path: str) -> bool:
    """Whether the file at ``path`` is gone from a folder that is still there."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return Path(path).parent.is_dir()
    except OSError:
        return False
    return False


def age_as_given(s: Sample) -> int | str | None:
    """A face's age as its dataset gives it, for faces.csv and the contradicted labels: whole years, or the
    dataset's own bin as it spells it (FairFace's "30-39", "more than 70"). ``Sample.age`` holds a bin's lower bound,
    for --min-age alone: written as the age, a 30-39 had read "30", an exact age FairFace never gives. Nothing
    computes with this value (the age groupings use ``Sample.age_band``), and the cache holds none: rows take it from
    the dataset as read, so an audit resumed from an older cache writes the bin too."""
    return s.age_bin if s.age_bin is not None else s.age


def condition_key(condition: str) -> str:
    """A filter condition's part of a cache file's name: readable, and told apart by a hash of the label, since
    "tone-1" and "tone+1" read the same once made file-safe, and the second audit had reused the first's results."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in condition)[:32]
    return f"-c{safe}-{hashlib.sha256(condition.encode()).hexdigest()[:8]}"


def _p_female(pred) -> float | None:
    return _r(pred.p_female, 6) if measured(pred.p_female) else None  # NaN: the classifier has no 'female' label


def _clf(out) -> dict:
    return {"p": _p_female(out), "pred": out.predicted or None, "focus": _r(out.cam_focus, 6)}


def _reference(pred) -> dict:
    return {"p_ref": _p_female(pred), "pred_ref": pred.predicted or None}


def resolve(path: str) -> str:
    return str(Path(path).resolve())


def relative(path: str, root: str) -> str:
    """``path`` below the dataset's ``root`` as the reader listed it: through a link to a folder outside the root
    ("s1/001.jpg"), not where the link leads, which had left its bare name: two sessions' "001.jpg" were one name in
    faces.csv (and one thumbnail in report.html), and a groups CSV naming "s1/001.jpg" matched nothing."""
    for p, r in ((os.path.abspath(path), os.path.abspath(root)), (Path(path).resolve(), Path(root).resolve())):
        try:
            return Path(p).relative_to(r).as_posix()
        except ValueError:
            continue
    return os.path.basename(path)
