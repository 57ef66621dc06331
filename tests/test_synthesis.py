"""EGIS synthesis: entropy loss bounds, frozen model, generator shapes/ranges, SID output,
determinism, resume, baselines, CLI errors, and (slow) the targets on the digits model."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("onnx2torch") is None:  # imported via toolkit.torch_bridge only
    pytest.skip("onnx2torch is not installed", allow_module_level=True)

from egis.entropy import check_batch_size, entropy_terms, set_entropies  # noqa: E402
from egis.generator import Generator, Normalizer, upsampling_stages  # noqa: E402
from egis.synthesis import (PLATEAU_WINDOW, StepRecord, SynthesisConfig, _step,  # noqa: E402
                            build_classifier, build_generator, checkpoint_dir_for, hc_weight,
                            plateaued, sample, synthesize, train_generator, warmed_loss)
from egis.toolkit.errors import EgisError  # noqa: E402
from egis.toolkit.io import read_json, read_npz  # noqa: E402
from egis.toolkit.model import load_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "models" / "digits" / "model.onnx"
TINY = SynthesisConfig(iterations=4, batch=32, images=40, checkpoint_every=2, early_stop=False, threads=1)


# ------------------------------------------------------------------------------ entropy
def _value(logits: torch.Tensor) -> float:
    return float(-entropy_terms(logits).loss)


def test_identical_one_hot_rows_give_one() -> None:
    logits = torch.full((64, 10), -50.0)
    logits[:, 3] = 50.0
    assert _value(logits) == pytest.approx(1.0, abs=1e-6)


def test_evenly_spread_one_hot_gives_m() -> None:
    m = 10
    logits = torch.full((6 * m, m), -1e4)
    logits[torch.arange(6 * m), torch.arange(6 * m) % m] = 1e4
    terms = entropy_terms(logits)
    assert float(terms.h_c) == pytest.approx(0.0, abs=1e-6)
    assert float(terms.h_s) == pytest.approx(math.log(m), abs=1e-6)
    assert _value(logits) == pytest.approx(m, rel=1e-5)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e4, 1e30])
def test_loss_within_jensen_bounds_and_finite_gradients(scale: float) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(48, 7, generator=gen) * scale).requires_grad_(True)
    terms = entropy_terms(logits)
    value = float(-terms.loss.detach())
    assert 1.0 - 1e-5 <= value <= 7.0 + 1e-4
    h_c, h_s = float(terms.h_c.detach()), float(terms.h_s.detach())
    assert 0.0 <= h_c <= h_s + 1e-6 <= math.log(7) + 1e-5
    terms.loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_set_entropies_match_training_terms() -> None:
    logits = torch.randn(20, 5, generator=torch.Generator().manual_seed(1))
    terms = entropy_terms(logits)
    h_c, h_s = set_entropies(torch.softmax(logits, 1).numpy())
    assert h_c == pytest.approx(float(terms.h_c), abs=1e-5)
    assert h_s == pytest.approx(float(terms.h_s), abs=1e-5)


def test_batch_must_hold_two_per_class() -> None:
    check_batch_size(20, 10)
    with pytest.raises(EgisError, match="at least 20"):
        check_batch_size(19, 10)


# ------------------------------------------------------------------------------ generator
@pytest.mark.parametrize("size,stages", [(2, 1), (4, 1), (8, 2), (16, 3), (28, 4), (32, 4), (33, 5), (64, 5)])
def test_upsampling_rule(size: int, stages: int) -> None:
    assert upsampling_stages(size, size) == stages
    assert 2 * 2 ** stages >= size > (2 ** stages if stages > 1 else 0)


def test_seed_generator_for_32x32_is_table_one() -> None:
    convs = [m for m in Generator(3, 32, 32).modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (100, 256, 2, 1), (256, 128, 4, 2), (128, 64, 4, 2), (64, 32, 4, 2), (32, 3, 4, 2)]


@pytest.mark.parametrize("c,h,w", [(1, 8, 8), (3, 28, 28), (3, 32, 16), (1, 5, 40)])
def test_generator_crops_to_any_size(c: int, h: int, w: int) -> None:
    out = Generator(c, h, w).eval()(torch.randn(3, 100))
    assert out.shape == (3, c, h, w)
    assert out.abs().max() <= 1.0


def test_normalizer_matches_contract(tiny_cnn_path: Path) -> None:
    model = load_model(tiny_cnn_path, pixel_range=(0, 255), mean=(120, 110, 100), std=(60, 61, 62))
    c = model.contract
    pixels = np.random.default_rng(0).uniform(0, 255, (4, *c.image_shape)).astype(np.float32)
    ours = Normalizer(c.mean, c.std, c.channels, c.layout)(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(ours, c.normalize(pixels), rtol=1e-6, atol=1e-5)


# ------------------------------------------------------------------------------ shapes/range
@pytest.mark.parametrize("fixture,shape", [("digits_cnn_path", (1, 8, 8)), ("tiny_cnn_path", (3, 32, 32)),
                                           ("nhwc_matmul_path", (12, 12, 3))])
def test_sampled_images_are_chip_inputs(fixture: str, shape: tuple, request: pytest.FixtureRequest) -> None:
    model = load_model(request.getfixturevalue(fixture), pixel_range=(-2.0, 5.0))
    assert model.contract.image_shape == shape
    generator = build_generator(model, seed=0).eval()
    _noise, images = sample(generator, 9, seed=0)
    assert images.shape == (9, *shape) and images.dtype == np.float32
    assert images.min() >= -2.0 and images.max() <= 5.0
    assert images.std() > 0


# ------------------------------------------------------------------------------ frozen model
def test_gradients_reach_generator_not_model(torch_cnn_path: Path) -> None:
    model = load_model(torch_cnn_path)
    classifier = build_classifier(model)
    bn = [m for m in classifier.modules() if "BatchNorm" in type(m).__name__]
    assert bn, "fixture should keep BatchNorm as a node"
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    generator = build_generator(model, seed=0).train()
    gen_before = [p.detach().clone() for p in generator.parameters()]
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    classifier.train()   # must be ignored: the classifier stays in eval mode
    _step(generator, classifier, optimizer, replace(TINY, batch=24), iteration=1)
    assert not any(m.training for m in classifier.modules())
    assert all(not p.requires_grad and p.grad is None for p in classifier.parameters())
    for key, value in classifier.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is not None for p in generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, generator.parameters()))


# ------------------------------------------------------------------------------ H_c warm-up
def test_hc_weight_ramps_then_stays_at_one() -> None:
    assert [hc_weight(i, 4) for i in (1, 2, 4, 5, 400)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert hc_weight(1, 0) == 1.0


def test_warmed_loss_is_the_seed_loss_at_full_weight() -> None:
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 3
    terms = entropy_terms(logits)
    assert warmed_loss(terms, 1.0) is terms.loss
    expected = -torch.exp(terms.h_s - 0.5 * terms.h_c)
    assert torch.allclose(warmed_loss(terms, 0.5), expected)
    assert float(warmed_loss(terms, 0.0)) == pytest.approx(-math.exp(float(terms.h_s)))


def test_warmup_changes_training_and_is_part_of_the_resume_key(digits_cnn_path: Path, tmp_path: Path) -> None:
    model = load_model(digits_cnn_path)
    plain = train_generator(model, replace(TINY, hc_warmup=0))
    warmed = train_generator(model, replace(TINY, hc_warmup=100))
    assert plain.history[0].h_c == warmed.history[0].h_c   # same first batch, same generator
    assert plain.history[-1].h_c != warmed.history[-1].h_c  # different updates
    ckpt = tmp_path / "ckpt"
    train_generator(model, replace(TINY, iterations=2, hc_warmup=100), checkpoint_dir=ckpt)
    with pytest.raises(EgisError, match="used"):
        train_generator(model, replace(TINY, hc_warmup=0), checkpoint_dir=ckpt, resume=True)
    with pytest.raises(EgisError, match="hc-warmup"):
        replace(TINY, hc_warmup=-1).validate()


# ------------------------------------------------------------------------------ plateau stop
def _history(losses) -> list[StepRecord]:
    return [StepRecord(iteration=i + 1, loss=float(v), h_c=0.5, h_s=2.2) for i, v in enumerate(losses)]


def test_plateau_fires_on_a_flat_loss_only_after_warmup_and_window() -> None:
    config = SynthesisConfig(hc_warmup=100, plateau=200)
    need = 100 + 200 + PLATEAU_WINDOW
    flat = np.full(need, -5.0)
    assert plateaued(_history(flat), config)
    assert not plateaued(_history(flat[:-1]), config)            # too early to judge
    assert not plateaued(_history(flat), replace(config, plateau=0))  # disabled


def test_plateau_does_not_fire_while_the_loss_still_improves() -> None:
    config = SynthesisConfig(hc_warmup=0, plateau=200)
    steps = np.arange(600)
    improving = -5.0 * (1 + 0.03 * steps / 200)   # 3% better every 200 iterations
    slowing = -5.0 * (1 + 0.002 * steps / 200)    # 0.2%: below the 1% that counts
    assert not plateaued(_history(improving), config)
    assert plateaued(_history(slowing), config)
    assert plateaued(_history(-improving), config)               # getting worse is no progress either


def test_training_stops_on_a_plateau_and_says_so(digits_cnn_path: Path) -> None:
    """A generator that cannot learn (lr ~0) must not run to the iteration cap."""
    model = load_model(digits_cnn_path)
    config = replace(TINY, iterations=400, early_stop=True, hc_warmup=0, plateau=50, lr=1e-12)
    result = train_generator(model, config)
    assert result.stop_reason == "plateau" and result.stopped_early
    assert 50 + PLATEAU_WINDOW <= len(result.history) < 400
    capped = train_generator(model, replace(config, iterations=60))
    assert capped.stop_reason == "iterations" and not capped.stopped_early


def test_a_resumed_run_stops_on_the_plateau_where_an_uninterrupted_one_does(
        digits_cnn_path: Path, tmp_path: Path) -> None:
    model = load_model(digits_cnn_path)
    config = replace(TINY, iterations=400, early_stop=True, hc_warmup=0, plateau=50, lr=1e-12,
                     checkpoint_every=40)
    whole = train_generator(model, config)
    ckpt = tmp_path / "ckpt"
    train_generator(model, replace(config, iterations=80), checkpoint_dir=ckpt)
    resumed = train_generator(model, config, checkpoint_dir=ckpt, resume=True)
    assert resumed.resumed_from == 80 and resumed.stop_reason == "plateau"
    assert [r.loss for r in resumed.history] == [r.loss for r in whole.history]


def test_plateau_setting_is_validated_and_the_cli_default_matches() -> None:
    import inspect

    from egis.cli.cmd_synthesize import synthesize_command
    from egis.synthesis import DEFAULT_PLATEAU, PLATEAU_MIN_GAIN

    with pytest.raises(EgisError, match="plateau"):
        replace(TINY, plateau=PLATEAU_WINDOW - 1).validate()
    replace(TINY, plateau=0).validate()
    option = inspect.signature(synthesize_command).parameters["plateau"].default
    assert option.default == DEFAULT_PLATEAU
    assert f"{PLATEAU_MIN_GAIN:.0%}" in option.help and f"at least {PLATEAU_WINDOW}" in option.help


def test_the_cli_variation_defaults_match_the_config() -> None:
    import inspect

    from egis.cli.cmd_synthesize import synthesize_command
    from egis.synthesis.config import (DEFAULT_VARIATION_BATCH, DEFAULT_VARIATION_CHIPS,
                                       DEFAULT_VARIATION_WEIGHT)

    params = inspect.signature(synthesize_command).parameters
    assert params["variation_weight"].default.default == DEFAULT_VARIATION_WEIGHT
    assert params["variation_chips"].default.default == DEFAULT_VARIATION_CHIPS
    assert params["variation_batch"].default.default == DEFAULT_VARIATION_BATCH


# ------------------------------------------------------------------------------ image prior
def test_total_variation_reads_both_layouts_and_is_zero_on_flat_images() -> None:
    from egis.synthesis.prior import total_variation

    images = torch.rand(3, 2, 5, 7, generator=torch.Generator().manual_seed(0))
    nchw = total_variation(images, "NCHW")
    assert torch.allclose(nchw, total_variation(images.permute(0, 2, 3, 1), "NHWC"))
    assert float(total_variation(torch.full((2, 3, 4, 4), 0.7), "NCHW")) == 0.0
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0                       # columns alternate: every horizontal step is 1
    assert float(total_variation(stripes, "NCHW")) == pytest.approx(1.0)
    # in units of the pixel range: raw 0..255 pixels weigh as 0..1 ones do
    assert float(total_variation(255 * stripes, "NCHW", pixel_range=255.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="layout"):
        total_variation(images, "CHWN")
    with pytest.raises(ValueError, match="pixel_range"):
        total_variation(images, "NCHW", pixel_range=0.0)


def test_tv_weight_makes_smoother_images_and_is_part_of_the_resume_key(digits_cnn_path: Path,
                                                                         tmp_path: Path) -> None:
    from egis.synthesis.prior import total_variation

    model = load_model(digits_cnn_path)
    config = replace(TINY, iterations=12)
    plain = train_generator(model, config)
    smooth = train_generator(model, replace(config, tv_weight=50.0))
    assert plain.history[0].h_c == smooth.history[0].h_c          # same first batch and generator

    def tv(result) -> float:
        _, images = sample(result.pixel_generator, 64, seed=0)
        return float(total_variation(torch.from_numpy(images), result.pixel_generator.layout))

    assert tv(smooth) < 0.8 * tv(plain)
    ckpt = tmp_path / "ckpt"
    train_generator(model, replace(TINY, iterations=2, tv_weight=5.0), checkpoint_dir=ckpt)
    with pytest.raises(EgisError, match="used"):
        train_generator(model, TINY, checkpoint_dir=ckpt, resume=True)
    with pytest.raises(EgisError, match="tv-weight"):
        replace(TINY, tv_weight=-1.0).validate()


def test_the_cli_tv_default_is_the_seed_loss() -> None:
    import inspect

    from egis.cli.cmd_synthesize import synthesize_command

    option = inspect.signature(synthesize_command).parameters["tv_weight"].default
    assert option.default == SynthesisConfig().tv_weight == 0.0


def test_cli_warns_when_the_targets_are_missed() -> None:
    from egis.cli.cmd_synthesize import target_warnings

    meta = {"num_classes": 10, "set": {"classes_covered": 10, "h_c": 0.45, "h_s": 2.26},
            "training": {"iterations": 1234, "stop_reason": "plateau",
                         "targets": {"h_c_max": 0.23, "h_s_min": 2.19}}}
    (line,) = target_warnings(meta)
    assert "H_c 0.450" in line and "label smoothing" in line and "stopped improving" in line
    meta["training"]["stop_reason"] = "iterations"
    (line,) = target_warnings(meta)
    assert "--iterations cap (1234)" in line and "label smoothing" not in line
    meta["set"].update(classes_covered=3, h_c=0.1, h_s=1.2)
    (line,) = target_warnings(meta)
    assert "3/10 covered" in line
    meta["set"].update(classes_covered=10, h_s=2.3)
    assert target_warnings(meta) == []
    assert target_warnings({**meta, "training": None}) == []
# ------------------------------------------------------------------------------ SID output
def test_sid_directory_contents_nhwc(nhwc_matmul_path: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = load_model(nhwc_matmul_path, pixel_range=(0, 255))
    out = tmp_path / "sid"
    meta = synthesize(model, out, TINY)
    assert sorted(p.name for p in out.iterdir()) == [
        "entropy.png", "generator.onnx", "grid.png", "images.npz", "meta.json", "timings.json", "training.csv"]
    assert "wall_time_s" not in read_json(out / "meta.json") and "wall_time_s" in read_json(out / "timings.json")
    arrays = read_npz(out / "images.npz")
    assert arrays["images"].shape == (40, 12, 12, 3)
    assert arrays["images"].min() >= 0 and arrays["images"].max() <= 255
    assert arrays["pred"].shape == arrays["confidence"].shape == (40,)
    assert sum(meta["set"]["class_histogram"]) == 40
    assert read_json(out / "meta.json")["model_sha256"] == model.sha256
    assert len((out / "training.csv").read_text().splitlines()) == 1 + TINY.iterations
    session = ort.InferenceSession(str(out / "generator.onnx"), providers=["CPUExecutionProvider"])
    again = session.run(None, {"noise": arrays["noise"][:7]})[0]
    np.testing.assert_allclose(again, arrays["images"][:7], rtol=1e-4, atol=1e-3)
    assert not checkpoint_dir_for(out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"


def test_same_seed_same_bytes(digits_cnn_path: Path, tmp_path: Path) -> None:
    model = load_model(digits_cnn_path)
    synthesize(model, tmp_path / "a", TINY)
    synthesize(model, tmp_path / "b", TINY)
    synthesize(model, tmp_path / "c", replace(TINY, seed=1))
    a, b, c = (read_npz(tmp_path / n / "images.npz")["images"] for n in "abc")
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    # every file but timings.json is the same bytes (wall-clock figures live only there)
    for path in sorted((tmp_path / "a").iterdir()):
        if path.name != "timings.json":
            assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_resume_continues_bit_for_bit(digits_cnn_path: Path, tmp_path: Path) -> None:
    model = load_model(digits_cnn_path)
    straight = train_generator(model, TINY)
    ckpt = tmp_path / "ckpt"
    train_generator(model, replace(TINY, iterations=2), checkpoint_dir=ckpt)
    resumed = train_generator(model, TINY, checkpoint_dir=ckpt, resume=True)
    assert resumed.resumed_from == 2 and len(resumed.history) == 4
    assert [r.loss for r in resumed.history] == [r.loss for r in straight.history]
    for a, b in zip(straight.pixel_generator.state_dict().values(),
                    resumed.pixel_generator.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(EgisError, match="used"):
        train_generator(model, replace(TINY, lr=1e-3), checkpoint_dir=ckpt, resume=True)
    (ckpt / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(EgisError, match="damaged"):
        train_generator(model, TINY, checkpoint_dir=ckpt, resume=True)


def test_failed_write_leaves_previous_sid(digits_cnn_path: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(digits_cnn_path)
    out = tmp_path / "sid"
    synthesize(model, out, TINY)
    first = (out / "images.npz").read_bytes()

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("egis.plots.image_grid", boom)
    with pytest.raises(RuntimeError):
        synthesize(model, out, replace(TINY, seed=3))
    assert (out / "images.npz").read_bytes() == first
    # no staging directory left behind; the checkpoint stays for --resume
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sid", "sid.checkpoint"]


def test_refuses_to_replace_a_foreign_directory(digits_cnn_path: Path, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(EgisError, match="not an SID directory"):
        synthesize(load_model(digits_cnn_path), tmp_path / "photos", TINY)


# ------------------------------------------------------------------------------ baselines
@pytest.mark.parametrize("kind", ["gaussian", "uniform", "untrained"])
def test_baselines_in_pixel_domain(kind: str, tiny_cnn_path: Path, tmp_path: Path) -> None:
    from egis.baselines import make_baseline

    model = load_model(tiny_cnn_path, pixel_range=(0, 255))
    meta = make_baseline(model, kind, tmp_path / kind, replace(TINY, images=16))
    images = read_npz(tmp_path / kind / "images.npz")["images"]
    assert images.shape == (16, 3, 32, 32) and 0 <= images.min() and images.max() <= 255
    assert meta["kind"] == f"baseline:{kind}"
    assert (tmp_path / kind / "generator.onnx").exists() == (kind == "untrained")


def test_untrained_baseline_is_the_seeded_initial_generator(digits_cnn_path: Path, tmp_path: Path) -> None:
    """Same builder and seed as training's starting point (train_generator uses build_generator)."""
    from egis.baselines import make_baseline
    from egis.synthesis import deterministic, finalize_generator

    model = load_model(digits_cnn_path)
    make_baseline(model, "untrained", tmp_path / "u", TINY)
    with deterministic(TINY.seed, TINY.threads):
        generator = finalize_generator(build_generator(model, TINY.seed), TINY)
        _noise, images = sample(generator, TINY.images, TINY.seed)
    np.testing.assert_array_equal(read_npz(tmp_path / "u" / "images.npz")["images"], images)


# ------------------------------------------------------------------------------ CLI
def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from egis.cli.main import main; sys.argv = ['egis', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cli_one_line_error_for_model_without_image_input(two_inputs_path: Path, tmp_path: Path) -> None:
    done = _cli("synthesize", str(two_inputs_path), "-o", str(tmp_path / "sid"), "--iterations", "2")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert not (tmp_path / "sid").exists()


def test_cli_one_line_error_for_negative_seed(digits_cnn_path: Path, tmp_path: Path) -> None:
    done = _cli("synthesize", str(digits_cnn_path), "-o", str(tmp_path / "sid"), "--seed", "-1",
                "--iterations", "2")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: --seed")
    assert not (tmp_path / "sid").exists()


def test_cli_writes_sid(digits_cnn_path: Path, tmp_path: Path) -> None:
    """In-process (typer's runner): a subprocess would spend seconds importing torch again."""
    import typer
    from typer.testing import CliRunner

    from egis.cli.cmd_synthesize import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)   # two commands, so typer keeps the command name
    done = CliRunner().invoke(app, ["synthesize", str(digits_cnn_path), "-o", str(tmp_path / "sid"),
                                    "--iterations", "3", "--batch", "20", "--images", "30",
                                    "--threads", "1", "--quiet"])
    assert done.exit_code == 0, done.output
    assert "wrote 30 images" in done.output
    assert read_json(tmp_path / "sid" / "meta.json")["training"]["iterations"] == 3


# ------------------------------------------------------------------------------ slow: digits
@pytest.mark.slow
@pytest.mark.skipif(not DIGITS.is_file(), reason="models/digits/model.onnx not built yet")
def test_digits_reaches_targets(tmp_path: Path) -> None:
    model = load_model(DIGITS, require_torch=True)
    # B=128, 1 thread, default H_c warm-up (300): targets held from ~iteration 400, stop ~420,
    # ~45 s on 2 busy cores
    config = SynthesisConfig(iterations=700, batch=128, images=1024, patience=20, threads=1)
    meta = synthesize(model, tmp_path / "sid", config)
    log_m = math.log(10)
    training, summary = meta["training"], meta["set"]
    assert training["final_h_s"] >= 0.95 * log_m and training["final_h_c"] <= 0.1 * log_m
    assert training["stopped_early"] and training["stop_reason"] == "targets"
    assert summary["h_s"] >= 0.95 * log_m and summary["h_c"] <= 0.1 * log_m
    assert summary["classes_covered"] == 10 and summary["max_class_share"] <= 0.3
