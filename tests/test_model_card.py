"""The demo model cards: the recipes' held-out split, the card measurement, and the shipped
assets agreeing with their cards."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from calib import synth
from calib.recipes import RECIPES, recipe_for

ASSETS = Path(__file__).resolve().parent.parent / "edge" / "models" / "assets"


@pytest.mark.parametrize(("arch", "held"), [("mmnet", 1000), ("afnet_m", 744), ("famnet", 750)])
def test_held_out_split_is_the_recipes_never_trained_subjects(arch, held):
    from calib.model_card import split_indices
    from edge.models import architecture

    recipe = recipe_for(arch)
    classes = architecture(arch).build_seeded(0).spec.class_names
    train, test = split_indices(recipe, classes)
    assert len(test) == held and len(train) + len(test) == recipe.samples
    subjects = synth.subject_schedule(test, recipe.subjects, classes)
    assert set(subjects) == set(recipe.held_out)
    assert not set(synth.subject_schedule(train, recipe.subjects, classes)) & set(recipe.held_out)


@pytest.mark.parametrize("arch", sorted(set(RECIPES) - {"ststnet"}))  # ststnet: tests/flow
def test_shipped_demo_is_small_loads_strictly_and_matches_its_card(arch):
    from edge.models import architecture

    path = ASSETS / f"{arch}_demo.safetensors"
    assert path.stat().st_size <= 25 * 2**20
    demo = architecture(arch).build_demo()
    card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert demo.info["trained"] is True and demo.info["demo_card"] == card
    assert card["file"] == path.name and card["variant"] == demo.spec.variant
    assert card["class_names"] == list(demo.spec.class_names)
    if "config" in demo.info:
        assert json.loads(json.dumps(demo.info["config"])) == card["config"]
    assert card["recipe_settings"] == json.loads(json.dumps(recipe_for(arch).to_dict()))
    held = card["held_out"]
    assert held["subjects"] == ["s14", "s15"] and held["samples"] > 0
    assert held["accuracy"] > card["chance"] and set(held["decisions_kept_under_noise"]) == {
        "0.25",
        "1.0",
    }


@pytest.mark.torch
def test_card_is_measured_on_the_held_out_clips(tmp_path):
    pytest.importorskip("torch")
    from calib import model_card
    from edge.models import architecture

    arch = architecture("afnet_m")
    demo = arch.build_demo()
    recipe = dataclasses.replace(recipe_for("afnet_m"), samples=24, subjects=4, held_out=("s03",))
    _, held = model_card.split_indices(recipe, demo.spec.class_names)
    data = model_card.render(recipe, demo.spec, held, chunk=3)
    assert set(data.subjects) == {"s03"} and len(data) == len(held) == 6
    infer = model_card.torch_infer(demo.model, demo.spec, "cpu")
    measured = model_card.measure(infer, data, demo.spec, batch=4)
    logits = model_card.batched(infer, 2)(dict(data.inputs))
    assert measured["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == data.labels))
    assert 0.0 <= measured["decisions_kept_under_noise"]["1.0"] <= 1.0
    card = model_card.demo_card(demo, recipe, tmp_path / "x.safetensors",
                                {"subjects": ["s03"], **measured}, measured_on="cpu")  # fmt: skip
    path = model_card.write_card(card, tmp_path / "x.json")
    assert json.loads(path.read_text())["held_out"]["samples"] == 6
