"""bench/bench_budget_ranking.py reads the older one-file response caches of the seed-protocol
runs (every stimulus set in one file, the evaluation chips' holding only the images the run
chose). Its column placement is inferred, so it is tested here on a synthetic folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_budget_ranking import older_layout, responses  # noqa: E402

from egis.toolkit.population import PopulationSpec  # noqa: E402


def _old_cache(folder: Path, stem: str, spec: PopulationSpec, names: list[str], counts: list[int],
               values: np.ndarray, key: str) -> None:
    meta = {"chips": list(range(values.shape[0])), "counts": counts, "names": names, "key": key,
            "population": spec.sha256(), "shape": list(values.shape)}
    (folder / f"{stem}-{key}.json").write_text(json.dumps(meta))
    np.save(folder / f"{stem}-{key}.npy", values)


@pytest.fixture()
def old_run(tmp_path):
    """A run whose labelled chips saw 6 egis + 8 real images, and whose evaluation chips saw the
    3 real images the run chose (plus a decoy cache of another count)."""
    pops = tmp_path / "pops" / "typical"
    pops.mkdir(parents=True)
    specs = {}
    for seed, name in ((1, "labelled"), (2, "evaluation")):
        specs[name] = PopulationSpec("0" * 64, "generic", {"preset": "typical"}, seed=seed, count=4)
        specs[name].save(pops / f"{name}.json")
        (pops / f"{name}_accuracy.csv").write_text("dut,pass,accuracy\n" + "".join(f"{c},{c // 2},0.{5 + c}\n" for c in range(4)))
    evaluation = tmp_path / "eval_typical"
    (evaluation / "cache").mkdir(parents=True)
    rng = np.random.default_rng(0)
    labelled = rng.normal(size=(4, 14, 3)).astype(np.float32)
    _old_cache(evaluation / "cache", "labelled", specs["labelled"], ["egis", "real"], [6, 8], labelled, "aaaa")
    chosen = [1, 4, 6]                                   # the union of the real images the run chose
    held = labelled[:, 6 + np.asarray(chosen)] + 10.0    # other chips' responses, marked by +10
    _old_cache(evaluation / "cache", "evaluation", specs["evaluation"], ["real"], [3], held, "bbbb")
    _old_cache(evaluation / "cache", "evaluation", specs["evaluation"], ["real"], [5],
               rng.normal(size=(4, 5, 3)).astype(np.float32), "cccc")
    choices = {"typical|A50|4|0|da-classifier": {"stimulus": "real", "indices": [4, 1]},
               "typical|A50|4|1|da-classifier": {"stimulus": "real", "indices": [6, 4]},
               "extreme|A50|4|0|da-classifier": {"stimulus": "real", "indices": [0, 2]}}   # another variability
    (evaluation / "sweep.json").write_text(json.dumps({"config": {}}))
    return evaluation, pops, choices, labelled, held


def test_older_layout_places_the_chosen_columns(old_run):
    evaluation, pops, choices, labelled, held = old_run
    out_l, out_e = responses(evaluation, pops, {"real"}, choices, "typical", distilled=False)
    assert np.array_equal(out_l.logits["real"], labelled[:, 6:])               # the whole real set
    assert out_e.columns["real"].tolist() == [1, 4, 6]                           # typical's choices only
    assert np.array_equal(out_e.signatures("real", [6, 1]), np.concatenate([held[:, 2], held[:, 0]], axis=1))
    with pytest.raises(Exception, match="image 2 of the real stimuli was not measured"):
        out_e.signatures("real", [2])


def test_older_layout_refuses_what_it_cannot_place(old_run):
    evaluation, pops, choices, _, _ = old_run
    # every variability's choices: a union of 5 images, which only the decoy cache's count matches
    # by chance; two caches of the same count are refused rather than guessed between
    (evaluation / "cache" / "evaluation-dddd.json").write_text(
        (evaluation / "cache" / "evaluation-cccc.json").read_text().replace("cccc", "dddd"))
    np.save(evaluation / "cache" / "evaluation-dddd.npy", np.zeros((4, 5, 3), np.float32))
    with pytest.raises(SystemExit, match="2 caches of the evaluation chips hold 5 real images with different"):
        older_layout(evaluation, pops / "evaluation.json", "real", choices, whole=False)
    # ... while a second cache of the same images with the same responses (the budget
    # evaluation's beside the plain one's) is the same data
    np.save(evaluation / "cache" / "evaluation-dddd.npy", np.load(evaluation / "cache" / "evaluation-cccc.npy"))
    held, columns = older_layout(evaluation, pops / "evaluation.json", "real", choices, whole=False)
    assert columns.tolist() == [0, 1, 2, 4, 6] and held.shape == (4, 5, 3)
    # a labelled cache too narrow for the chosen images
    with pytest.raises(SystemExit, match="but the run chose image 9"):
        older_layout(evaluation, pops / "labelled.json", "real", {"k": {"stimulus": "real", "indices": [9]}},
                     whole=True)


def _results_csv(path: Path, method: str, rows: list[tuple[str, float, float, float]]) -> Path:
    """A budget evaluation's results.csv (no setting column) with (cutoff, CTE, YL, YL_at_budget) rows."""
    lines = ["variability,cutoff,k,seed,method,TA,CTE,YL,YL_at_budget"]
    lines += [f"typical,{c},4,{seed},{method},90,{cte},{yl},{at}" for seed, (c, cte, yl, at) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compare_reads_named_results_csvs(tmp_path, capsys, monkeypatch):
    """Rows of one NAME from two files are one setting; the counts follow the figures."""
    from bench_budget_ranking import main

    reference = _results_csv(tmp_path / "ref.csv", "da-classifier", [("A50", 1.0, 5.0, 4.0), ("A70", 0.5, 3.0, 2.0)])
    method = _results_csv(tmp_path / "m.csv", "egis-tv-distil", [("A50", 0.5, 4.0, 3.0), ("A70", 2.0, 1.0, 2.5)])
    monkeypatch.setattr(sys, "argv", ["bench_budget_ranking.py", "compare", f"one={reference}", f"one={method}"])
    main()
    out = capsys.readouterr().out
    assert "one A50 | 4.00 (1.00 / 5.00) | 3.00 (0.50 / 4.00)" in out
    # hindsight no worse at A50 only (3.0 - 4.0, 2.5 - 2.0: -0.25 ± 0.75); the chosen threshold holds CTE <= 1% at A50
    # only, where its YL is also no worse: the goal's budget half in 1 of 2
    assert "egis-tv-distil: 1 of 2 | -0.25 ± 0.75" in out
    assert "CTE <= budget in 1, and also YL no worse in 1" in out


def test_compare_refuses_an_unnamed_results_csv(tmp_path, monkeypatch):
    from bench_budget_ranking import main

    monkeypatch.setattr(sys, "argv", ["bench_budget_ranking.py", "compare",
                                      str(_results_csv(tmp_path / "r.csv", "egis", [("A50", 1, 2, 3)]))])
    with pytest.raises(SystemExit, match="no setting column"):
        main()
