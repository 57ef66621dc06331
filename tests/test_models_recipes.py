"""Fast checks of the shipped reference models (models/) and their recipes' helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

ort = pytest.importorskip("onnxruntime")

from egis.models.registry import REFERENCE_MODELS, reference_model_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CIFAR_ZIP = REPO.parent / "shared" / "datasets" / "cifar10" / "cifar10-jpeg.zip"
CIFAR_MODELS = ["cifar10_vgg16", "cifar10_mobilenet"]


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check_io(path: Path, chw: tuple[int, int, int]):
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value, "batch dimension must be dynamic"
    assert tuple(d.dim_value for d in dims[1:]) == chw
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["egis.layout"] == "NCHW"
    assert meta["egis.pixel_range"] == "0,1"
    assert 0.0 < float(meta["egis.test_accuracy"]) <= 1.0
    assert model.graph.node[0].op_type == "Sub", "normalisation must be inside the graph"
    sess = _session(path)
    for n in (1, 5):
        x = np.random.default_rng(0).random((n, *chw), dtype=np.float32)
        (logits,) = sess.run(["logits"], {"input": x})
        assert logits.shape == (n, 10) and logits.dtype == np.float32
        assert np.isfinite(logits).all()
    return meta


def test_registry_lists_the_three_models():
    assert set(REFERENCE_MODELS) == {"digits", *CIFAR_MODELS}
    assert reference_model_path() == REFERENCE_MODELS["digits"]
    with pytest.raises(KeyError):
        reference_model_path("nope")


def test_digits_model_io_and_accuracy():
    path = reference_model_path("digits")
    meta = _check_io(path, (1, 8, 8))
    assert meta["egis.model_name"] == "digits"
    from egis.models.digits.train import split

    _, _, x_test, y_test = split()
    assert len(y_test) == 360
    (logits,) = _session(path).run(["logits"], {"input": x_test})
    acc = float((logits.argmax(1) == y_test).mean())
    assert acc >= 0.90
    assert abs(acc - float(meta["egis.test_accuracy"])) < 1e-3  # the split it was evaluated on


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_cifar_model_io(name):
    path = REFERENCE_MODELS[name]
    if not path.exists():
        pytest.skip(f"{name} not shipped yet ({path} missing: not trained/shipped yet, see its CARD.md)")
    meta = _check_io(path, (3, 32, 32))
    assert meta["egis.model_name"] == name
    assert (path.parent / "CARD.md").exists()


def test_mflops_counter_counts_conv_and_linear_macs():
    torch = pytest.importorskip("torch")
    from egis.models.common import count_mflops

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 10))
    expected = 2 * (8 * 8 * 4 * 3 * 9 + 256 * 10) / 1e6
    assert count_mflops(net, (3, 8, 8)) == pytest.approx(expected)


def test_augmentation_is_seeded_and_shape_preserving():
    torch = pytest.importorskip("torch")
    from egis.models.common import augment_crop_flip

    x = torch.rand(6, 3, 32, 32)
    a = augment_crop_flip(x, torch.Generator().manual_seed(1))
    b = augment_crop_flip(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


def test_init_from_loads_a_finished_stage_and_refuses_an_unfinished_one(tmp_path):
    torch = pytest.importorskip("torch")
    from egis.models.cifar_recipe import load_stage, parse_args, recipe_of
    from egis.models.common import save_checkpoint

    trained = torch.nn.Linear(4, 3)
    recipe = recipe_of(parse_args("toy", 2, 0.1, ["--label-smoothing", "0.05"]))
    history = [{"epoch": 1, "train_acc": 0.5}, {"epoch": 2, "train_acc": 0.6, "test_acc": 0.55}]
    state = {"model": trained.state_dict(), "epoch": 2, "epochs": 2, "history": history,
             "wall_s": 12.0, "recipe": recipe}
    save_checkpoint(tmp_path / "stage1", state)

    fresh = torch.nn.Linear(4, 3)
    stage = load_stage(tmp_path / "stage1", fresh)
    assert torch.equal(fresh.weight, trained.weight) and torch.equal(fresh.bias, trained.bias)
    assert stage["recipe"]["label_smoothing"] == 0.05 and stage["test_accuracy"] == 0.55
    assert stage["epochs"] == 2 and stage["train_wall_s"] == 12.0

    save_checkpoint(tmp_path / "half", {**state, "epoch": 1})
    with pytest.raises(SystemExit, match="not a finished run"):
        load_stage(tmp_path / "half", fresh)
    with pytest.raises(SystemExit, match="no checkpoint"):
        load_stage(tmp_path / "missing", fresh)
    save_checkpoint(tmp_path / "old", {k: v for k, v in state.items() if k != "recipe"})
    with pytest.raises(SystemExit, match="does not record its recipe"):
        load_stage(tmp_path / "old", fresh)


def test_resume_refuses_a_checkpoint_of_another_recipe():
    from egis.models.cifar_recipe import parse_args, recipe_changes, recipe_of

    saved = recipe_of(parse_args("toy", 2, 0.1, ["--threads", "1"]))
    same_but_threads = recipe_of(parse_args("toy", 2, 0.1, ["--threads", "2"]))
    assert recipe_changes(saved, same_but_threads) == ""
    assert recipe_changes(None, same_but_threads) == ""   # checkpoints from before recipes were recorded
    other = recipe_of(parse_args("toy", 2, 0.1, ["--label-smoothing", "0", "--lr", "0.01"]))
    assert recipe_changes(saved, other) == "label_smoothing 0.1 -> 0.0, peak_lr 0.1 -> 0.01"


def test_two_stage_card_reproduces_both_stages_without_overwriting_the_shipped_model():
    from egis.models.make_card import two_stage_text

    s1 = {"epochs": 30, "seed": 0, "threads": 1, "batch": 128, "peak_lr": 0.1, "weight_decay": 0.0005,
          "label_smoothing": 0.1}
    r = {**s1, "epochs": 5, "peak_lr": 0.01, "label_smoothing": 0.0}
    text = two_stage_text("cifar10_vgg16", r, {"recipe": s1, "test_accuracy": 0.8493})
    first, second = text["cmd"].splitlines()
    assert "--out runs/cifar10_vgg16/stage1-model --ckpt runs/cifar10_vgg16/stage1 --epochs 30" in first
    assert "--label-smoothing 0.1" in first and "--init-from" not in first
    assert "--out models/cifar10_vgg16 --init-from runs/cifar10_vgg16/stage1 --epochs 5" in second
    assert "--lr 0.01 --label-smoothing 0.0" in second
    assert "Stage 1:" in text["recipe"] and "84.93%" in text["recipe"]


@pytest.mark.skipif(not CIFAR_ZIP.exists(),
                    reason=f"CIFAR-10 zip not present at {CIFAR_ZIP} (shared dataset; not part of the product)")
@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_cifar_model_on_real_test_images(name):
    path = REFERENCE_MODELS[name]
    if not path.exists():
        pytest.skip(f"{name} not shipped yet ({path} missing)")
    import io
    import zipfile

    from PIL import Image

    from egis.models.cifar10_data import CLASSES

    xs, ys = [], []
    with zipfile.ZipFile(CIFAR_ZIP) as zf:
        all_names = sorted(zf.namelist())
        for label, cls in enumerate(CLASSES):
            # 20 per class, 200 test images: a fast sanity check, not the card's number
            names = [n for n in all_names if n.startswith(f"test/{cls}/") and n.endswith(".jpg")][:20]
            for name in names:
                with Image.open(io.BytesIO(zf.read(name))) as im:
                    xs.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
                ys.append(label)
    x = np.stack(xs).transpose(0, 3, 1, 2).copy()
    (logits,) = _session(path).run(["logits"], {"input": x})
    assert float((logits.argmax(1) == np.array(ys)).mean()) >= 0.6


@pytest.mark.parametrize("name", ["digits", *CIFAR_MODELS])
def test_card_describes_the_shipped_populations(name: str) -> None:
    """CARD.md is what make_card renders now: numbers from the shipped files, not stale text."""
    import json

    from egis.models.make_card import card_text, population_section

    folder = REPO / "models" / name
    if not (folder / "populations" / "stats.json").exists():
        pytest.skip(f"{name} ships no populations")
    section = population_section(name)
    stats = json.loads((folder / "populations" / "stats.json").read_text())
    for preset, numbers in stats.items():
        count = json.loads((folder / "populations" / preset / "labelled.json").read_text())["count"]
        assert f"| {preset}, labelled | {count} | {numbers['labelled']['mean']:.4f} |" in section
    assert (folder / "CARD.md").read_text() == card_text(name), f"run python -m egis.models.make_card {name}"
