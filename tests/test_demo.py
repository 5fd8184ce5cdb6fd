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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--side", "513"], "--side must be from 8 to 512 (the sample photograph's shorter side). "
                            "Received: side=513"),
        (["--output", "picture"], "--output must name a .png file in an existing directory; it "
                                  "does not end in .png. Received: --output='picture'"),
        (["--train-output", "missing/t.png"], "its directory does not exist. Received: "
                                              "--train-output='missing/t.png'"),
        (["--output", "folder.png"], "it is a directory"),
    ],
)
def test_cli_refuses_bad_arguments_before_any_work(tmp_path, monkeypatch, capsys, arguments,
                                                   message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(SystemExit):
        cli.main(["demo", *arguments])
    error = capsys.readouterr().err
    assert message in error and error.startswith("usage: python -m convt demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png"]


def test_demo_refuses_sides_the_photograph_cannot_give():
    with pytest.raises(ValueError, match="Expected `side` from 8 to 512"):
        demo.load_picture(600)
