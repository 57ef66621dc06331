"""egis-distil: a teacher on every image labels unlabelled chips; the K-image test learns from them."""

from __future__ import annotations

import numpy as np
import pytest

from egis.compaction import BoosterConfig
from egis.distil import AgreementReward, Teacher, distil_compact, pseudo_labels, student_rows, teacher_rows
from egis.toolkit.errors import DataError
from egis.toolkit.signatures import signatures

from planted import planted_responses


def spread_signal(rng: np.random.Generator, d: int, n: int = 40, m: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Responses where every image carries a weak share of each chip's severity: no few images
    tell chips apart well, all of them together do. Labels: severity below 0.5 passes."""
    severity = rng.random(d).astype(np.float32)
    direction = rng.normal(0, 1, (n, m)).astype(np.float32)
    logits = (rng.normal(0, 3, (n, m))[None] + 0.4 * severity[:, None, None] * direction[None]
              + rng.normal(0, 0.5, (d, n, m))).astype(np.float32)
    return logits, (severity < 0.5).astype(np.int64)


def test_the_teacher_separates_chips_better_than_a_few_images_can():
    logits, labels = spread_signal(np.random.default_rng(0), 900)
    train, held = slice(0, 500), slice(500, None)
    teacher = Teacher().fit(logits[train], labels[train])
    teacher_accuracy = np.mean(teacher.predict(logits[held]) == labels[held])
    few = BoosterConfig().make().fit(signatures(logits[train], [0, 1, 2, 3]), labels[train])
    few_accuracy = np.mean(few.predict(signatures(logits[held], [0, 1, 2, 3])) == labels[held])
    assert teacher_accuracy > 0.85 and teacher_accuracy > few_accuracy + 0.1, (teacher_accuracy, few_accuracy)


def test_the_agreement_reward_finds_the_informative_images_from_few_labelled_chips():
    """40 labelled chips are too few for the seed's 80/20 splits to rank sets; the teacher's
    labels of 600 unlabelled chips are not. The choice must hold a planted image, and score far
    above a set of uninformative ones."""
    rng = np.random.default_rng(3)
    logits, severity, hot = planted_responses(rng, d=640, n=60, m=4, informative=4)
    labels = (severity < 0.5).astype(np.int64)
    labelled, unlabelled = logits[:40], logits[40:]
    result = distil_compact(labelled, labels[:40], unlabelled, 2, seed=0, config=BoosterConfig(max_iter=10))
    assert set(result.indices) & hot, (result.indices, hot)
    assert result.settings["unlabelled_chips"] == 600 and result.evaluations > 10
    # the reward is agreement with the teacher over the unlabelled chips
    pseudo = pseudo_labels(labelled, labels[:40], unlabelled)
    reward = AgreementReward(labelled, labels[:40], unlabelled, pseudo, BoosterConfig(max_iter=10))
    assert reward(result.indices) == pytest.approx(result.reward)
    blind = [i for i in range(60) if i not in hot][:2]
    assert result.reward > reward(blind) + 0.2, (result.reward, reward(blind))
    assert np.mean(pseudo == labels[40:]) >= 0.85


def test_the_student_learns_from_the_teacher_labelled_chips():
    """Each image carries a weak share of the signal, so a detector on 8 of them fitted on 100
    labelled chips is short of data; the student, fitted on them plus 1000 teacher-labelled
    chips, tests held-out chips better."""
    logits, labels = spread_signal(np.random.default_rng(0), 1700)
    labelled, unlabelled, held = logits[:100], logits[100:1100], logits[1100:]
    indices = list(range(8))
    config = BoosterConfig()
    alone = config.make().fit(signatures(labelled, indices), labels[:100])
    rows, row_labels = student_rows(labelled, labels[:100], unlabelled,
                                    pseudo_labels(labelled, labels[:100], unlabelled), indices)
    assert rows.shape == (1100, 8, 4) and np.array_equal(row_labels[:100], labels[:100])
    student = config.make().fit(signatures(rows, range(8)), row_labels)
    truth = labels[1100:]
    alone_accuracy = np.mean(alone.predict(signatures(held, indices)) == truth)
    student_accuracy = np.mean(student.predict(signatures(held, indices)) == truth)
    assert student_accuracy > alone_accuracy + 0.04, (student_accuracy, alone_accuracy)


def test_the_budget_folds_teacher_sees_only_its_training_chips():
    rng = np.random.default_rng(2)
    logits, severity, _ = planted_responses(rng, d=300, n=20, m=3, informative=4)
    labels = (severity < 0.5).astype(np.int64)
    labelled, unlabelled = logits[:100], logits[100:]
    extra = teacher_rows(labelled, unlabelled, [1, 5])
    train = np.arange(0, 80)
    rows, pseudo = extra(train, labels[train])
    assert rows.shape == (200, 2, 3)
    np.testing.assert_array_equal(pseudo, Teacher().fit(labelled[train], labels[train]).predict(unlabelled))
    flipped = labels.copy()
    flipped[80:] = 1 - flipped[80:]          # the held-out chips' labels cannot matter
    np.testing.assert_array_equal(extra(train, flipped[train])[1], pseudo)


def test_distillation_refuses_responses_it_cannot_use():
    logits, labels = spread_signal(np.random.default_rng(1), 60, n=10)
    with pytest.raises(DataError, match="unlabelled chips"):
        distil_compact(logits, labels, None, 2)
    with pytest.raises(DataError, match="same images"):
        distil_compact(logits, labels, logits[:, :5], 2)
    with pytest.raises(DataError, match="both passing and failing"):
        Teacher().fit(logits, np.ones(60, np.int64))


def test_a_sweep_runs_egis_distil_on_an_unlabelled_population(tmp_path):
    """egis evaluate with <variability>/unlabelled.json: the student's row equals a rebuild by
    hand; the budget row too; the unlabelled chips' spec is provenance; missing or reused
    unlabelled chips are refused before any work."""
    import dataclasses
    import json

    from egis.baselines import make_baseline
    from egis.evaluate import score_choices, Choice
    from egis.models.digits.train import split
    from egis.models.registry import reference_model_path
    from egis.responses import chip_responses, unlabelled_responses
    from egis.stimuli import load_stimuli
    from egis.sweep import SweepConfig, run_sweep
    from egis.synthesis import SynthesisConfig
    from egis.toolkit.labels import chip_accuracies, write_labels
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    model = load_model(reference_model_path("digits"))
    _, _, x, y = split()
    pops = tmp_path / "pops" / "extreme"
    pops.mkdir(parents=True)
    params = {"sigma_tot": 0.5, "preset": "extreme"}
    for name, seed in (("labelled", 1), ("evaluation", 2)):
        spec = PopulationSpec(model.sha256, "generic", params, seed, 60)
        spec.save(pops / f"{name}.json")
        acc = chip_accuracies(Population(spec, model), x[:120], y[:120], progress=False)
        write_labels(pops / f"{name}_accuracy.csv", range(60), acc >= np.median(acc), acc)
    sid = tmp_path / "sid"
    make_baseline(model, "untrained", sid, SynthesisConfig(images=48, seed=3, batch=24))
    stimuli = load_stimuli(model, sid, x, 40, seed=0, work_dir=tmp_path / "work")
    config = SweepConfig(ks=(2,), cutoffs=("A50",), seeds=(0,), baseline_ks=(2,), trials=2, images=40,
                         schedule={"t_end": 1.5}, methods=("egis", "egis-distil"))
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no unlabelled.json"):
        run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, out, config, progress=False, log=lambda line: None)
    PopulationSpec(model.sha256, "generic", params, 1, 200).save(pops / "unlabelled.json")
    with pytest.raises(DataError, match="seed"):
        run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, out, config, progress=False, log=lambda line: None)
    PopulationSpec(model.sha256, "generic", params, 3, 200).save(pops / "unlabelled.json")
    rows, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, out, config, progress=False,
                           log=lambda line: None)
    assert sorted(r["method"] for r in rows) == ["egis", "egis-distil"]
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["provenance"]["populations"]["extreme/unlabelled"]["spec"] == PopulationSpec.load(
        pops / "unlabelled.json").sha256()
    recorded = json.loads((out / "choices.json").read_text())["choices"]
    choice = Choice.from_dict(recorded["extreme|A50|2|0|egis-distil"])
    labelled = chip_responses(model, pops / "labelled.json", pops / "labelled_accuracy.csv", stimuli, tmp_path / "c")
    evaluation = chip_responses(model, pops / "evaluation.json", pops / "evaluation_accuracy.csv", stimuli,
                                tmp_path / "c")
    labelled.unlabelled = unlabelled_responses(model, pops / "unlabelled.json", {"egis": stimuli["egis"]},
                                               tmp_path / "c", progress=False)
    assert labelled.unlabelled["egis"].shape == (200, 40, 10)
    again = score_choices(labelled, evaluation, "A50", 2, 0, [choice], config.booster)
    by = {r["method"]: r for r in rows}
    assert again[0]["TA"] == by["egis-distil"]["TA"] and again[0]["CTE"] == by["egis-distil"]["CTE"]
    budget = score_choices(labelled, evaluation, "A50", 2, 0, [choice], config.booster, max_escape=0.05)
    assert budget[0]["TE"] <= again[0]["TE"] and budget[0]["max_escape"] == 0.05
    budget_out = tmp_path / "budget"
    budget_rows, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, budget_out,
                                  dataclasses.replace(config, max_escape=0.05), progress=False,
                                  log=lambda line: None, cache_dir=out / "cache")
    assert {r["method"]: r["TA"] for r in budget_rows}["egis-distil"] == budget[0]["TA"]
    # the chance level of egis-distil's rows is scored with its own detector, the student
    import csv

    from egis.chance import chance_level, random_sets

    chance_out = tmp_path / "chance"
    chance_out.mkdir()
    (chance_out / "choices.json").write_bytes((out / "choices.json").read_bytes())
    chance_config = dataclasses.replace(config, chance=4)
    chance_rows, _, _ = run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, chance_out, chance_config,
                                  progress=False, log=lambda line: None, cache_dir=out / "cache")
    table = list(csv.DictReader(open(chance_out / "chance.csv")))
    levels = {r["detector"]: r for r in table if r["method"] == "chance"}
    assert set(levels) == {"classifier", "student"}
    student = chance_level(labelled, evaluation, "egis", "A50", 2, random_sets(40, 2, 4), config.booster,
                           method="egis-distil")
    assert float(levels["student"]["TA"]) == pytest.approx(student.ta, abs=1e-4)
    placed = {r["method"]: r for r in table if r["method"] != "chance"}
    assert placed["egis-distil"]["detector"] == "student" and placed["egis"]["detector"] == "classifier"
    assert float(placed["egis-distil"]["minus_chance"]) == pytest.approx(
        {r["method"]: r["TA"] for r in chance_rows}["egis-distil"] - student.ta, abs=1e-3)
    from egis.report import build_report

    text = build_report(model, "digits", sid, tmp_path / "pops", ["extreme"], chance_rows, {}, {}, stimuli, chance_out,
                        chance_config, "egis evaluate ...").read_text()
    assert "Unlabelled chips (egis-distil's teacher labels them): 200 chips" in text and "seed 3" in text
    assert "chance: egis, student detector (4 random sets)" in text
    # under the budget the report shows each detector's yield loss at the budget in hindsight
    budget_config = dataclasses.replace(config, max_escape=0.05)
    budget_text = build_report(model, "digits", sid, tmp_path / "pops", ["extreme"], budget_rows, {}, {}, stimuli,
                               budget_out, budget_config, "egis evaluate ...").read_text()
    assert "At the 5.00% escape budget" not in text and "At the 5.00% escape budget" in budget_text
    distilled = {r["method"]: r for r in budget_rows}["egis-distil"]
    assert f"{distilled['YL_at_budget']:.2f} ± 0.00 ({distilled['CTE']:.1f} / {distilled['YL']:.1f})" in budget_text
    # adding or dropping egis-distil on a finished run is named as such
    with pytest.raises(DataError, match="other unlabelled chips, or with none"):
        run_sweep(model, tmp_path / "pops", ["extreme"], stimuli, out, dataclasses.replace(config, methods=("egis",)),
                  progress=False, log=lambda line: None)
