"""Populations: chips are a pure function of (spec, index); the fast engine agrees with
standalone perturbed ONNX files run in onnxruntime; only crossbar weights change."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from egis.toolkit.engine import ChipSimulator, population_logits
from egis.toolkit.errors import EgisError, PopulationError
from egis.toolkit.model import load_model
from egis.toolkit.population import FORMAT_VERSION, Population, PopulationSpec
from egis.toolkit.runtime import session_options

PARAMS = {"sigma_tot": 0.3, "preset": "typical"}


def make_population(path, count=6, seed=3, plugin="generic", params=PARAMS) -> Population:
    model = load_model(path)
    return Population(PopulationSpec(model.sha256, plugin, params, seed, count), model)


def test_spec_round_trip_and_hash(tmp_path, tiny_cnn_path):
    pop = make_population(tiny_cnn_path)
    pop.spec.save(tmp_path / "pop.json")
    again = PopulationSpec.load(tmp_path / "pop.json")
    assert again == pop.spec and again.sha256() == pop.spec.sha256()
    other = PopulationSpec(pop.spec.model_sha256, "generic", PARAMS, seed=4, count=6)
    assert other.sha256() != pop.spec.sha256()


def test_chip_weights_are_pure_functions_of_spec_and_index(tiny_cnn_path):
    a, b = make_population(tiny_cnn_path), make_population(tiny_cnn_path)
    forward = [a.chip_weights(i) for i in range(4)]
    backward = [b.chip_weights(i) for i in reversed(range(4))][::-1]
    for wa, wb in zip(forward, backward):
        assert wa.keys() == wb.keys()
        for name in wa:
            assert wa[name].tobytes() == wb[name].tobytes()
    assert not np.array_equal(forward[0][next(iter(forward[0]))], forward[1][next(iter(forward[1]))])


def test_wrong_model_and_bad_index_are_refused(tiny_cnn_path, digits_cnn_path):
    pop = make_population(tiny_cnn_path)
    with pytest.raises(PopulationError, match="made for model"):
        Population(pop.spec, load_model(digits_cnn_path))
    with pytest.raises(PopulationError, match="outside this population"):
        pop.chip_weights(6)


def test_malformed_spec_is_one_line_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"plugin": "generic"}')
    with pytest.raises(PopulationError, match="missing"):
        PopulationSpec.load(path)


@pytest.mark.parametrize("mode", ["inputs", "baked"])
@pytest.mark.parametrize("fixture", ["tiny_cnn_path", "nhwc_matmul_path", "batch1_opset9_path",
                                     "residual_path", "digits_cnn_path"])
def test_engine_matches_standalone_chip_files(fixture, mode, request, tmp_path):
    """Both engine modes against each chip's own ONNX file; the baked session IS that file's
    graph, so it must agree bit for bit (with the same threads)."""
    pop = make_population(request.getfixturevalue(fixture), count=3)
    model = pop.model
    n = 5
    pixels = np.random.default_rng(1).random((n, *model.contract.image_shape), dtype=np.float32)
    fast = population_logits(pop, pixels, progress=False, threads=1, mode=mode)
    for index in range(3):
        path = tmp_path / f"chip{index}.onnx"
        path.write_bytes(pop.chip_model(index).SerializeToString())
        session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
        x = model.contract.normalize(pixels)
        step = model.fixed_batch or n
        slow = np.concatenate([session.run(None, {model.input_name: x[i:i + step]})[0]
                               for i in range(0, n, step)])
        np.testing.assert_allclose(fast[index], slow, rtol=1e-4, atol=1e-5)
        if mode == "baked" and not model.fixed_batch:
            assert fast[index].tobytes() == slow.astype(np.float32).tobytes()
    nominal = ChipSimulator(model).logits(ChipSimulator(model).nominal_weights(), pixels)
    assert not np.allclose(fast[0], nominal, atol=1e-4), "chips must differ from the nominal model"


def test_only_crossbar_weights_change(tiny_cnn_path):
    pop = make_population(tiny_cnn_path)
    crossbar = {layer.name for layer in pop.model.layers}
    nominal = {i.name: numpy_helper.to_array(i) for i in pop.model.proto.graph.initializer}
    chip = {i.name: numpy_helper.to_array(i) for i in pop.chip_model(0).graph.initializer}
    assert nominal.keys() == chip.keys()
    for name in nominal:
        same = np.array_equal(nominal[name], chip[name])
        assert same == (name not in crossbar), name


def test_simulation_threads_follow_egis_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from egis.toolkit.runtime import default_threads, session_options

    monkeypatch.setenv("EGIS_THREADS", "1")
    assert default_threads() == 1 and session_options().intra_op_num_threads == 1
    assert session_options(3).intra_op_num_threads == 3  # an explicit count wins
    monkeypatch.delenv("EGIS_THREADS")
    assert default_threads() == min(2, os.cpu_count() or 1)
    for bad in ("0", "two"):
        monkeypatch.setenv("EGIS_THREADS", bad)
        with pytest.raises(EgisError, match="EGIS_THREADS"):
            default_threads()


def test_engine_mode_follows_the_image_count(tiny_cnn_path):
    from egis.toolkit.engine import BAKED_MIN_IMAGES

    sim = ChipSimulator(load_model(tiny_cnn_path))
    assert not sim.bakes(BAKED_MIN_IMAGES - 1) and sim.bakes(BAKED_MIN_IMAGES)
    assert ChipSimulator(load_model(tiny_cnn_path), mode="baked").bakes(1)
    assert not ChipSimulator(load_model(tiny_cnn_path), mode="inputs").bakes(10**6)
    with pytest.raises(ValueError, match="engine mode"):
        ChipSimulator(load_model(tiny_cnn_path), mode="fast")


# Chip bytes of format-1 specs, recorded before format 2 existed (egis d5d48e6): old specs
# must rebuild exactly these bytes forever (sha256 over the chip's crossbar matrices).
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
FORMAT1_CHIPS = [
    ("models/digits/populations/typical/labelled.json", None, 0, "349a37d50ca5bf48"),
    ("models/digits/populations/typical/labelled.json", None, 1, "72a322a917068818"),
    ("models/digits/model.onnx", {"preset": "typical", "placement": "independent", "lam": 0.05}, 0,
     "1f6e32eb98688fc9"),
    ("models/digits/model.onnx", {"preset": "typical", "placement": "independent", "lam": 0.05}, 3,
     "930a2a971fbc5985"),
]


def _chip_sha(pop: Population, index: int) -> str:
    import hashlib

    digest = hashlib.sha256()
    for matrix in pop.chip_matrices(index):
        digest.update(matrix.tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("source,params,index,expected", FORMAT1_CHIPS)
def test_format1_specs_rebuild_their_recorded_bytes(source, params, index, expected):
    from egis.toolkit.population import open_population

    if not (ROOT / source).exists():
        pytest.skip(f"{source} absent")
    if params is None:
        pop = open_population(ROOT / source, ROOT / "models/digits/model.onnx")
        assert pop.spec.format_version == 1
    else:
        model = load_model(ROOT / source)
        pop = Population(PopulationSpec(model.sha256, "generic", params, 3, 4, format_version=1), model)
    assert _chip_sha(pop, index) == expected
    if params is not None:   # the same spec at format 2 draws other bytes
        v2 = Population(PopulationSpec(pop.model.sha256, "generic", params, 3, 4, format_version=2),
                        pop.model)
        assert _chip_sha(v2, index) != expected
        assert v2.spec.sha256() != pop.spec.sha256()


# Chip bytes of newer formats on the digits model (seed 3), which their specs must rebuild
# forever: format 2's recorded before format 3 existed (egis 207fee8), format 3's (band-limited
# fields) when it was made (2026-12-05; a change to version-3 draws needs a format 4).
GOLDEN_CHIPS = [
    (2, {"preset": "typical"}, 0, "6e36f4fa8ee082f5"),
    (2, {"preset": "typical"}, 3, "48b63a018bea954d"),
    (2, {"preset": "typical", "placement": "independent", "lam": 0.05}, 0, "52ca47f4e06f9d77"),
    (2, {"preset": "custom", "sys_share": 0.0, "cor_share": 1.0}, 3, "457b7587755bd9d0"),
    (3, {"preset": "typical"}, 0, "6047dc4ab510b16b"),
    (3, {"preset": "typical"}, 3, "f403f759e303c39a"),
    (3, {"preset": "typical", "placement": "independent", "lam": 0.05}, 0, "592422102880dfcf"),
    (3, {"preset": "custom", "sys_share": 0.0, "cor_share": 1.0}, 3, "d620eb4931baf1b7"),
]


@pytest.mark.parametrize("version,params,index,expected", GOLDEN_CHIPS)
def test_format2_and_3_specs_rebuild_their_recorded_bytes(version, params, index, expected):
    model = load_model(ROOT / "models/digits/model.onnx")
    pop = Population(PopulationSpec(model.sha256, "generic", params, 3, 4, format_version=version), model)
    assert _chip_sha(pop, index) == expected
    if version == 2:   # the same spec at the default format (3) draws other bytes
        v3 = Population(PopulationSpec(model.sha256, "generic", params, 3, 4), model)
        assert v3.spec.format_version == FORMAT_VERSION == 3
        assert _chip_sha(v3, index) != expected and v3.spec.sha256() != pop.spec.sha256()


@pytest.mark.parametrize("version", [0, 4, "2", True])
def test_unknown_format_versions_are_refused_naming_the_readable_ones(tmp_path, tiny_cnn_path, version):
    pop = make_population(tiny_cnn_path)
    data = pop.spec.to_dict()
    data["format_version"] = version
    with pytest.raises(PopulationError, match="rebuilds versions 1, 2, 3"):
        PopulationSpec.from_dict(data)
