"""The accuracy-budget loop on a model where one layer must stay in FP32, and bad inputs.

The model's input has one huge, useless channel next to small informative ones (the way
MMNet's motion difference is small against the raw frames): per-tensor INT8 on the first
Gemm's input rounds the informative channels to zero, so its decisions collapse, while the
second Gemm quantizes harmlessly. Real onnxruntime quantization, real ORT runs.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ort

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
helper = onnx.helper

from edge.errors import CalibrationError, EdgeBuildError  # noqa: E402
from edge.lint import check_qdq, errors  # noqa: E402
from quantize.int8 import quantize_int8, quantize_model, resolve_nodes  # noqa: E402
from quantize.sensitivity import (  # noqa: E402
    DEFAULT_NOISE_DRAWS,
    candidate_groups,
    groups_reading_int8,
    make_evaluator,
    meet_budget,
)


def _outlier_model() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(8, 16)).astype(np.float32)
    w1[0] = 0.0  # the outlier channel carries no information
    w2 = rng.normal(size=(16, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="/g1/Gemm"),
        helper.make_node("Relu", ["h"], ["r"], name="/act/Relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], name="/g2/Gemm"),
    ]
    graph = helper.make_graph(
        nodes,
        "outlier",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 4])],
        [
            onnx.numpy_helper.from_array(w1, "w1"),
            onnx.numpy_helper.from_array(np.zeros(16, np.float32), "b1"),
            onnx.numpy_helper.from_array(w2, "w2"),
            onnx.numpy_helper.from_array(np.zeros(4, np.float32), "b2"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _feeds(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.05, size=(n, 8)).astype(np.float32)
    x[:, 0] = 200.0
    return [{"x": x[i : i + 1]} for i in range(n)]


@pytest.fixture(scope="module")
def evaluate():
    return make_evaluator(_outlier_model(), _feeds(32, 0), _feeds(64, 1), quantizer="ort")


def test_all_int8_breaks_the_budget(evaluate):
    assert evaluate(()).drop > 0.3


def test_budget_loop_keeps_exactly_the_sensitive_layer(evaluate):
    model = _outlier_model()
    groups = list(candidate_groups(model))
    assert groups == ["/g1/Gemm", "/g2/Gemm"]

    result = meet_budget(0.05, groups, evaluate)

    assert result.excluded == ("/g1/Gemm",)
    assert result.final.drop <= 0.05
    assert result.ranking[0].group == "/g1/Gemm" and result.ranking[0].cost > 0.3
    entry = result.to_dict()
    assert entry["kept_out_of_int8"][0]["group"] == "/g1/Gemm"
    assert entry["kept_out_of_int8"][0]["cost"] == pytest.approx(
        result.baseline.drop - result.final.drop
    )
    # the model that ships with that exclusion is legal and keeps /g1/Gemm in FP32
    quantized, details = quantize_model(
        model, _feeds(32, 0), quantizer="ort", exclude=result.excluded
    )
    assert details["excluded"] == ("/g1/Gemm",)
    assert errors(check_qdq(quantized)) == []
    producers = {o: n.op_type for n in quantized.graph.node for o in n.output}
    g1 = next(n for n in quantized.graph.node if n.name == "/g1/Gemm")
    assert all(producers.get(i) != "DequantizeLinear" for i in g1.input)


def test_unreachable_budget_fails_with_the_best_drop():
    def evaluate(kept):  # a model no exclusion can rescue (measured values stand in)
        from quantize.sensitivity import Measurement

        return Measurement(drop=0.2 - 0.05 * len(kept), agreement=0.8, mean_abs_error=1.0)

    with pytest.raises(EdgeBuildError, match=r"budget not met: drop 0\.1000 at best"):
        meet_budget(0.01, ["/a/", "/b/"], evaluate)
    with pytest.raises(EdgeBuildError, match="non-negative"):
        meet_budget(-0.1, ["/a/"], evaluate)


def test_a_needed_hint_is_kept_and_an_unneeded_one_goes_back_to_int8(evaluate):
    # hints seed the search: both seeded together meet the budget, then /g2/Gemm is
    # measured back in INT8 and stays there, because the budget still holds without it
    result = meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], evaluate, seed=("/g1/Gemm", "/g2/Gemm"))
    assert result.search == "seeded"
    assert result.excluded == ("/g1/Gemm",)
    assert result.readmitted == ["/g2/Gemm"]
    assert result.final.drop <= 0.05
    entry = result.to_dict()
    assert entry["readmitted_to_int8"] == ["/g2/Gemm"]
    # the cost reported for the kept group: the drop if it alone went back to INT8
    assert entry["kept_out_of_int8"][0]["cost"] > 0.3


def test_a_wrong_hint_does_not_decide(evaluate):
    # seeding only the harmless layer misses the budget, so the ranked search takes over
    result = meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], evaluate, seed=("/g2/Gemm",))
    assert result.search == "ranked"
    assert result.excluded == ("/g1/Gemm",)


def test_user_exclusions_are_never_pruned(evaluate):
    result = meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], evaluate, start=("/g2/Gemm",))
    assert result.excluded == ("/g1/Gemm",)
    assert "/g2/Gemm" not in result.readmitted


def test_evaluator_measures_every_tier_and_the_worst_counts():
    model = _outlier_model()
    evaluate = make_evaluator(
        model, _feeds(32, 0), _feeds(16, 1), quantizer="ort",
        extra_tiers={"hard": (_feeds(16, 2), None)},
    )  # fmt: skip
    measured = evaluate(())
    assert set(measured.tiers) == {"standard", "hard"}
    assert measured.drop == max(t["drop"] for t in measured.tiers.values())
    assert evaluate(()) is measured  # cached: one quantization per exclusion
    assert evaluate.calls == 1
    shipped, _ = evaluate.quantized(())
    assert errors(check_qdq(shipped)) == []


def test_met_budget_keeps_nothing(evaluate):
    result = meet_budget(1.0, ["/g1/Gemm", "/g2/Gemm"], evaluate)
    assert result.excluded == () and result.ranking == []


def test_bad_inputs_raise_clear_errors(tmp_path):
    model = _outlier_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(CalibrationError, match="needs calibration samples"):
        quantize_int8(path, tmp_path / "q.onnx", [], quantizer="ort")
    with pytest.raises(EdgeBuildError, match="unknown quantizer 'tensorrt'"):
        quantize_int8(path, tmp_path / "q.onnx", _feeds(4, 0), quantizer="tensorrt")
    with pytest.raises(EdgeBuildError, match="opset 17 but opset 16"):
        quantize_int8(path, tmp_path / "q.onnx", _feeds(4, 0), quantizer="ort", opset=16)
    with pytest.raises(EdgeBuildError, match="'/vit_pos/' matches no node"):
        resolve_nodes(model, ["/vit_pos/"])
    with pytest.raises(EdgeBuildError, match="not found"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "q.onnx", _feeds(4, 0))
    with pytest.raises(EdgeBuildError, match="needs validation samples"):
        make_evaluator(model, _feeds(4, 0), [], quantizer="ort")


def test_a_node_name_excludes_that_node_and_a_prefix_its_whole_scope():
    """`/fusion.0/Mul` (a group of one node) must not also take `/fusion.0/Mul_1` out of INT8."""
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["a"], name="/fusion.0/Mul"),
        helper.make_node("Mul", ["a", "x"], ["b"], name="/fusion.0/Mul_1"),
        helper.make_node("Relu", ["b"], ["y"], name="/head/Relu"),
    ]
    graph = helper.make_graph(
        nodes, "names", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert resolve_nodes(model, ["/fusion.0/Mul"]) == ("/fusion.0/Mul",)
    assert resolve_nodes(model, ["/fusion.0/Mul_1"]) == ("/fusion.0/Mul_1",)
    assert resolve_nodes(model, ["/fusion.0/"]) == ("/fusion.0/Mul", "/fusion.0/Mul_1")
    assert resolve_nodes(model, ["/fusion.0/Mu"]) == ("/fusion.0/Mul", "/fusion.0/Mul_1")


def _noise(requested):
    """Seeded input noise per draw that flips some FP32 decisions; logs the draws asked for."""

    def noisy(tier, feeds, draw):
        requested.append(draw)
        rng = np.random.default_rng(100 + draw)
        return [{"x": (f["x"] + rng.normal(scale=0.01, size=f["x"].shape)).astype(np.float32)}
                for f in feeds]  # fmt: skip

    return noisy


def _labelled_evaluator(requested, **kwargs):
    """The outlier model judged with labels FP32 gets all right, and a seeded noise floor."""
    from quantize.sensitivity import _run

    model, validation = _outlier_model(), _feeds(64, 1)
    labels = _run(model, validation).argmax(1)
    return make_evaluator(model, _feeds(32, 0), validation, quantizer="ort", labels=labels,
                          class_names="abcd", noise=_noise(requested), **kwargs)  # fmt: skip


def test_the_noise_floor_is_the_mean_of_several_recorded_draws():
    requested = []
    evaluate = _labelled_evaluator(requested, noise_draws=4)
    measured = evaluate(())
    draws = evaluate.floor_draws["standard"]
    assert requested == [0, 1, 2, 3]  # one pass per seeded draw
    assert len(draws) == 4 and len(set(draws)) > 1  # a single draw would be a lottery
    assert evaluate.noise_floor["standard"] == pytest.approx(np.mean(draws))
    tier = measured.tiers["standard"]
    assert tier["noise_floor"] == pytest.approx(np.mean(draws))
    assert tier["floor_shortfall"] == pytest.approx(np.mean(draws) - tier["agreement"])
    record = evaluate.floor_record()
    assert record["draws"] == 4 and record["tiers"]["standard"]["draws"] == draws
    evaluate(("/g2/Gemm",))
    assert requested == [0, 1, 2, 3]  # measured once per tier


def test_floor_draws_are_cached_by_model_data_and_noise(tmp_path):
    first, again, other = [], [], []
    measured = _labelled_evaluator(first, cache_dir=tmp_path, noise_id="test noise")
    measured(())
    cached = _labelled_evaluator(again, cache_dir=tmp_path, noise_id="test noise")
    cached(())
    assert again == [] and cached.floor_cached == {"standard": DEFAULT_NOISE_DRAWS}
    assert cached.floor_draws == measured.floor_draws
    assert cached.floor_record()["read_from_cache"] == {"standard": DEFAULT_NOISE_DRAWS}
    # another noise is another floor
    renamed = _labelled_evaluator(other, cache_dir=tmp_path, noise_id="other noise")
    renamed(())
    assert other == list(range(DEFAULT_NOISE_DRAWS)) and renamed.floor_cached == {}


def test_a_tier_that_keeps_every_decision_needs_no_floor():
    requested = []
    evaluate = _labelled_evaluator(requested)
    measured = evaluate(("/g1/Gemm",))
    assert measured.agreement == 1.0 and measured.meets(0.0)
    assert requested == [] and evaluate.floor_record()["not_measured"] == ["standard"]


def test_below_the_noise_floor_the_sensitive_layer_stays_out_even_within_the_uar_budget():
    """Issue 19's rule: agreement >= FP32's noise floor on every tier, whatever the budget."""
    requested = []
    evaluate = _labelled_evaluator(requested)
    baseline = evaluate(())
    # the budget alone would ship all-INT8 (as it did before the floor was enforced) ...
    assert baseline.drop <= 1.0 and not baseline.meets(1.0)
    assert baseline.shortfall > 0.5

    result = meet_budget(1.0, ["/g1/Gemm", "/g2/Gemm"], evaluate)

    # ... the floor keeps the planted layer out of INT8, and only it
    assert result.excluded == ("/g1/Gemm",)
    assert result.final.agreement >= evaluate.noise_floor["standard"]
    entry = result.to_dict()
    kept = entry["kept_out_of_int8"][0]
    assert kept["group"] == "/g1/Gemm" and kept["shortfall_cost"] > 0.5
    assert kept["floor_shortfall_after"] == 0.0
    assert entry["noise_floor"]["tiers"]["standard"]["draws"] == evaluate.floor_draws["standard"]
    assert entry["rule"].startswith("every tier: agreement >= FP32's noise floor")


def test_without_a_noise_model_the_budget_alone_judges():
    model = _outlier_model()
    evaluate = make_evaluator(model, _feeds(32, 0), _feeds(64, 1), quantizer="ort")
    assert evaluate.floor("standard") is None and evaluate.floor_record() is None
    assert meet_budget(1.0, ["/g1/Gemm", "/g2/Gemm"], evaluate).excluded == ()


def test_given_reference_logits_must_match_the_tier():
    with pytest.raises(EdgeBuildError, match="64 clips but 3 FP32 reference logits"):
        make_evaluator(_outlier_model(), _feeds(8, 0), _feeds(64, 1), quantizer="ort",
                       reference={"standard": np.zeros((3, 4), np.float32)})  # fmt: skip


def test_a_ranking_over_the_quantization_limit_fails_fast(evaluate):
    def measured(kept):  # an evaluator that cannot rank without quantizing
        return evaluate(kept)

    with pytest.raises(EdgeBuildError, match="ranking its 2 module groups would take"):
        meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], measured, max_quantizations=1)
    assert meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], measured, max_quantizations=8).excluded


def test_over_the_quantization_limit_the_bypass_ranking_finds_the_sensitive_layer():
    fresh = make_evaluator(_outlier_model(), _feeds(32, 0), _feeds(64, 1), quantizer="ort")
    result = meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], fresh, max_quantizations=2)
    assert result.search == "bypass-ranked"
    assert result.excluded == ("/g1/Gemm",) and result.final.drop <= 0.05
    assert fresh.calls <= 2  # the ranking itself re-quantized nothing
    assert result.ranking[0].group == "/g1/Gemm" and result.ranking[0].error_cost > 0
    assert result.to_dict()["search"] == "bypass-ranked"
    assert fresh.seconds["bypass_ranking"] > 0


def test_a_bypass_ranked_search_that_runs_out_of_quantizations_names_its_best():
    fresh = make_evaluator(_outlier_model(), _feeds(32, 0), _feeds(64, 1), quantizer="ort")
    with pytest.raises(EdgeBuildError, match="within 1 quantizations") as failed:
        meet_budget(0.05, ["/g1/Gemm", "/g2/Gemm"], fresh, max_quantizations=1)
    assert "cheap ranking of 2 groups" in str(failed.value)


def test_only_groups_holding_int8_are_ranked():
    model = _outlier_model()
    groups = candidate_groups(model)
    quantized, _ = quantize_model(model, _feeds(16, 0), quantizer="ort", exclude=("/g2/Gemm",))
    assert groups_reading_int8(groups, quantized) == ["/g1/Gemm"]


def test_a_refused_ranking_names_the_way_out_that_fits_the_failure():
    from quantize.sensitivity import Measurement

    def below_floor(kept):  # within the budget, under FP32's noise floor
        return Measurement(drop=0.0, agreement=0.96, mean_abs_error=0.1, shortfall=0.02)

    def over_budget(kept):
        return Measurement(drop=0.05, agreement=0.9, mean_abs_error=0.1)

    with pytest.raises(EdgeBuildError, match="--noise-floor-draws 0") as floor:
        meet_budget(0.01, ["/a/", "/b/", "/c/"], below_floor, max_quantizations=2)
    assert "Raise --max-accuracy-drop" not in str(floor.value)
    with pytest.raises(EdgeBuildError, match="Raise --max-accuracy-drop") as budget:
        meet_budget(0.01, ["/a/", "/b/", "/c/"], over_budget, max_quantizations=2)
    assert "--noise-floor-draws" not in str(budget.value)


def test_module_families_put_repeated_blocks_together():
    from quantize.sensitivity import module_families

    groups = ["/amnet2d_layers.0/amnet2d_layers.0.1/", "/amnet2d_layers.3/amnet2d_layers.3.0/",
              "/amnet2d_attn.0/Mul", "/fusion/Add", "/fusion/Mul_1", "/Concat", "/stem/conv/"]  # fmt: skip
    assert module_families(groups) == {
        "/amnet2d_layers.": groups[:2],
        "/amnet2d_attn.": ["/amnet2d_attn.0/Mul"],
        "/fusion/": ["/fusion/Add", "/fusion/Mul_1"],
        "/Concat": ["/Concat"],
        "/stem/": ["/stem/conv/"],
    }


class _SpreadError:
    """INT8 error spread over the six groups of one branch (`/branch.N/...`): the rule holds
    only with the whole branch out of INT8, which one group at a time cannot reach within
    the quantization limit. Measured values stand in for quantizations."""

    branch = [f"/branch.{i}/conv/" for i in range(6)]

    def __init__(self):
        self.calls = 0

    def _error(self, kept):
        out = set()
        for k in kept:
            out |= set(self.branch) if k == "/branch." else {k}
        return 0.06 - 0.01 * len(out & set(self.branch))

    def __call__(self, kept):
        from quantize.sensitivity import Measurement

        self.calls += 1
        drop = self._error(kept)
        return Measurement(drop=drop, agreement=1 - drop, mean_abs_error=drop)

    def bypass_ranking(self, groups, *, always=()):
        from quantize.sensitivity import GroupCost

        base = self._error(always)
        costs = [GroupCost(group=g, cost=0.0, error_cost=base - self._error((*always, g)),
                           kept=self((*always, g))) for g in groups]  # fmt: skip
        self.calls -= len(groups)  # a bypass is no quantization
        return sorted(costs, key=lambda c: -c.error_cost)


def test_the_bypass_search_takes_a_whole_branch_out_before_single_groups():
    evaluate = _SpreadError()
    groups = [*_SpreadError.branch, "/head/Gemm", "/stem/conv/"]
    result = meet_budget(0.005, groups, evaluate, max_quantizations=4)
    assert result.search == "bypass-ranked"
    assert result.excluded == ("/branch.",) and result.final.drop <= 0.005
    assert evaluate.calls <= 4
