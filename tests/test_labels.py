"""Customer-side labelling on the digits model: data formats, cutoffs, and bad input."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from egis.toolkit.data import load_labelled_images
from egis.toolkit.errors import DataError
from egis.toolkit.labels import Cutoff, chip_accuracies, pass_fail, read_labels
from egis.toolkit.model import load_model
from egis.toolkit.population import Population, PopulationSpec


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images[:120] * (255 / 16)).round().astype(np.uint8)   # (n, 8, 8)
    return x, data.target[:120].astype(np.int64)


def test_cutoff_parsing_and_thresholds():
    acc = np.linspace(0.5, 0.99, 100)
    assert Cutoff.parse("A70").pass_percent == 70
    assert (acc >= Cutoff.parse("A70").threshold(acc)).sum() == 70
    assert (acc >= Cutoff.parse("a50").threshold(acc)).sum() == 50
    assert Cutoff.parse("0.8").threshold(acc) == 0.8
    assert Cutoff.parse("80").threshold(acc) == pytest.approx(0.8)
    for bad in ("A0", "A100", "B70", "1.5x"):
        with pytest.raises(DataError):
            Cutoff.parse(bad)
    with pytest.raises(DataError, match="all 100 chips pass"):
        pass_fail(acc, 0.1)


def test_npz_folder_and_zip_give_the_same_images(tmp_path, digits, digits_cnn_path):
    x, y = digits
    contract = load_model(digits_cnn_path).contract
    np.savez(tmp_path / "nhwc.npz", x=x[..., None], y=y)
    np.savez(tmp_path / "nchw_float.npz", x=(x[:, None] / 255.0).astype(np.float32), y=y)
    root = tmp_path / "folder"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, (img, label) in enumerate(zip(x, y)):
            (root / f"c{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / f"c{label}" / f"{i:04d}.png")
            archive.write(root / f"c{label}" / f"{i:04d}.png", f"test/c{label}/{i:04d}.png")
    (tmp_path / "data.zip").write_bytes(buffer.getvalue())
    reference = load_labelled_images(tmp_path / "nhwc.npz", contract, 10)
    assert reference.pixels.shape == (120, 1, 8, 8) and reference.pixels.max() <= 1.0
    as_float = load_labelled_images(tmp_path / "nchw_float.npz", contract, 10)
    np.testing.assert_allclose(as_float.pixels, reference.pixels, atol=1e-6)
    for source in (load_labelled_images(root, contract, 10),
                   load_labelled_images(tmp_path / "data.zip", contract, 10)):
        order = np.lexsort((np.arange(120), y))   # folders sort by class, then file name
        np.testing.assert_allclose(source.pixels, reference.pixels[order], atol=1e-6)
        np.testing.assert_array_equal(source.labels, y[order])


def test_bad_data_is_refused(tmp_path, digits, digits_cnn_path, tiny_cnn_path):
    x, y = digits
    contract = load_model(digits_cnn_path).contract
    np.savez(tmp_path / "bad_labels.npz", x=x, y=y + 5)
    with pytest.raises(DataError, match="out of range"):
        load_labelled_images(tmp_path / "bad_labels.npz", contract, 10)
    np.savez(tmp_path / "empty.npz", x=x[:0], y=y[:0])
    with pytest.raises(DataError, match="no images"):
        load_labelled_images(tmp_path / "empty.npz", contract, 10)
    with pytest.raises(DataError, match="do not match the model input"):
        load_labelled_images(tmp_path / "bad_labels.npz", load_model(tiny_cnn_path).contract, 10)
    np.savez(tmp_path / "noy.npz", x=x)
    with pytest.raises(DataError, match="'y'"):
        load_labelled_images(tmp_path / "noy.npz", contract, 10)


def test_label_command_on_shipped_digits(tmp_path, digits):
    from typer.testing import CliRunner

    from egis.cli.main import app
    from egis.models.registry import reference_model_path

    x, y = digits
    np.savez(tmp_path / "data.npz", x=x, y=y)
    model = reference_model_path("digits")
    runner = CliRunner()
    result = runner.invoke(app, ["duts", "make", str(model), "-o", str(tmp_path / "pop.json"),
                                 "--set", "sigma_tot=0.5", "--count", "20", "--seed", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["label", str(model), str(tmp_path / "pop.json"), "--data",
                                 str(tmp_path / "data.npz"), "-o", str(tmp_path / "labels.csv"),
                                 "--cutoff", "A70"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "labels.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["dut", "pass"] and len(rows) == 21
    # 70% of 20 chips pass; ties at the threshold accuracy pass too (an accuracy is the cutoff).
    assert sum(int(r[1]) for r in rows[1:]) >= 14
    meta = json.loads((tmp_path / "labels.json").read_text())
    assert meta["cutoff"] == "A70" and meta["count"] == 20
    assert meta["population_sha256"] == PopulationSpec.load(tmp_path / "pop.json").sha256()
    # The accuracies behind the labels are the engine's, recomputed independently here.
    loaded = load_model(model)
    pop = Population(PopulationSpec.load(tmp_path / "pop.json"), loaded)
    data = load_labelled_images(tmp_path / "data.npz", loaded.contract, 10)
    acc = chip_accuracies(pop, data.pixels, data.labels, progress=False)
    labels = read_labels(tmp_path / "labels.csv")
    np.testing.assert_array_equal(labels.passed, acc >= meta["threshold"])
    assert labels.accuracies is None
    assert (acc > np.sort(acc)[::-1][13]).sum() < 14 <= (acc >= meta["threshold"]).sum()
