"""One CLI dialect: -o/--output everywhere, --chips for every chip selection, legacy spellings
kept as hidden aliases for a release; the one-line error contract for unexpected failures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from egis.cli.main import LEGACY_OPTIONS, describe_unexpected, translate_legacy
from egis.toolkit.errors import PopulationError
from egis.toolkit.population import parse_chip_range

WRITERS = [["compact"], ["synthesize"], ["demo"], ["label"], ["duts", "make"], ["duts", "export"], ["evaluate"]]


def egis(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "egis.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", WRITERS, ids=" ".join)
def test_every_writer_says_output_and_hides_legacy_names(command):
    text = egis(*command, "--help").stdout
    assert "--output" in text and "-o" in text
    assert "--out " not in text and "--range" not in text and "--seeds" not in text


def test_legacy_spellings_are_rewritten_with_a_warning():
    warnings: list[str] = []
    got = translate_legacy(["compact", "m.onnx", "--out", "cid", "-k", "4"], warnings.append)
    assert got == ["compact", "m.onnx", "--output", "cid", "-k", "4"]
    assert warnings == ["warning: compact --out is deprecated; use --output"]
    assert translate_legacy(["test", "b", "--range=0:5"]) == ["test", "b", "--chips=0:5"]
    assert translate_legacy(["evaluate", "m", "--seeds", "3"]) == ["evaluate", "m", "--seed-count", "3"]
    # only the command's own legacy names, and nothing after "--"
    assert translate_legacy(["label", "--out", "x"]) == ["label", "--out", "x"]
    assert translate_legacy(["compact", "--", "--out"]) == ["compact", "--", "--out"]
    assert set(LEGACY_OPTIONS) == {"compact", "synthesize", "demo", "test", "evaluate"}


def test_legacy_alias_reaches_the_command(tmp_path):
    """`--range` still selects chips of `egis test`: the command sees it as --chips."""
    result = egis("test", str(tmp_path / "no-bundle"), "--range", "0:2")
    assert "warning: test --range is deprecated; use --chips" in result.stderr
    assert result.returncode == 2 and "No such option" not in result.stderr


def test_chips_means_the_same_everywhere():
    assert parse_chip_range("3", 10) == [0, 1, 2]
    assert parse_chip_range(":3", 10) == [0, 1, 2]
    assert parse_chip_range("7:", 10) == [7, 8, 9]
    assert parse_chip_range("2:4", 10) == [2, 3]
    for bad in ("a:b", "x", "5:5"):
        with pytest.raises(PopulationError):
            parse_chip_range(bad, 10)


def test_demo_chips_is_a_count_from_zero(tmp_path):
    for bad in ("5:20", "abc", "3"):
        result = egis("demo", "--chips", bad, "-o", str(tmp_path / "d"))
        assert result.returncode == 2 and "--chips must be N or 0:N" in result.stderr, result.stderr
        assert not (tmp_path / "d").exists()


def test_unexpected_errors_are_one_line_naming_the_file(tmp_path):
    err = IsADirectoryError(21, "Is a directory")
    err.filename = str(tmp_path)
    assert describe_unexpected(err) == f"{tmp_path}: Is a directory"
    try:
        translate_legacy(None)  # a bug inside the project's own code
    except TypeError as exc:
        line = describe_unexpected(exc)
    assert line.startswith("unexpected TypeError: ") and "(at cli/main.py:" in line and "EGIS_DEBUG=1" in line
