"""The training demo: a digit generator of convt.torch layers, reproducible and pictured."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the training demo needs the 'demo' extra (torch)")
pytest.importorskip("sklearn", reason="the training demo needs the 'demo' extra (scikit-learn)")
pytest.importorskip("matplotlib", reason="the demo needs the 'demo' extra (matplotlib)")

from convt import cli, demo_train  # noqa: E402


def test_same_seed_same_picture_and_the_loss_falls():
    first, second = demo_train.train(60, seed=1), demo_train.train(60, seed=1)
    for name in ("originals", "reconstructions", "generated"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.losses == second.losses
    assert first.generated.shape == (10, 8, 8)
    assert np.mean(first.losses[-10:]) < 0.7 * first.losses[0]
    other = demo_train.train(5, seed=2)
    assert other.losses[0] != first.losses[0]


def test_cli_trains_with_a_progress_bar_and_writes_the_png(tmp_path, capsys):
    out, digits = tmp_path / "demo.png", tmp_path / "digits.png"
    assert cli.main(["demo", "--output", str(out), "--side", "8", "--train-steps", "20",
                     "--train-output", str(digits)]) == 0
    assert digits.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "step    20/20" in printed and "[" + "#" * 30 + "]" in printed
    assert f"wrote {digits.resolve()}" in printed


def test_cli_refuses_negative_steps(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--train-steps", "-1"])
    assert "Received: train_steps=-1" in capsys.readouterr().err
