"""The two unpaired image domains a CycleGAN learns to translate between.

Domains come from two folders (trainA/trainB style) or are composed from a
labelled dataset. Every domain keeps the project's stable hash split: the
train split trains, the val split feeds the fixed sample grid and the drift
curve, the test split gives the metrics in the card.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from inference.datasets import DatasetRead, Sample, open_dataset, split_of
from inference.datasets.copies import kept_with_copies
from inference.errors import BiasMirrorError
from training.data.compose import Composition, compose, product_target

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


def _salted_half(sample: Sample) -> int:
    """0 or 1 by a salted hash of the file name: splits a pool so A and B never share a face."""
    digest = hashlib.sha1(("domain|" + os.path.basename(sample.path)).encode()).digest()
    return digest[0] & 1


def _by_split(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for s in samples:
        out[split_of(s)].append(s)
    return out


def _check_size(name: str, domain_train: Sequence[Sample], comp: Composition, min_size: int, where: object) -> None:
    if len(domain_train) < min_size:
        raise BiasMirrorError(
            f"domain {name} has only {len(domain_train)} training image(s), fewer than --min-domain-size {min_size}; "
            f"counts per cell available {comp.available}, used {comp.achieved}. Use a larger dataset or lower the limit",
            where,
        )


def _compose_checked(name: str, samples: list[Sample], by: Sequence[str], mode: str, target: dict | None,
                     seed: int, where: object) -> tuple[list[Sample], Composition]:
    if not samples:
        raise BiasMirrorError(f"domain {name} is empty: no training faces match it (counts per cell: {{}})", where)
    try:
        idx, comp = compose(samples, by, mode, target, seed)
    except BiasMirrorError as exc:
        raise BiasMirrorError(f"domain {name}: {exc}", where) from exc
    return [samples[i] for i in idx], comp


def _no_adults(read: DatasetRead) -> BiasMirrorError:
    """Why no face is an adult with gender and race: a dataset without ages had been told "domain A is empty: no
    training faces match it (counts per cell: {})"."""
    labelled = [s for s in read.samples if s.gender and s.race]
    no_age = sum(s.age is None for s in labelled)
    young = sum(s.age is not None and s.age < ADULT_AGE for s in labelled)
    why = [f"{no_age} have no age" if no_age else "", f"{young} are under {ADULT_AGE}" if young else "",
           f"{len(read.samples) - len(labelled)} have no gender or race" if len(labelled) < len(read.samples) else ""]
    fix = ("give it an age column (labels.csv: file,gender,race,age)" if read.name == "folder" and no_age
           else "give it adults labelled with gender, race and age")
    return BiasMirrorError(f"the engineer recipe needs each face's gender, race and age, and keeps only adults (age "
                           f"≥ {ADULT_AGE}): none of this dataset's {len(read.samples)} faces is one "
                           f"({', '.join(w for w in why if w) or 'it has no faces'}); {fix}", read.root)


def engineer_domains(spec: str, seed: int, min_size: int) -> Domains:
    """A: adults balanced over gender × race; B: adults in the tech-workforce mix."""
    read = open_dataset(spec)
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
    # Held-out faces: A's val/test are every adult (the filter is applied to anyone).
    a = Domain("adults balanced over gender×race", a_train, split["val"], split["test"], a_comp, root=read.root)
    b_val = [s for s in split["val"] if _salted_half(s) == 1]
    b = Domain("tech-workforce mix (" + ENGINEER_SOURCE + ")", b_train, b_val, [], b_comp,
               notes={"marginals": ENGINEER_MARGINALS, "source": ENGINEER_SOURCE,
                      "race_mapping": "report Asian 44% split evenly into UTKFace Asian and Indian; "
                                      "UTKFace Others stands in for Hispanic/Latinx"}, root=read.root)
    return Domains(a, b, spec, "engineer", kept_with_copies(read))


def aging_domains(spec: str, seed: int, min_size: int) -> Domains:
    """A: ages 20–35; B: ages 60+. The age bands never overlap, so no pool split is needed."""
    read = open_dataset(spec)
    lo, hi = AGING_YOUNG
    young = [s for s in read.samples if s.age is not None and lo <= s.age <= hi]
    old = [s for s in read.samples if s.age is not None and s.age >= AGING_OLD]
    ys, os_ = _by_split(young), _by_split(old)
    by = ("gender", "race")
    a_train, a_comp = _compose_checked("A", ys["train"], by, "none", None, seed, read.root)
    b_train, b_comp = _compose_checked("B", os_["train"], by, "none", None, seed, read.root)
    _check_size("A", a_train, a_comp, min_size, read.root)
    _check_size("B", b_train, b_comp, min_size, read.root)
    return Domains(Domain(f"ages {lo}-{hi}", a_train, ys["val"], ys["test"], a_comp, root=read.root),
                   Domain(f"ages {AGING_OLD}+", b_train, os_["val"], os_["test"], b_comp, root=read.root), spec, "aging",
                   kept_with_copies(read))


def _folder_read(folder: str) -> DatasetRead:
    """A domain folder's images as a ``folder:`` dataset reads them: a photograph stored twice counts once, in
    one split (a copy of a training face under other names had been among the held-out faces on the card)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise BiasMirrorError("domain folder does not exist; give a folder of images (e.g. trainA)", root)
    return open_dataset(f"folder:{root}")


def folder_domains(folder_a: str, folder_b: str, seed: int, min_size: int) -> Domains:
    a, b = Path(folder_a).expanduser().resolve(), Path(folder_b).expanduser().resolve()
    if a in b.parents or b in a.parents:  # B inside A: its images were in both domains, without a word
        inner, outer = (folder_b, folder_a) if a in b.parents else (folder_a, folder_b)
        raise BiasMirrorError(f"one domain folder lies inside the other ({outer} holds it): its images would be in "
                              "both domains; give two folders apart", inner)
    domains, with_copies = [], frozenset()
    for label, folder in (("A", folder_a), ("B", folder_b)):
        read = _folder_read(folder)
        with_copies |= kept_with_copies(read)
        split = _by_split(sorted(read.samples, key=lambda s: s.path))
        train, comp = _compose_checked(label, split["train"], (), "none", None, seed, folder)
        _check_size(label, train, comp, min_size, folder)
        domains.append(Domain(Path(folder).name, train, split["val"], split["test"], comp, root=read.root))
    return Domains(domains[0], domains[1], f"{folder_a} | {folder_b}", "folders", with_copies)


def describe(domain: Domain) -> str:
    by = "×".join(domain.composition.by) or "(no labels)"
    return (f"domain {domain.name}: {len(domain.train)} training faces, composition over {by}:\n"
            + domain.composition.table())


