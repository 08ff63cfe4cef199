"""The two unpaired image domains a CycleGAN learns to translate between.

Domains come from two folders (trainA/trainB style) or are composed from a
labelled dataset. Every domain keeps the project's stable hash split: the
train split trains, the val split feeds the fixed sample grid and the drift
curve, the test split gives the metrics in the card.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from inference.datasets import USER_CACHE, DatasetCache, DatasetRead, Sample, cache_folder, open_dataset, split_of
from inference.datasets.sample import band_bounds
from inference.datasets.framing import train_remedy, warn_if_loosely_framed
from inference.datasets.copies import kept_with_copies, relative_name
from inference.datasets.near_identical import MAX_RMS, MIN_STD, SIDE, near_pairs, thumbnails
from inference.errors import BiasMirrorError
from inference.file_identity import file_hash, file_stats
from inference.user_dirs import cache_keys, folder_cache_file
from inference.writing import written_whole
from training.data.compose import Composition, cell_of, compose, product_target

log = logging.getLogger(__name__)

# Workforce mix of a large tech company: approximate shares from Google's 2023
# Diversity Annual Report (US workforce): about 67% men / 33% women; race
# about White 48%, Asian 44%, Black 4%, Hispanic/Latinx 4% (the report counts
# multiracial people in each of their groups; these are renormalised to 1).
# Mapping to UTKFace's five race labels: the report's "Asian" covers East and
# South Asians, while UTKFace separates "Asian" (East/South-East) from
# "Indian", so the 44% is split evenly between the two (an assumption; the
# report does not break it down). UTKFace's "Others" (Hispanic, Latino,
# Middle Eastern, ...) stands in for Hispanic/Latinx.
ENGINEER_SOURCE = "Google 2023 Diversity Annual Report, US workforce (approximate shares)"
ENGINEER_MARGINALS = {
    "gender": {"male": 0.67, "female": 0.33},
    "race": {"White": 0.48, "Asian": 0.22, "Indian": 0.22, "Black": 0.04, "Others": 0.04},
}
ADULT_AGE = 18
AGING_YOUNG = (20, 35)
AGING_OLD = 60


@dataclass
class Domain:
    name: str
    train: list[Sample]  # the composed training mix
    val: list[Sample]
    test: list[Sample]
    composition: Composition
    notes: dict = field(default_factory=dict)
    root: str = ""  # the folder its files' paths are below (the dataset's, or the domain folder)


@dataclass
class Domains:
    a: Domain
    b: Domain
    source: str  # the dataset spec or the two folders
    recipe: str  # "engineer", "aging" or "folders"
    with_copies: frozenset[str] = frozenset()  # paths whose split is their copies' (see kept_with_copies)
    overlap: dict = field(default_factory=dict)  # the photographs found in both domains (the card's "domain_overlap")


def _salted_half(sample: Sample) -> int:
    """0 or 1 by a salted hash of the file name: splits a pool so A and B never share a face."""
    digest = hashlib.sha1(("domain|" + os.path.basename(sample.path)).encode("utf-8", "surrogateescape")).digest()
    return digest[0] & 1


def _by_split(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for s in samples:
        out[split_of(s)].append(s)
    return out


def _check_size(name: str, domain_train: Sequence[Sample], comp: Composition, min_size: int, where: object) -> None:
    """Refused before any image is decoded (minutes at 256 px), by the files listed; ``check_readable_size``
    counts those read once they are."""
    if len(domain_train) < min_size:
        raise BiasMirrorError(
            f"domain {name} has only {len(domain_train)} listed training image(s), fewer than --min-domain-size "
            f"{min_size}; counts per cell available {comp.available}, used {comp.achieved}. Use a larger dataset or "
            "lower the limit",
            where,
        )


def check_readable_size(name: str, domain: Domain, read: Sequence[Sample], min_size: int, where: object) -> None:
    """A domain whose training images, once decoded, are fewer than --min-domain-size: the listed ones passed
    ``_check_size``, but an unreadable file is not trained on (a domain of 200 listed files, one unreadable, had
    trained on 199 under --min-domain-size 200)."""
    if len(read) >= min_size:
        return
    raise BiasMirrorError(
        f"domain {name} has only {len(read)} readable training image(s) ({len(domain.train) - len(read)} of its "
        f"{len(domain.train)} listed could not be read), fewer than --min-domain-size {min_size}; counts per cell "
        f"read {trained_composition(domain, read)['achieved']}. Repair or replace the unreadable images, use a larger "
        "dataset or lower the limit",
        where,
    )


def trained_composition(domain: Domain, read: Sequence[Sample]) -> dict:
    """``domain``'s composition record (``Composition.to_dict``) with the counts and shares of the images ``read``
    and trained on, and how many of its listed training images could not be read ("unreadable"): the mix is
    composed from the files listed, before any is decoded, and the card had counted an unreadable one as trained
    on (a cell of one unreadable face listed as 1). "available" stays the listed pool the mix was drawn from."""
    comp = domain.composition
    achieved = {**dict.fromkeys(comp.achieved, 0), **Counter(cell_of(s, comp.by) for s in read)}
    n = max(1, len(read))
    return {**comp.to_dict(), "achieved": achieved, "achieved_share": {c: k / n for c, k in achieved.items()},
            "unreadable": len(domain.train) - len(read)}


def _compose_checked(name: str, samples: list[Sample], by: Sequence[str], mode: str, target: dict | None,
                     seed: int, where: object) -> tuple[list[Sample], Composition]:
    if not samples:
        raise BiasMirrorError(f"domain {name} is empty: no training faces match it (counts per cell: {{}})", where)
    try:
        idx, comp = compose(samples, by, mode, target, seed)
    except BiasMirrorError as exc:
        raise BiasMirrorError(f"domain {name}: {exc}", where) from exc
    return [samples[i] for i in idx], comp


def _reasons(counted: Sequence[tuple[int, str]]) -> str:
    """"3 have no age, 2 are under 18": each reason that counts any face, in order."""
    return ", ".join(f"{n} {what}" for n, what in counted if n)


def _age_fix(read: DatasetRead, no_age: int, otherwise: str) -> str:
    """How to give a recipe that needs ages what it lacks: a folder's faces get theirs from its labels.csv."""
    return "give it an age column (labels.csv: file,gender,race,age)" if read.name == "folder" and no_age else otherwise


def _no_adults(read: DatasetRead) -> BiasMirrorError:
    """Why no face is an adult with gender and race: a dataset without ages had been told "domain A is empty: no
    training faces match it (counts per cell: {})"."""
    labelled = [s for s in read.samples if s.gender and s.race]
    no_age = sum(s.age is None for s in labelled)
    young = sum(s.age is not None and s.age < ADULT_AGE for s in labelled)
    why = _reasons([(no_age, "have no age"), (young, f"are under {ADULT_AGE}"),
                    (len(read.samples) - len(labelled), "have no gender or race")])
    fix = _age_fix(read, no_age, "give it adults labelled with gender, race and age")
    return BiasMirrorError(f"the engineer recipe needs each face's gender, race and age, and keeps only adults (age "
                           f"≥ {ADULT_AGE}): none of this dataset's {len(read.samples)} faces is one "
                           f"({why or 'it has no faces'}); {fix}", read.root)




def engineer_domains(spec: str, seed: int, min_size: int, cache_dir: DatasetCache = USER_CACHE) -> Domains:
    """A: adults balanced over gender × race; B: adults in the tech-workforce mix. ``cache_dir``: as
    ``open_dataset``'s."""
    read = open_dataset(spec, cache_dir)
    warn_if_loosely_framed(read, train_remedy())  # each image is a face the generator learns from
    races = ENGINEER_MARGINALS["race"]
    spelled = {r.lower(): r for r in races}  # a labels.csv's "white" is UTKFace's "White"
    adults = [dataclasses.replace(s, race=spelled.get(s.race.strip().lower(), s.race)) for s in read.samples
              if s.gender and s.race and s.age is not None and s.age >= ADULT_AGE]
    if not adults:
        raise _no_adults(read)
    others = sorted({s.race for s in adults} - set(races))
    if others:
        raise BiasMirrorError(f"the engineer recipe's races are UTKFace's ({', '.join(races)}), and this dataset's "
                              f"adults also have {', '.join(map(repr, others[:5]))}: give it UTKFace's race names",
                              read.root)
    split = _by_split(adults)
    halves = [[s for s in split["train"] if _salted_half(s) == h] for h in (0, 1)]
    target = product_target(ENGINEER_MARGINALS)
    a_train, a_comp = _compose_checked("A", halves[0], ("gender", "race"), "balanced", None, seed, read.root)
    b_train, b_comp = _compose_checked("B", halves[1], ("gender", "race"), "target", target, seed, read.root)
    _check_size("A", a_train, a_comp, min_size, read.root)
    _check_size("B", b_train, b_comp, min_size, read.root)
    overlap = _engineer_overlap(read, a_train, b_train)
    # Held-out faces: A's val/test are every adult (the filter is applied to anyone).
    a = Domain("adults balanced over gender×race", a_train, split["val"], split["test"], a_comp, root=read.root)
    b_val = [s for s in split["val"] if _salted_half(s) == 1]
    b = Domain("tech-workforce mix (" + ENGINEER_SOURCE + ")", b_train, b_val, [], b_comp,
               notes={"marginals": ENGINEER_MARGINALS, "source": ENGINEER_SOURCE,
                      "race_mapping": "report Asian 44% split evenly into UTKFace Asian and Indian; "
                                      "UTKFace Others stands in for Hispanic/Latinx"}, root=read.root)
    return Domains(a, b, spec, "engineer", kept_with_copies(read), overlap)


# How the engineer recipe finds a photograph in both domains: by the project's copy detection
# (inference/datasets/copies.py); domain folders take the same bytes alone (see SAME_BYTES)
SAME_PHOTOGRAPH = (f"the same bytes, or {SIDE}×{SIDE} grey thumbnails within {MAX_RMS:g} grey levels RMS (one "
                   "photograph saved again, re-encoded or re-cropped)")
EXAMPLES = 3


def _example(path_a: str, root_a: str, path_b: str, root_b: str, sep: str = "≈") -> str:
    """"A/x.jpg ≈ B/y.jpg": each image below its domain's folder, named by that folder."""
    return (f"{Path(root_a).name}/{relative_name(path_a, root_a)} {sep} "
            f"{Path(root_b).name}/{relative_name(path_b, root_b)}")


def _engineer_overlap(read: DatasetRead, a_train: list[Sample], b_train: list[Sample]) -> dict:
    """The photographs trained on in both domains: near-identical images under two names (byte-identical ones are
    already one image), which the split by file name (``_salted_half``) may send one to each half. Counted and
    said, not moved: moving them would change the recipe's split, and a run started before could not resume."""
    names = [{relative_name(s.path, read.root) for s in train} for train in (a_train, b_train)]
    both = [group for group in read.near_identical if names[0] & set(group) and names[1] & set(group)]
    examples = [" ≈ ".join(sorted(set(group) & (names[0] | names[1]))) for group in both[:EXAMPLES]]
    if both:
        log.warning("%s: %d photograph(s) are in both domains' training, as near-identical images under two names "
                    "(one photograph re-encoded or re-cropped; the recipe splits the dataset by file name), e.g. %s: "
                    "kept as the recipe splits them, so that its runs stay resumable; the card says so",
                    read.root, len(both), "; ".join(examples))
    return {"rule": SAME_PHOTOGRAPH, "photographs_in_both_domains_training": len(both), "examples": examples,
            "kept": "as the recipe's split by file name puts them (moving them would change its split)"}


def _age_span(sample: Sample) -> tuple[float, float] | None:
    """The youngest and oldest ``sample`` may be: its age twice, or for an age band (FairFace's "30-39", whose
    lower bound is ``age``) the band's bounds, the upper one open for a band of one number ("more than 70")."""
    if sample.age is None:
        return None
    if not sample.age_bin:
        return sample.age, sample.age
    bounds = band_bounds(sample.age_bin)
    return sample.age, (bounds[1] if bounds is not None else math.inf)


def _within(sample: Sample, ages: tuple[float, float]) -> bool:
    """``sample`` is surely aged within ``ages`` (both ends included): a band that straddles them is not, since
    the whole "30-39" band had been taken for the "20-35" domain by its lower bound."""
    span = _age_span(sample)
    return span is not None and ages[0] <= span[0] and span[1] <= ages[1]


def _straddles(sample: Sample, ages: tuple[float, float]) -> bool:
    """``sample``'s age band is partly within ``ages`` and partly outside: it is left out of the domain."""
    span = _age_span(sample)
    return span is not None and span[0] <= ages[1] and span[1] >= ages[0] and not _within(sample, ages)


def _bands_of(samples: Sequence[Sample]) -> list[str]:
    """The age bands of ``samples``, youngest first."""
    lowest = {s.age_bin: s.age for s in samples if s.age_bin}
    return sorted(lowest, key=lambda band: (lowest[band], band))


def _band_notes(read: DatasetRead, ages: tuple[float, float]) -> dict:
    """For a dataset that gives ages as bands, which bands a domain holds and which straddling ones it left out:
    the card's "ages 20-35" holds FairFace's 20-29 alone. Empty for exact ages (UTKFace's cards stay as they were)."""
    binned = [s for s in read.samples if s.age_bin]
    if not binned:
        return {}
    straddling = Counter(s.age_bin for s in binned if _straddles(s, ages))
    return {"age_bands": _bands_of([s for s in binned if _within(s, ages)]),
            "age_bands_left_out": {band: f"{straddling[band]} face(s): the band straddles the domain's ages"
                                   for band in _bands_of([s for s in binned if s.age_bin in straddling])}}


def _empty_aging_domain(name: str, label: str, ages: tuple[float, float], read: DatasetRead) -> BiasMirrorError:
    """Why no training face is in an aging domain: a dataset without ages (CelebA), or one whose age bands all
    straddle the domain's ages, had been told "no training faces match it (counts per cell: {})"."""
    train = _by_split(read.samples)["train"]
    no_age = sum(s.age is None for s in train)
    straddling = [s for s in train if _straddles(s, ages)]
    outside = len(train) - no_age - len(straddling) - sum(_within(s, ages) for s in train)
    bands = " and ".join(map(repr, _bands_of(straddling)))
    why = _reasons([(no_age, "have no age"),
                    (len(straddling), f"are in the age band(s) {bands}, which straddle them and are left out of "
                                      "both domains"),
                    (outside, "are aged outside them")])
    need = ("the aging domains need each face's age" + (", and take an age band only where it lies wholly within a "
                                                        "domain's ages" if straddling else ""))
    fix = _age_fix(read, no_age, "use a dataset that gives ages (utkface:, fairface:, or folder: with an age column)"
                   if no_age == len(train) else f"give it training faces of {label}")
    return BiasMirrorError(f"domain {name} is empty: none of the {read.name} dataset's {len(train)} training faces is "
                           f"of {label} ({why or 'it has none'}); {need}; {fix}", read.root)


def aging_domains(spec: str, seed: int, min_size: int, cache_dir: DatasetCache = USER_CACHE) -> Domains:
    """A: ages 20–35; B: ages 60+. The age ranges never overlap, so no pool split is needed. A face aged by a band
    (FairFace's "30-39") is in a domain only where its whole band is: one that straddles a range is in neither.
    ``cache_dir``: as ``open_dataset``'s."""
    read = open_dataset(spec, cache_dir)
    warn_if_loosely_framed(read, train_remedy())  # each image is a face the generator learns from
    lo, hi = AGING_YOUNG
    ranges = {"A": (f"ages {lo}-{hi}", (lo, hi)), "B": (f"ages {AGING_OLD}+", (AGING_OLD, math.inf))}
    domains = []
    for name, (label, ages) in ranges.items():
        split = _by_split([s for s in read.samples if _within(s, ages)])
        if not split["train"]:
            raise _empty_aging_domain(name, label, ages, read)
        train, comp = _compose_checked(name, split["train"], ("gender", "race"), "none", None, seed, read.root)
        domains.append(Domain(label, train, split["val"], split["test"], comp, notes=_band_notes(read, ages),
                              root=read.root))
    for domain, name in zip(domains, ranges):
        _check_size(name, domain.train, domain.composition, min_size, read.root)
    return Domains(*domains, spec, "aging", kept_with_copies(read))


def _folder_read(folder: str, cache_dir: Path | None) -> DatasetRead:
    """A domain folder's images as a ``folder:`` dataset reads them: a photograph stored twice counts once, in
    one split (a copy of a training face under other names had been among the held-out faces on the card)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise BiasMirrorError("domain folder does not exist; give a folder of images (e.g. trainA)", root)
    return open_dataset(f"folder:{root}", cache_dir)


# Across two domain folders only the same bytes are one photograph. A paired dataset's B is A's photographs edited
# (a beauty filter's before and after), near-identical by design: left out, they had refused B = A brightened by 6
# grey levels, and an 8 % lightening had left out a third of the dark-skinned faces and a sixteenth of the White ones
# (it changes a dark face's thumbnail less), so near-identical pairs are said and counted, and kept.
SAME_BYTES = "the same bytes (a copy, or a link to the same file)"
NEAR_IDENTICAL = (f"{SIDE}×{SIDE} grey thumbnails within {MAX_RMS:g} grey levels RMS (one photograph edited, "
                  "re-encoded or re-cropped, as a paired dataset's before and after are)")

# The digests of files compared across two domain folders are kept apart from each folder's own: copies.py keeps,
# per folder, the digests of its last look only, and each would have rewritten the other's.
ACROSS_DOMAINS_CACHE = "across_domains"
_DIGESTS_VERSION = 1


def _kept_digests(cache_path: Path | None) -> dict[str, list]:
    """The digests kept for a folder, by its files' names within it: [size, modification time, digest] each."""
    if cache_path is None:
        return {}
    try:
        data = json.loads(cache_path.read_text(encoding="utf-8"))
        return dict(data["files"]) if data.get("version") == _DIGESTS_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none yet, or damaged: computed again


def _digests(stats: dict, root: str, cache_dir: Path | None) -> dict[str, str]:
    """Each file's digest (``file_hash``, as copies.py finds copies by), kept per domain folder: the files of one
    folder are named within it alone, so no root common to both folders is needed (on Windows two folders on two
    drives have none, and ``os.path.commonpath`` had raised ValueError). A file that cannot be read has none."""
    cache_path = (folder_cache_file(cache_dir / ACROSS_DOMAINS_CACHE, "digests", root, ".json")
                  if cache_dir is not None else None)
    kept = _kept_digests(cache_path)
    key = cache_keys(stats, root)
    digests, fresh = {}, {}
    for p, st in stats.items():
        entry = kept.get(key[p])
        if entry and tuple(entry[:2]) == st:
            digests[p] = entry[2]
            continue
        try:
            digests[p] = fresh[key[p]] = file_hash(p)
        except OSError:
            continue
    if cache_path is not None and fresh:
        # merged with what was kept: the files read depend on the other folder (its sizes), and another pairing
        # must not undo this one's
        files = {**kept, **{key[p]: [*stats[p], digests[p]] for p in stats if key[p] in fresh}}
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            with written_whole(cache_path) as part:
                part.write_text(json.dumps({"version": _DIGESTS_VERSION, "files": files}), encoding="utf-8")
        except OSError as e:  # a read-only cache folder costs time on the next run, nothing else
            log.debug("could not keep file digests in %s: %s", cache_path, e)
    return digests


def _same_bytes(stats_a: dict, root_a: str, stats_b: dict, root_b: str, cache_dir: Path | None
                ) -> list[tuple[str, str]]:
    """Pairs (a file of A's, one of B's) holding the same bytes, matched by digest: only files of a size both
    domains have are read, each folder's on its own. An empty file is damaged, not a copy."""
    sizes = ({size for size, _ in stats_a.values()} & {size for size, _ in stats_b.values()}) - {0}
    a, b = (_digests({p: st for p, st in stats.items() if st[0] in sizes}, root, cache_dir)
            for stats, root in ((stats_a, root_a), (stats_b, root_b)))
    in_b: dict[str, list[str]] = defaultdict(list)
    for q, digest in b.items():
        in_b[digest].append(q)
    return [(p, q) for p, digest in a.items() for q in in_b.get(digest, [])]


def _stats(read: DatasetRead) -> dict[str, tuple[int, int]]:
    return file_stats([s.path for s in read.samples])


def shared_photographs(a: DatasetRead, b: DatasetRead, cache_dir: Path | None) -> list[tuple[str, str]]:
    """Each pair (an image of ``a``'s, one of ``b``'s) that is one photograph, sorted: the same bytes (a copy, or a
    link to the same file)."""
    return sorted(_same_bytes(_stats(a), a.root, _stats(b), b.root, cache_dir))


def near_identical_across(a: DatasetRead, b: DatasetRead, cache_dir: Path | None) -> list[tuple[str, str]]:
    """Each pair (an image of ``a``'s, one of ``b``'s) whose thumbnails are near-identical (``NEAR_IDENTICAL``),
    sorted; read from the caches that opening each folder filled (asked for no file more, so neither cache is
    written again)."""
    kept_a, thumbs_a = thumbnails(_stats(a), a.root, cache_dir)
    kept_b, thumbs_b = thumbnails(_stats(b), b.root, cache_dir)
    kept = kept_a + kept_b
    thumbs = np.concatenate([thumbs_a, thumbs_b]) if kept else np.zeros((0, SIDE * SIDE), np.uint8)
    telling = np.flatnonzero(thumbs.astype(np.float32).std(1) >= MIN_STD)  # as near_groups: too flat to tell apart
    pairs = telling[near_pairs(thumbs[telling])]  # i < j: A's before B's
    return sorted((kept[i], kept[j]) for i, j in pairs.tolist() if i < len(kept_a) <= j)


def _refuse_one_within_the_other(shared: list[tuple[str, str]], reads: list[DatasetRead], folders: tuple[str, str]
                                 ) -> None:
    """Every image of one domain is also in the other (copied into it, or linked from it): nothing is left to tell
    the two apart by."""
    for side, (label, other) in enumerate((("A", "B"), ("B", "A"))):
        inside = {pair[side] for pair in shared}
        if reads[side].samples and all(s.path in inside for s in reads[side].samples):
            example = _example(shared[0][0], reads[0].root, shared[0][1], reads[1].root, "=")
            raise BiasMirrorError(f"every image of domain {label} ({folders[side]}) is also in domain {other} "
                                  f"({folders[1 - side]}): {SAME_BYTES}, e.g. {example}. A filter learns the "
                                  "difference between two domains: give two folders of different images",
                                  folders[1 - side])


def _counts_and_examples(pairs: list[tuple[str, str]], reads: list[DatasetRead], sep: str
                         ) -> tuple[dict[str, int], list[str]]:
    """How many images of each domain the pairs hold, and the first pairs, each below its domain's folder."""
    counts = {label: len({pair[side] for pair in pairs}) for side, label in enumerate("AB")}
    return counts, [_example(p, reads[0].root, q, reads[1].root, sep) for p, q in pairs[:EXAMPLES]]


def _folder_overlap(shared: list[tuple[str, str]], near: list[tuple[str, str]], reads: list[DatasetRead],
                    left_out: dict[str, int]) -> dict:
    """The card's record of the photographs in both domain folders (the same bytes, left out of training) and of
    the near-identical images across them (kept), each said as a warning where there are any."""
    in_both, examples = _counts_and_examples(shared, reads, "=")
    if shared:
        log.warning("%d image(s) of domain A (%s) and %d of domain B (%s) are one photograph in both domains (%s), "
                    "e.g. %s: left out of both domains' training (%d of A's training images, %d of B's); the card "
                    "says so", in_both["A"], reads[0].root, in_both["B"], reads[1].root, SAME_BYTES,
                    "; ".join(examples), left_out["A"], left_out["B"])
    near_counts, near_examples = _counts_and_examples(near, reads, "≈")
    if near:
        log.warning("%d image(s) of domain A (%s) and %d of domain B (%s) are near-identical across the domains "
                    "(%s), e.g. %s: kept in training, as a paired dataset's edited copies are (where they are one "
                    "photograph stored twice by mistake, it trains as both A and B); the card counts them",
                    near_counts["A"], reads[0].root, near_counts["B"], reads[1].root, NEAR_IDENTICAL,
                    "; ".join(near_examples))
    return {"rule": SAME_BYTES, "images_in_both_domains": in_both, "left_out_of_training": left_out,
            "examples": examples,
            "near_identical": {"rule": NEAR_IDENTICAL, "images": near_counts, "examples": near_examples,
                               "kept": "in both domains' training (a paired dataset's B is A's photographs edited)"}}


def folder_domains(folder_a: str, folder_b: str, seed: int, min_size: int, cache_dir: DatasetCache = USER_CACHE
                   ) -> Domains:
    """A: the images of one folder, B: the other's; ``cache_dir``: as ``open_dataset``'s, for each folder and for
    the digests compared across them."""
    kept_in = cache_folder(cache_dir)
    a, b = Path(folder_a).expanduser().resolve(), Path(folder_b).expanduser().resolve()
    if a in b.parents or b in a.parents:  # B inside A: its images were in both domains, without a word
        inner, outer = (folder_b, folder_a) if a in b.parents else (folder_a, folder_b)
        raise BiasMirrorError(f"one domain folder lies inside the other ({outer} holds it): its images would be in "
                              "both domains; give two folders apart", inner)
    reads = [_folder_read(folder, kept_in) for folder in (folder_a, folder_b)]
    # Folders apart may still share images (a copy, a link): a face trained as both A and B blurs the difference
    # the filter learns, so it trains as neither. Near-identical ones are said and kept (see SAME_BYTES).
    shared = shared_photographs(reads[0], reads[1], kept_in)
    _refuse_one_within_the_other(shared, reads, (folder_a, folder_b))
    in_both = {p for pair in shared for p in pair}
    near = [pair for pair in near_identical_across(reads[0], reads[1], kept_in) if not in_both & set(pair)]
    splits = [_by_split(sorted(read.samples, key=lambda s: s.path)) for read in reads]
    own = [[s for s in split["train"] if s.path not in in_both] for split in splits]
    # said before the domains' sizes are checked: a domain too small without them is told why
    overlap = _folder_overlap(shared, near, reads, {label: len(split["train"]) - len(kept)
                                                    for label, split, kept in zip("AB", splits, own)})
    domains = []
    for label, folder, read, split, train_pool in zip("AB", (folder_a, folder_b), reads, splits, own):
        train, comp = _compose_checked(label, train_pool, (), "none", None, seed, folder)
        _check_size(label, train, comp, min_size, folder)
        domains.append(Domain(Path(folder).name, train, split["val"], split["test"], comp, root=read.root))
    return Domains(domains[0], domains[1], f"{folder_a} | {folder_b}", "folders",
                   frozenset().union(*(kept_with_copies(read) for read in reads)), overlap)


def describe(domain: Domain) -> str:
    by = "×".join(domain.composition.by) or "(no labels)"
    return (f"domain {domain.name}: {len(domain.train)} training faces, composition over {by}:\n"
            + domain.composition.table())


