"""The command-line contract: --help everywhere, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [["inspect"], ["duts", "make"], ["duts", "export"], ["duts", "plugins"], ["label"], ["synthesize"],
            ["compact"], ["test"], ["evaluate"], ["demo"]]


def egis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "egis.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command):
    result = egis(*command, "--help")
    assert result.returncode == 0 and "Usage" in result.stdout


def test_bad_model_is_one_line_exit_2(tmp_path, corrupt_path):
    result = egis("inspect", str(corrupt_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_unknown_plugin_names_the_available_ones(tmp_path, tiny_cnn_path):
    result = egis("duts", "make", str(tiny_cnn_path), "-o", str(tmp_path / "p.json"), "--plugin", "gneric")
    assert result.returncode == 2 and "generic" in result.stderr and "tiled" in result.stderr
    assert not (tmp_path / "p.json").exists()


def test_duts_make_and_export_round_trip(tmp_path, nhwc_matmul_path):
    import numpy as np
    import onnxruntime as ort

    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    pop_path, chip_path = tmp_path / "pop.json", tmp_path / "chip.onnx"
    made = egis("duts", "make", str(nhwc_matmul_path), "-o", str(pop_path), "--set", "sigma_tot=0.2",
                "--set", "preset=extreme", "--count", "5", "--seed", "7")
    assert made.returncode == 0, made.stderr
    exported = egis("duts", "export", str(pop_path), "3", "-o", str(chip_path))
    assert exported.returncode == 0, exported.stderr
    model = load_model(nhwc_matmul_path)
    spec = PopulationSpec.load(pop_path)
    assert spec.params["sigma_tot"] == 0.2 and spec.count == 5 and spec.seed == 7
    expected = Population(spec, model).chip_model(3).SerializeToString()
    assert chip_path.read_bytes() == expected
    session = ort.InferenceSession(str(chip_path), providers=["CPUExecutionProvider"])
    x = np.zeros((2, *model.contract.image_shape), np.float32)
    assert session.run(None, {model.input_name: x})[0].shape == (2, model.num_classes)
    out_of_range = egis("duts", "export", str(pop_path), "5", "-o", str(tmp_path / "c5.onnx"))
    assert out_of_range.returncode == 2 and "outside this population" in out_of_range.stderr


def test_demo_cuts_shipped_populations_to_chips(tmp_path) -> None:
    """--chips N on a shipped model: the first N labelled and evaluation chips, labels intact."""
    from egis.cli.cmd_demo import _shipped
    from egis.toolkit.labels import read_labels

    population, labels, truth, tested = _shipped(tmp_path, "digits", "typical", 30)
    assert tested == 30 and population.name == "labelled.json"
    full_labels = read_labels(population.with_name("labelled_A50.csv"))
    cut = read_labels(labels)
    assert cut.chips.tolist() == list(range(30)) and cut.accuracies is None
    assert cut.passed.tolist() == full_labels.passed[:30].tolist()
    assert cut.meta["threshold"] == full_labels.meta["threshold"]
    assert cut.meta["population_sha256"] == full_labels.meta["population_sha256"]
    assert read_labels(truth).accuracies.shape == (30,)
    *_, everything = _shipped(tmp_path / "all", "digits", "typical", 5000)
    assert everything == len(full_labels.chips)


def test_duts_make_writes_the_format_asked_for(tmp_path, tiny_cnn_path):
    from egis.toolkit.plugin_api import POPULATION_FORMAT
    from egis.toolkit.population import PopulationSpec

    for version, name in ((None, "new.json"), ("2", "exact.json")):
        extra = [] if version is None else ["--format-version", version]
        made = egis("duts", "make", str(tiny_cnn_path), "-o", str(tmp_path / name), "--count", "2", *extra)
        assert made.returncode == 0, made.stderr
        assert f"format {version or POPULATION_FORMAT}," in made.stdout
    assert PopulationSpec.load(tmp_path / "new.json").format_version == POPULATION_FORMAT == 3
    assert PopulationSpec.load(tmp_path / "exact.json").format_version == 2
    bad = egis("duts", "make", str(tiny_cnn_path), "-o", str(tmp_path / "bad.json"), "--format-version", "9")
    assert bad.returncode == 2 and "1, 2, 3" in bad.stderr and bad.stderr.count("\n") == 1
    assert not (tmp_path / "bad.json").exists()
