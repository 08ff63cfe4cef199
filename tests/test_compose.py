import pytest

from inference.datasets import Sample
from inference.errors import BiasMirrorError
from training.data.compose import compose, product_target


def _samples(spec):
    out = []
    for (g, r), n in spec.items():
        out += [Sample(f"{g}{r}{i}.jpg", g, r, 30) for i in range(n)]
    return out


def test_balanced_by_gender_undersamples_to_smallest_cell():
    s = _samples({("male", "W"): 70, ("female", "W"): 30})
    idx, comp = compose(s, ["gender"], "balanced", seed=1)
    assert comp.achieved == {"male": 30, "female": 30}
    assert len(set(idx)) == 60 and sum(s[i].gender == "male" for i in idx) == 30


def test_balanced_over_gender_race_cells():
    s = _samples({("male", "W"): 50, ("male", "B"): 12, ("female", "W"): 40, ("female", "B"): 20})
    _, comp = compose(s, ["gender", "race"], "balanced")
    assert set(comp.achieved.values()) == {12}
    assert comp.available["male|W"] == 50


def test_target_mix_is_hit_without_oversampling():
    s = _samples({("male", "W"): 200, ("female", "W"): 200})
    idx, comp = compose(s, ["gender"], "target", {"male": 0.7, "female": 0.3})
    assert comp.achieved["male"] == 200 and abs(comp.achieved_share["male"] - 0.7) < 0.01
    assert len(idx) == len(set(idx))


def test_product_target_and_joint_mix():
    t = product_target({"gender": {"male": 0.7, "female": 0.3}, "race": {"W": 0.5, "B": 0.5}})
    assert t == pytest.approx({"male|W": 0.35, "male|B": 0.35, "female|W": 0.15, "female|B": 0.15})
    s = _samples({("male", "W"): 100, ("male", "B"): 100, ("female", "W"): 100, ("female", "B"): 100})
    _, comp = compose(s, ["gender", "race"], "target", t)
    for cell, share in t.items():
        assert abs(comp.achieved_share[cell] - share) < 0.01


def test_empty_cell_is_a_clear_error_with_counts():
    s = _samples({("male", "W"): 10})
    with pytest.raises(BiasMirrorError, match="counts per cell"):
        compose(s, ["gender"], "target", {"male": 0.5, "female": 0.5})
    with pytest.raises(BiasMirrorError, match="unknown composition"):
        compose(s, ["gender"], "weird")


def test_a_balanced_mix_names_an_empty_cell_as_zero_and_warns_that_it_cannot_be_balanced():
    """With no female/Others face the nine other cells were balanced, and nothing said a cell was missing."""
    s = _samples({("male", "W"): 5, ("male", "O"): 4, ("female", "W"): 6})
    idx, comp = compose(s, ["gender", "race"], "balanced")
    assert len(idx) == 12 and comp.empty == ["female|O"]
    assert comp.available["female|O"] == 0 and comp.achieved["female|O"] == 0
    assert comp.to_dict()["achieved"]["female|O"] == 0  # the card's composition shows it
    table = comp.table()
    assert "female|O" in table and "warning: no training faces in female|O: the mix cannot be balanced in it" in table
    assert compose(s, ["gender", "race"], "none")[1].warning() is None  # nothing was meant to be balanced


def test_a_value_seen_outside_the_pool_is_an_empty_cell_of_a_balanced_mix():
    """A race in the test split alone had no cell: balanced over the others, with no warning and ``empty`` []."""
    pool = _samples({("male", "W"): 5, ("female", "W"): 4, ("male", "B"): 3, ("female", "B"): 6})
    everything = pool + _samples({("female", "O"): 2})
    _, comp = compose(pool, ["race"], "balanced", values_from=everything)
    assert comp.empty == ["O"] and comp.achieved == {"W": 9, "B": 9, "O": 0}
    assert "warning: no training faces in O" in comp.table()
