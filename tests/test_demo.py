"""The main job runs end to end and shows what it claims."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the demo needs the 'demo' extra (matplotlib)")

from convt import cli, demo  # noqa: E402


def test_bilinear_kernel_interpolates_linearly():
    ramp = np.linspace(0.0, 1.0, 6).reshape(1, 6, 1, 1) * np.ones((1, 6, 6, 1))
    from convt import ops

    up = ops.conv_transpose(ramp, demo.bilinear_kernel(4, 1), strides=2, padding="same")
    inner = up[0, 4:-4, 4:-4, 0]
    steps = np.diff(inner, axis=0)
    np.testing.assert_allclose(steps, steps[0, 0], atol=1e-12)  # linear in between pixels


def test_demo_writes_the_picture_and_reports(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--output", str(out), "--side", "16", "--train-steps", "0"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "taps per pixel, k=3 s=2: 1 taps x 289, 2 taps x 510, 4 taps x 225" in printed
    assert str(out) in printed


def test_overlap_map_is_the_checkerboard():
    result = demo.run(side=8)
    assert result.bilinear.shape == result.uneven.shape == (16, 16, 3)
    np.testing.assert_array_equal(result.overlap[:3, :3], [[1, 1, 2], [1, 1, 2], [2, 2, 4]])


def test_cli_refuses_tiny_side(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--side", "2"])
    assert "Received: side=2" in capsys.readouterr().err
