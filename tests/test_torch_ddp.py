"""DistributedDataParallel over 2 CPU processes trains convt layers as one process would."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

from examples import ddp_train  # noqa: E402


# float64 shows the equivalence exactly; in float32 the all-reduce sums the two halves in another
# order than the single process does, so a few ulps per step (seen: just over 1e-6) are expected.
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-5)])
def test_two_process_ddp_equals_single_process_training(dtype, tolerance):
    steps = 4
    distributed = ddp_train.train_distributed(steps, world_size=2, dtype=dtype)
    single = ddp_train.train_single(steps, dtype=dtype)
    untrained = ddp_train.make_model(getattr(torch, dtype)).state_dict()
    assert distributed.keys() == single.keys()
    assert ddp_train.max_difference(single, untrained) > 1e-3  # it did train
    assert ddp_train.max_difference(distributed, single) <= tolerance
