"""Checkpoints without pickle: toolkit.torch_state round-trips every piece of training state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from egis.toolkit.torch_state import CheckpointError, load_state, save_state


def _trained_state():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(sgd, max_lr=0.1, total_steps=10)
    for _ in range(3):
        loss = model(torch.randn(16, 4)).square().mean()
        sgd.zero_grad()
        adam.zero_grad()
        loss.backward()
        sgd.step()
        adam.step()
        sched.step()
    return model, sgd, adam, sched


def _same(a, b) -> None:
    if isinstance(a, dict):  # an OrderedDict state_dict comes back as a plain dict
        assert isinstance(b, dict)
    else:
        assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert sorted(map(str, a)) == sorted(map(str, b))  # JSON may sort keys
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


def test_round_trip_keeps_types_and_values(tmp_path):
    model, sgd, adam, sched = _trained_state()
    state = {"model": model.state_dict(), "sgd": sgd.state_dict(), "adam": adam.state_dict(),
             "sched": sched.state_dict(), "rng": torch.get_rng_state(), "epoch": 3,
             "history": [{"epoch": 1, "loss": 0.5}], "array": np.arange(5.0)}
    save_state(tmp_path / "ckpt", state)
    back = load_state(tmp_path / "ckpt")
    np.testing.assert_array_equal(back.pop("array"), state.pop("array"))
    _same(state, back)
    assert isinstance(back["sgd"]["state"], dict) and all(isinstance(k, int) for k in back["sgd"]["state"])
    assert back["adam"]["param_groups"][0]["betas"] == (0.8, 0.99)


def test_restored_optimizer_continues_identically(tmp_path):
    model, sgd, _adam, _sched = _trained_state()
    save_state(tmp_path / "ckpt", {"model": model.state_dict(), "opt": sgd.state_dict()})
    clone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    clone_opt = torch.optim.SGD(clone.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    back = load_state(tmp_path / "ckpt")
    clone.load_state_dict(back["model"])
    clone_opt.load_state_dict(back["opt"])
    x = torch.randn(16, 4)
    for net, opt in ((model, sgd), (clone, clone_opt)):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)


def test_files_are_npz_and_json_without_pickle(tmp_path):
    save_state(tmp_path / "ckpt", {"w": torch.ones(2), "n": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.json", "ckpt.npz"]
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as data:
        assert "/w" in data.files
    assert json.loads((tmp_path / "ckpt.json").read_text())["state"]["n"] == 1


def test_missing_is_none_and_mismatched_pair_is_refused(tmp_path):
    assert load_state(tmp_path / "nothing") is None
    save_state(tmp_path / "a", {"w": torch.ones(2)})
    save_state(tmp_path / "b", {"w": torch.zeros(2)})
    (tmp_path / "a.json").write_bytes((tmp_path / "b.json").read_bytes())
    with pytest.raises(CheckpointError, match="different saves"):
        load_state(tmp_path / "a")
    (tmp_path / "b.npz").unlink()
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        load_state(tmp_path / "b")


def test_unsupported_objects_are_named(tmp_path):
    with pytest.raises(TypeError, match="/fn"):
        save_state(tmp_path / "ckpt", {"fn": print})
