"""Evaluation harness: metric definitions, and a small end-to-end sweep with its report."""

from __future__ import annotations

import numpy as np
import pytest

from egis.evaluate import summarize
from egis.methods import DEFAULT_METHODS
from egis.metrics import test_metrics as metrics_of
from egis.report import markdown_to_html


def test_metrics_follow_the_definitions():
    threshold = 0.90
    accuracy = np.array([0.95, 0.93, 0.91, 0.895, 0.85, 0.80, 0.92, 0.97, 0.60, 0.905])
    passed = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 1], dtype=bool)
    # truth (acc >= 0.90):   1  1  1  0  0  0  1  1  0  1
    m = metrics_of(passed, accuracy, threshold)
    assert m["TA"] == pytest.approx(60.0)        # chips 0,1,5,6,8,9 right
    assert m["YL"] == pytest.approx(20.0)        # good chips 2 and 7 failed
    assert m["TE"] == pytest.approx(20.0)        # bad chips 3 and 4 passed
    assert m["CTE"] == pytest.approx(10.0)       # chip 4: 0.85 < 0.89
    assert m["BTE"] == pytest.approx(10.0)       # chip 3: 0.895 in [0.89, 0.90)
    assert m["TE"] == pytest.approx(m["CTE"] + m["BTE"])
    assert m["TA"] + m["TE"] + m["YL"] == pytest.approx(100.0)


def test_summary_is_mean_and_std_over_seeds():
    rows = [{"variability": "typical", "cutoff": "A50", "k": 4, "seed": s, "method": "egis",
             "TA": ta, "TE": 0.0, "YL": 100 - ta, "CTE": 0.0, "BTE": 0.0} for s, ta in enumerate((90.0, 92.0, 94.0))]
    (entry,) = summarize(rows)
    assert entry["TA"] == pytest.approx(92.0) and entry["TA_std"] == pytest.approx(np.std([90, 92, 94]))
    assert entry["seeds"] == 3


def test_html_rendering_of_tables_images_and_code():
    page = markdown_to_html("# T\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n![x](fig.png)\n\n```\negis demo\n```\n", "T")
    assert "<table>" in page and "<th>a</th>" in page and "<td>&lt;2&gt;</td>" in page
    assert '<img alt="x" src="fig.png">' in page and "<pre>\negis demo\n</pre>" in page


def test_small_sweep_end_to_end(tmp_path, monkeypatch):
    """Tiny populations on the shipped digits model; a short schedule keeps it quick."""
    from egis.baselines import make_baseline
    from egis.report import build_report
    from egis.stimuli import load_stimuli
    from egis.sweep import SweepConfig, run_sweep
    from egis.synthesis import SynthesisConfig
    from egis.models.digits.train import split
    from egis.models.registry import reference_model_path
    from egis.toolkit.labels import Cutoff, chip_accuracies, write_labels
    from egis.toolkit.model import load_model
    from egis.toolkit.errors import DataError
    from egis.toolkit.population import Population, PopulationSpec

    model = load_model(reference_model_path("digits"))
    _, _, x, y = split()
    pops = tmp_path / "pops" / "extreme"
    pops.mkdir(parents=True)
    for name, seed in (("labelled", 1), ("evaluation", 2)):
        spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.5, "preset": "extreme"}, seed, 60)
        spec.save(pops / f"{name}.json")
        acc = chip_accuracies(Population(spec, model), x[:120], y[:120], progress=False)
        write_labels(pops / f"{name}_accuracy.csv", range(60), acc >= np.median(acc), acc)
    sid = tmp_path / "sid"
    make_baseline(model, "untrained", sid, SynthesisConfig(images=64, seed=3, batch=32))
    config = SweepConfig(ks=(2,), cutoffs=("A50",), seeds=(0,), baseline_ks=(2,), trials=2, images=48,
                         schedule={"t_end": 1.5})
    # the same set stands in for the variants' (the sweep only reads their images)
    stimuli = load_stimuli(model, sid, x, 48, seed=0, work_dir=tmp_path / "out",
                           variant_sids={"egis-va": sid, "egis-tv": sid})
    assert set(stimuli) == {"egis", "egis-va", "egis-tv", "egis-both", "gaussian", "uniform", "untrained", "real"}
    np.testing.assert_array_equal(stimuli.pop("egis-both"), np.concatenate([stimuli["egis"], stimuli["egis-tv"]]))
    assert not {"egis-va", "egis-tv"} & set(load_stimuli(model, sid, x, 48, seed=0, work_dir=tmp_path / "out2"))
    rows, timings, showcase = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, tmp_path / "out",
                                        config, progress=False, log=lambda line: None)
    assert sorted(r["method"] for r in rows) == sorted(DEFAULT_METHODS)
    for row in rows:
        assert row["TA"] + row["TE"] + row["YL"] == pytest.approx(100.0)
        assert row["threshold"] == Cutoff.parse("A50").threshold(
            np.loadtxt(pops / "labelled_accuracy.csv", delimiter=",", skiprows=1)[:, 2])
    # Two passes: the evaluation chips were measured on the chosen images only, and scoring
    # the recorded choices on responses to every image gives the very same rows.
    import json as _json

    import egis.sweep as sweep_module
    from egis.evaluate import Choice, score_choices
    from egis.responses import chip_responses

    total = sum(len(images) for images in stimuli.values())
    eval_sidecars = list((tmp_path / "out" / "cache").glob("evaluation-*.json"))
    measured = sum(_json.loads(sidecar.read_text())["shape"][1] for sidecar in eval_sidecars)
    assert 0 < measured <= 2 * len(DEFAULT_METHODS) < total
    recorded = _json.loads((tmp_path / "out" / "choices.json").read_text())["choices"]
    choices = [Choice.from_dict(recorded[f"extreme|A50|2|0|{m}"]) for m in DEFAULT_METHODS]
    full = {name: chip_responses(model, pops / f"{name}.json", pops / f"{name}_accuracy.csv", stimuli,
                                 tmp_path / "full", progress=False) for name in ("labelled", "evaluation")}
    again_rows = score_choices(full["labelled"], full["evaluation"], "A50", 2, 0, choices, config.booster)
    metrics = ("TA", "TE", "YL", "CTE")
    by_method = {r["method"]: r for r in rows}
    for row in again_rows:
        assert {m: row[m] for m in metrics} == {m: by_method[row["method"]][m] for m in metrics}
    # An escape budget held at a confidence level only moves each classifier's threshold up:
    # its chips pass a subset of the mean rule's, so no more escapes and no less yield loss.
    from egis.methods import get_method

    at_mean = score_choices(full["labelled"], full["evaluation"], "A50", 2, 0, choices, config.booster,
                            max_escape=0.2)
    held = score_choices(full["labelled"], full["evaluation"], "A50", 2, 0, choices, config.booster,
                         max_escape=0.2, escape_confidence=0.9)
    for mean_row, held_row in zip(at_mean, held):
        assert held_row["escape_confidence"] == 0.9 and np.isnan(mean_row["escape_confidence"])
        if get_method(held_row["method"]).detector == "classifier":
            assert held_row["TE"] <= mean_row["TE"] and held_row["YL"] >= mean_row["YL"]
    assert any(h["YL"] > m["YL"] for m, h in zip(at_mean, held)), "the level changed no threshold"
    # The hindsight figure: the chosen threshold is one of those it searches, so wherever the
    # chosen one kept within the budget, the least yield loss is no more than the chosen one's;
    # the accuracy regressor has no P(pass) to search, and rows without a budget have none.
    for row in at_mean:
        if get_method(row["method"]).detector != "classifier":
            assert np.isnan(row["YL_at_budget"])
        elif row["CTE"] <= 20.0:
            assert row["YL_at_budget"] <= row["YL"] + 1e-9
    assert all(np.isnan(row["YL_at_budget"]) for row in again_rows)
    assert any(not np.isnan(row["YL_at_budget"]) for row in at_mean)
    # An interrupted sweep (rows lost, choices kept) scores the recorded choices, annealing nothing.
    (tmp_path / "out" / "results.csv").unlink()

    def no_annealing(*_args, **_kwargs):
        raise AssertionError("choices.json was not reused")
    monkeypatch.setattr(sweep_module, "choose_sets", no_annealing)
    resumed, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, tmp_path / "out", config,
                              progress=False, log=lambda line: None)
    assert sorted((r["method"], r["TA"]) for r in resumed) == sorted((r["method"], r["TA"]) for r in rows)
    # Another evaluation of the same chips sharing this one's response folder (egis evaluate
    # --responses) simulates nothing, and its sweep.json says where its responses are.
    import shutil

    import egis.responses as responses_module
    from egis.responses import responses_dir

    def no_simulation(*_args, **_kwargs):
        raise AssertionError("the shared responses were simulated again")
    monkeypatch.setattr(responses_module, "population_logits", no_simulation)
    sharing = tmp_path / "sharing"
    sharing.mkdir()
    shutil.copy(tmp_path / "out" / "choices.json", sharing / "choices.json")
    shared_rows, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, sharing, config,
                                  progress=False, log=lambda line: None, cache_dir=tmp_path / "out" / "cache")
    assert sorted((r["method"], r["TA"]) for r in shared_rows) == sorted((r["method"], r["TA"]) for r in rows)
    assert responses_dir(sharing).resolve() == (tmp_path / "out" / "cache").resolve()
    assert not (sharing / "cache").exists()
    monkeypatch.undo()
    # The chance level (--chance): random K-sets of every set the classifier methods chose
    # from, scored as choices are, and each choice placed against its own set's level.
    import csv as _csv
    import dataclasses

    from egis.chance import chance_level, random_sets
    from egis.methods import get_method

    with_chance = tmp_path / "with_chance"
    with_chance.mkdir()
    shutil.copy(tmp_path / "out" / "choices.json", with_chance / "choices.json")
    chance_rows, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, with_chance,
                                  dataclasses.replace(config, chance=5), progress=False, log=lambda line: None,
                                  cache_dir=tmp_path / "out" / "cache")
    table = list(_csv.DictReader(open(with_chance / "chance.csv")))
    levels = {r["stimulus"]: r for r in table if r["method"] == "chance"}
    assert set(levels) == {get_method(m).stimulus for m in DEFAULT_METHODS if get_method(m).detector == "classifier"}
    for name, level in levels.items():
        again = chance_level(full["labelled"], full["evaluation"], name, "A50", 2, random_sets(len(stimuli[name]), 2, 5),
                             config.booster)
        assert float(level["TA"]) == pytest.approx(again.ta, abs=1e-4) and int(level["sets"]) == 5
    placed = [r for r in table if r["method"] != "chance"]
    by_row = {r["method"]: r for r in chance_rows}
    assert {r["method"] for r in placed} == {m for m in DEFAULT_METHODS if get_method(m).detector == "classifier"}
    for r in placed:
        level = float(levels[r["stimulus"]]["TA"])
        assert float(r["TA"]) == pytest.approx(by_row[r["method"]]["TA"], abs=1e-4)
        assert float(r["minus_chance"]) == pytest.approx(float(r["TA"]) - level, abs=1e-3)
        assert 0 <= float(r["percentile"]) <= 100
    # Rows resumed without their choices (e.g. choices.json made before a candidate was added):
    # each row is placed against its method's own set; egis-select's set is unknown, so not.
    resumed_only = tmp_path / "rows_only"
    resumed_only.mkdir()
    for name in ("results.csv", "sweep.json"):
        shutil.copy(with_chance / name, resumed_only / name)
    (resumed_only / "choices.json").write_text(_json.dumps({"basis": {}, "choices": {}}))   # another basis
    said: list[str] = []
    run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, resumed_only, dataclasses.replace(config, chance=5),
              progress=False, log=said.append, cache_dir=tmp_path / "out" / "cache")
    assert not [line for line in said if "choosing again" in line], "nothing was left to choose"
    again_table = list(_csv.DictReader(open(resumed_only / "chance.csv")))
    assert [r for r in again_table if r["method"] == "chance"] == [r for r in table if r["method"] == "chance"]
    assert ({r["method"] for r in again_table if r["method"] != "chance"}
            == {r["method"] for r in placed} - {"egis-select"})
    chance_report = build_report(model, "digits", sid, tmp_path / "pops", ["extreme"], chance_rows, {}, {}, stimuli,
                                 with_chance, dataclasses.replace(config, chance=5), "egis evaluate --chance 5").read_text()
    assert "### Against chance (K = 2)" in chance_report and "chance: egis (5 random sets)" in chance_report
    # The settings' annealing on two worker processes chooses exactly what one process does.
    from egis.sweep import ChoiceTask
    from egis.toolkit.runner import LocalRunner, ProcessRunner

    task = ChoiceTask({"extreme": full["labelled"]}, [("extreme", "A50", 2, 0, ["egis", "uniform"]),
                                                      ("extreme", "A50", 2, 1, ["egis"])], config)
    chosen = {name: [[(c.method, c.stimulus, c.indices, c.reward) for c in sets]
                     for _, (sets, _, _) in runner.map(task, range(2))]
              for name, runner in (("local", LocalRunner()), ("processes", ProcessRunner(2, chunk=1)))}
    assert chosen["processes"] == chosen["local"]
    assert chosen["local"][0][0][2] == recorded["extreme|A50|2|0|egis"]["indices"]
    # A Ray worker gets the task pickled (fork does not): it must survive that, with one thread.
    import pickle

    shipped = pickle.loads(pickle.dumps(task.for_worker()))
    assert shipped.jobs == 1 and task.jobs is None
    assert [(c.method, c.indices) for c in shipped.run(1)[0]] == [(m, ix) for m, _, ix, _ in chosen["local"][1]]
    # Resuming finds every row done and computes nothing new.
    again, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, tmp_path / "out", config,
                            progress=False, log=lambda line: None)
    assert len(again) == len(rows)
    # ... but not when the stimuli (or model, or populations) behind those rows changed.
    changed = dict(stimuli, egis=stimuli["egis"][::-1].copy())
    with pytest.raises(DataError, match="other stimuli"):
        run_sweep(model, tmp_path / "pops", ["extreme"], changed, tmp_path / "out", config,
                  progress=False, log=lambda line: None)
    import dataclasses

    with pytest.raises(DataError, match="another --max-escape"):
        run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, tmp_path / "out",
                  dataclasses.replace(config, max_escape=0.2, escape_confidence=0.9),
                  progress=False, log=lambda line: None)
    report = build_report(model, "digits", sid, tmp_path / "pops", ["extreme"], rows, timings, showcase,
                          stimuli, tmp_path / "out", config, "egis evaluate ...")
    text = report.read_text()
    assert "Table II analogue" in text and "dataset-aware [6] (regressor)" in text
    for figure in ("accuracy_extreme.png", "fig5_extreme.png", "reward_extreme.png", "cid_extreme.png"):
        assert (tmp_path / "out" / figure).stat().st_size > 1000
    assert (tmp_path / "out" / "report.html").exists()


def test_one_pass_labelling_fills_the_evaluation_response_cache(tmp_path, monkeypatch) -> None:
    """egis.models.populations --responses-for: accuracies as chip_accuracies gives them, and a
    response cache that chip_responses finds and that equals a fresh computation."""
    from pathlib import Path

    import egis.responses as experiment
    from egis.models.digits.train import split
    from egis.models.populations import _label_and_respond
    from egis.toolkit.labels import chip_accuracies, write_labels
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    digits = Path(__file__).resolve().parents[1] / "models" / "digits" / "model.onnx"
    model = load_model(digits)
    spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.3, "preset": "typical"}, 1, 5,
                          model_path=str(digits))
    pop_path = tmp_path / "typical" / "labelled.json"
    pop_path.parent.mkdir()
    spec.save(pop_path)
    x, y = split()[2:]
    x, y = x[:40], y[:40]
    rng = np.random.default_rng(0)
    stimuli = {"b": rng.random((6, 1, 8, 8), dtype=np.float32),
               "a": rng.random((8, 1, 8, 8), dtype=np.float32)}
    acc = _label_and_respond(Population(spec, model), pop_path, x, y, stimuli, tmp_path / "cache")
    np.testing.assert_array_equal(acc, chip_accuracies(Population(spec, model), x, y, progress=False))
    accuracy_csv = pop_path.parent / "labelled_accuracy.csv"
    write_labels(accuracy_csv, range(5), acc >= np.median(acc), acc)
    fresh = experiment.chip_responses(model, pop_path, accuracy_csv, stimuli, tmp_path / "fresh", progress=False)

    def no_recompute(*_args, **_kwargs):
        raise AssertionError("the one-pass cache was not found")
    monkeypatch.setattr(experiment, "population_logits", no_recompute)
    cached = experiment.chip_responses(model, pop_path, accuracy_csv, stimuli, tmp_path / "cache", progress=False)
    for name in stimuli:
        assert cached.logits[name].shape == (5, len(stimuli[name]), 10)
        np.testing.assert_allclose(cached.logits[name], fresh.logits[name], rtol=1e-5, atol=1e-5)
    assert not list((tmp_path / "cache").glob("*.tmp")), "a scratch or temporary file was left behind"


def test_egis_select_takes_the_candidate_with_the_best_held_out_score():
    """Two data-free sets: one whose images carry no information about the chips, one with a
    few planted informative images. egis-select must pick the informative one by held-out
    labelled chips alone, and then test exactly as that candidate's own method does."""
    from egis.compaction import BoosterConfig, held_out_accuracy
    from egis.evaluate import evaluate_setting
    from egis.responses import ChipResponses

    rng = np.random.default_rng(0)
    d, n, m = 240, 60, 4
    severity = rng.random(d).astype(np.float32)
    direction = rng.normal(0, 1, (n, m)).astype(np.float32)
    sens = np.full(n, 0.02, np.float32)
    sens[rng.choice(n, 5, replace=False)] = 2.0
    informative = (rng.normal(0, 3, (n, m))[None] + severity[:, None, None] * sens[None, :, None] * direction[None]
                   + rng.normal(0, 0.3, (d, n, m))).astype(np.float32)
    blind = rng.normal(0, 3, (d, n, m)).astype(np.float32)
    accuracy = 1.0 - severity
    labelled = ChipResponses({"egis": blind[:160], "uniform": informative[:160]}, accuracy[:160])
    evaluation = ChipResponses({"egis": blind[160:], "uniform": informative[160:]}, accuracy[160:])
    config = BoosterConfig(max_iter=10)
    annealed = {}
    rows = evaluate_setting(labelled, evaluation, "A50", 3, 0, ["egis", "uniform", "egis-select"], 3, config,
                            schedule={"t_end": 0.5}, on_compaction=annealed.__setitem__)
    by = {r["method"]: r for r in rows}
    assert by["egis-select"]["choice"] == "uniform/anneal" and by["egis"]["choice"] == ""
    assert by["egis-select"]["TA"] == by["uniform"]["TA"] > by["egis"]["TA"] + 10
    labels = (labelled.accuracy >= by["egis"]["threshold"]).astype(np.int64)
    held_out = held_out_accuracy(labelled.logits["uniform"], labels, annealed["uniform"].indices, 0, config)
    assert by["egis-select"]["reward"] == held_out
    # the held-out folds are not the annealing's: its own (maximised) reward is another number
    assert held_out != by["uniform"]["reward"]


def test_egis_select_takes_the_prior_set_without_its_own_method_evaluated():
    """--sid-tv with egis-select but no egis-tv method: the prior's set is still a candidate,
    and a better one is taken; without the set egis-select falls back to the SID's candidates."""
    from egis.compaction import BoosterConfig
    from egis.evaluate import evaluate_setting
    from egis.responses import ChipResponses

    from planted import planted_responses

    rng = np.random.default_rng(1)
    informative, severity, _ = planted_responses(rng, d=240, n=60, m=4, informative=5)
    blind = rng.normal(0, 3, informative.shape).astype(np.float32)
    accuracy = 1.0 - severity
    config = BoosterConfig(max_iter=10)
    with_prior = [ChipResponses({"egis": blind[part], "egis-tv": informative[part]}, accuracy[part])
                  for part in (slice(0, 160), slice(160, None))]
    rows = evaluate_setting(*with_prior, "A50", 3, 0, ["egis", "egis-select"], 3, config, schedule={"t_end": 0.5})
    assert {r["method"]: r["choice"] for r in rows}["egis-select"] == "egis-tv/anneal"
    without = [ChipResponses({"egis": blind[part]}, accuracy[part]) for part in (slice(0, 160), slice(160, None))]
    rows = evaluate_setting(*without, "A50", 3, 0, ["egis", "egis-select"], 3, config, schedule={"t_end": 0.5})
    assert {r["method"]: r["choice"] for r in rows}["egis-select"].startswith("egis/")


def test_responses_on_a_subset_of_images_answer_only_for_those_images():
    from egis.responses import ChipResponses
    from egis.toolkit.errors import DataError
    from egis.toolkit.signatures import signatures

    full = np.arange(3 * 10 * 2, dtype=np.float32).reshape(3, 10, 2)
    held = np.array([1, 4, 7])
    subset = ChipResponses({"egis": full[:, held]}, np.zeros(3), columns={"egis": held})
    np.testing.assert_array_equal(subset.signatures("egis", [7, 1]), signatures(full, [7, 1]))
    np.testing.assert_array_equal(ChipResponses({"egis": full}, np.zeros(3)).signatures("egis", [7, 1]),
                                  signatures(full, [7, 1]))
    for missing in ([7, 2], [9], [0]):
        with pytest.raises(DataError, match="was not measured"):
            subset.signatures("egis", missing)
    with pytest.raises(DataError, match="uniform stimuli"):
        subset.signatures("uniform", [1])


def test_choices_refuse_labelled_responses_on_a_subset_of_images():
    """The labelled chips' logits are indexed by position in the full stimulus set."""
    from egis.compaction import BoosterConfig
    from egis.evaluate import choose_sets
    from egis.responses import ChipResponses
    from egis.toolkit.errors import DataError

    logits = np.random.default_rng(0).normal(size=(20, 3, 2)).astype(np.float32)
    subset = ChipResponses({"egis": logits}, np.linspace(0, 1, 20), columns={"egis": np.array([2, 5, 9])})
    with pytest.raises(DataError, match="every image"):
        choose_sets(subset, "A50", 2, 0, ["egis-random"], 1, BoosterConfig())


def test_the_report_says_when_accuracies_come_from_adaptive_labelling():
    from egis.report import adaptive_note

    meta = {"count": 1000, "images": 10000, "adaptive": {
        "confidence": 0.995, "first": 500, "exact_chips": 412, "images_saved": 0.5321, "margin": 0.01,
        "decided_at": {"A50": 0.6071, "A60": 0.55, "A70": 0.49}}}
    note = adaptive_note("Evaluation", meta)
    assert "412 of 1000 chips measured on all 10000 images" in note
    assert "0.4900, 0.5500, 0.6071 and each minus 0.01" in note and "53.2%" in note
    assert adaptive_note("Labelled", {"count": 10, "images": 100}) == ""


def test_a_sweep_resumes_only_at_the_same_escape_confidence(tmp_path):
    from egis.sweep import _check_resume
    from egis.toolkit.errors import DataError
    from egis.toolkit.io import write_json

    recorded = {"model_sha256": "m", "populations": "p", "stimuli": "s", "max_escape": 0.01}
    write_json(tmp_path / "sweep.json", {"provenance": recorded})   # written before the option: no level
    rows = [{"method": "egis"}]
    _check_resume(tmp_path, rows, {**recorded, "escape_confidence": None})
    with pytest.raises(DataError, match="another --escape-confidence"):
        _check_resume(tmp_path, rows, {**recorded, "escape_confidence": 0.75})
