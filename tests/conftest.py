"""Shared fixtures: the model zoo, each model built once per test session.

Other areas' tests rely on: ``tiny_cnn_path`` (32x32x3 NCHW, dynamic batch),
``digits_cnn_path`` (8x8x1 NCHW), ``nhwc_matmul_path``, ``batch1_opset9_path`` and
``residual_path``; all are built with onnx.helper (no torch). ``torch_cnn_path`` and
``torch_opset9_path`` are real torch exports and skip without torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import model_zoo`

import model_zoo  # noqa: E402


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every zoo model of this session."""
    return tmp_path_factory.mktemp("zoo")


def _zoo_fixture(builder_name: str, *, needs_torch: bool = False):
    @pytest.fixture(scope="session")
    def fixture(zoo_dir: Path) -> Path:
        if needs_torch:
            pytest.importorskip("torch")
        return getattr(model_zoo, f"build_{builder_name}")(zoo_dir)

    fixture.__doc__ = getattr(model_zoo, f"build_{builder_name}").__doc__
    return fixture


tiny_cnn_path = _zoo_fixture("tiny_cnn")
digits_cnn_path = _zoo_fixture("digits_cnn")
nhwc_matmul_path = _zoo_fixture("nhwc_matmul")
residual_path = _zoo_fixture("residual")
batch1_opset9_path = _zoo_fixture("batch1_opset9")
constant_weights_path = _zoo_fixture("constant_weights")
fixed_batch4_path = _zoo_fixture("fixed_batch4")
unknown_output_shape_path = _zoo_fixture("unknown_output_shape")
torch_cnn_path = _zoo_fixture("torch_cnn", needs_torch=True)
torch_opset9_path = _zoo_fixture("torch_opset9", needs_torch=True)
two_inputs_path = _zoo_fixture("two_inputs")
int_input_path = _zoo_fixture("int_input")
rank3_output_path = _zoo_fixture("rank3_output")
int_output_path = _zoo_fixture("int_output")
corrupt_path = _zoo_fixture("corrupt")
