"""convt.torch: the Keras layers as torch modules, equal to the NumPy layers in every way."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import convt  # noqa: E402
import convt.torch as ct  # noqa: E402
from convt import activations  # noqa: E402
from tests import hostile  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

LAYER_CASES = [
    (1, dict(filters=3, kernel_size=4, strides=2, padding="same"), (2, 5, 2)),
    (1, dict(filters=2, kernel_size=3, strides=3, output_padding=1), (1, 4, 3)),
    (2, dict(filters=3, kernel_size=3, strides=2, padding="same",
             data_format="channels_first"), (2, 2, 5, 4)),
    (2, dict(filters=2, kernel_size=(2, 3), dilation_rate=2, activation="tanh"), (1, 4, 4, 3)),
    (3, dict(filters=2, kernel_size=3, strides=(2, 1, 2), padding="same"), (1, 3, 2, 3, 2)),
]
NUMPY_LAYERS = {1: convt.Conv1DTranspose, 2: convt.Conv2DTranspose, 3: convt.Conv3DTranspose}
TORCH_LAYERS = {1: ct.Conv1DTranspose, 2: ct.Conv2DTranspose, 3: ct.Conv3DTranspose}


def _pair(rank, kwargs, shape, **extra):
    """A NumPy layer and a torch layer with the same weights, built for ``shape``."""
    x = np.random.default_rng(0).standard_normal(shape)
    reference = NUMPY_LAYERS[rank](**kwargs, dtype="float64", **extra)
    expected = reference(x)
    layer = TORCH_LAYERS[rank](**kwargs, dtype="float64", **extra)
    layer(torch.from_numpy(x))
    layer.set_weights(reference.get_weights())
    return reference, layer, x, expected


@pytest.mark.parametrize("rank, kwargs, shape", LAYER_CASES)
def test_values_config_and_weights_equal_the_numpy_layer(rank, kwargs, shape):
    reference, layer, x, expected = _pair(rank, kwargs, shape)
    got = layer(torch.from_numpy(x))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    config, torch_config = reference.get_config(), layer.get_config()
    assert {k: v for k, v in torch_config.items() if k != "name"} == {
        k: v for k, v in config.items() if k != "name"}
    assert layer.compute_output_shape(shape) == reference.compute_output_shape(shape)
    assert layer.count_params() == reference.count_params()
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in reference.get_weights()]
    clone = type(layer).from_config(torch_config | {"name": "clone"})
    clone(torch.from_numpy(x))
    clone.set_weights(layer.get_weights())
    torch.testing.assert_close(clone(torch.from_numpy(x)), got)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=0, kernel_size=3), "Received filters=0"),
        (dict(filters=2, kernel_size=3, strides=2, output_padding=2), "strictly less"),
        (dict(filters=2, kernel_size=3, strides=2, dilation_rate=2), "in conjunction"),
        (dict(filters=2, kernel_size=3, padding="full"), "Received: padding='full'"),
        (dict(filters=2, kernel_size=3, use_bias=1), "Received: use_bias=1"),
        (dict(filters=2, kernel_size=3, trainable="yes"), "Received: trainable='yes'"),
        (dict(filters=2, kernel_size=3, colour="red"), "Unrecognized keyword"),
    ],
)
def test_validation_is_the_numpy_layers(kwargs, message):
    for cls in (convt.Conv2DTranspose, ct.Conv2DTranspose):
        with pytest.raises(ValueError, match=message):
            cls(**kwargs)


def test_positional_order_is_keras():
    layer = ct.Conv3DTranspose(4, 3, 2, "same", "channels_first", 1)
    assert (layer.data_format, layer.output_padding) == ("channels_first", (1, 1, 1))
    layer = ct.Conv2DTranspose(4, 3, 2, "same", 1, "channels_first")
    assert (layer.data_format, layer.output_padding) == ("channels_first", (1, 1))


def test_lazy_build_then_eager_build():
    layer = ct.Conv2DTranspose(4, 3)
    assert not layer.built
    assert isinstance(layer.kernel, torch.nn.parameter.UninitializedParameter)
    layer(torch.zeros(1, 5, 5, 2))
    assert layer.built and layer.kernel.shape == (3, 3, 4, 2) and layer.bias.shape == (4,)
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 2"):
        layer(torch.zeros(1, 5, 5, 3))
    eager = ct.Conv2DTranspose(4, 3, input_shape=(None, None, 2))
    assert eager.built and [p.shape for p in eager.parameters()] == [(3, 3, 4, 2), (4,)]
    with pytest.raises(ValueError, match="expected min_ndim=4, found ndim=3"):
        eager(torch.zeros(1, 5, 2))


def test_torch_manual_seed_makes_initial_weights_reproducible():
    def weights():
        torch.manual_seed(3)
        return ct.Conv1DTranspose(2, 3, input_shape=(None, 2)).get_weights()[0]

    np.testing.assert_array_equal(weights(), weights())
    seeded = ct.Conv1DTranspose(2, 3, kernel_initializer={"class_name": "GlorotUniform",
                                                           "config": {"seed": 7}},
                                input_shape=(None, 2))
    numpy_seeded = convt.Conv1DTranspose(2, 3, kernel_initializer={
        "class_name": "GlorotUniform", "config": {"seed": 7}}, input_shape=(None, 2))
    np.testing.assert_array_equal(seeded.get_weights()[0], numpy_seeded.get_weights()[0])


def test_weights_move_between_numpy_and_torch_layers_and_state_dict_round_trips():
    layer = ct.Conv2DTranspose(3, 2, 2, input_shape=(4, 4, 2))
    numpy_layer = convt.Conv2DTranspose(3, 2, 2, input_shape=(4, 4, 2))
    numpy_layer.set_weights(layer.get_weights())
    x = np.random.default_rng(1).standard_normal((1, 4, 4, 2)).astype("float32")
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), numpy_layer(x),
                               rtol=1e-5, atol=1e-6)
    lazy = ct.Conv2DTranspose(3, 2, 2)
    lazy.load_state_dict(layer.state_dict())
    assert lazy.kernel.shape == (2, 2, 3, 2)
    torch.testing.assert_close(lazy(torch.from_numpy(x)), layer(torch.from_numpy(x)))
    with pytest.raises(ValueError, match="weight shape"):
        layer.set_weights([np.zeros((1, 1, 3, 2)), np.zeros(3)])


@pytest.mark.parametrize("layer, order", [
    (lambda: ct.Conv2DTranspose(3, 3, 2, input_shape=(4, 4, 2)), (3, 2, 0, 1)),  # operator
    (lambda: ct.Conv1DTranspose(3, 4, 4, input_shape=(5, 2)), (0, 1, 2)),  # tiles
])
def test_kernel_is_stored_as_the_backend_reads_it_through_training_and_loading(layer, order):
    layer = layer()
    strides = layer.kernel.stride()
    assert strides == torch.empty([layer.kernel.shape[a] for a in order]).permute(
        sorted(range(len(order)), key=order.__getitem__)).stride()
    optimizer = torch.optim.Adam(layer.parameters())
    layer(torch.ones(2, *(5,) * layer.rank, 2)).square().sum().backward()
    optimizer.step()
    assert layer.kernel.grad.stride() == strides and layer.kernel.stride() == strides
    assert optimizer.state[layer.kernel]["exp_avg"].stride() == strides
    lazy = type(layer)(3, layer.kernel_size, layer.strides)
    lazy.load_state_dict(layer.state_dict())
    assert lazy.kernel.stride() == strides
    np.testing.assert_array_equal(lazy.get_weights()[0], layer.get_weights()[0])
    assert layer.get_weights()[0].flags.c_contiguous
    assert layer.double().kernel.stride() == strides


def test_losses_are_differentiable_tensors():
    layer = ct.Conv1DTranspose(
        2, 3, kernel_regularizer={"class_name": "L2", "config": {"l2": 0.5}},
        bias_regularizer="l1", activity_regularizer={"class_name": "L1", "config": {"l1": 0.1}},
        bias_initializer="ones", dtype="float64",
    )
    out = layer(torch.ones(2, 4, 1, dtype=torch.float64))
    activity, kernel_penalty, bias_penalty = layer.losses
    kernel = layer.kernel.detach()
    torch.testing.assert_close(kernel_penalty, 0.5 * kernel.square().sum())
    torch.testing.assert_close(bias_penalty, torch.tensor(0.02, dtype=torch.float64))
    torch.testing.assert_close(activity, 0.1 * out.detach().abs().sum() / 2)
    sum(layer.losses).backward()
    torch.testing.assert_close(layer.kernel.grad[..., 0].sum(0).abs() > 0,
                               torch.ones(2, dtype=torch.bool))
    numpy_layer = convt.Conv1DTranspose(2, 3, kernel_regularizer={
        "class_name": "L2", "config": {"l2": 0.5}}, dtype="float64", input_shape=(4, 1))
    numpy_layer.set_weights([kernel.numpy(), np.ones(2)])
    assert float(numpy_layer.losses[0]) == pytest.approx(kernel_penalty.detach().item())


@pytest.mark.parametrize("constraint", ["non_neg", "max_norm", "unit_norm",
                                        {"class_name": "MinMaxNorm",
                                         "config": {"min_value": 0.5, "max_value": 0.8,
                                                    "rate": 0.5, "axis": [0, 1]}}])
def test_constraints_after_each_optimizer_step(constraint):
    def trained(register):
        torch.manual_seed(0)
        layer = ct.Conv1DTranspose(3, 3, 2, kernel_constraint=constraint,
                                   bias_constraint="non_neg", input_shape=(None, 2))
        model = torch.nn.Sequential(layer, torch.nn.ReLU())
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        if register:
            ct.register_constraints(optimizer, model)
        model(torch.randn(4, 5, 2)).square().mean().backward()
        optimizer.step()
        return layer.get_weights()

    (kernel, bias), (free_kernel, free_bias) = trained(True), trained(False)
    projection = convt.constraints.get(constraint)
    np.testing.assert_allclose(kernel, projection(free_kernel), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bias, np.maximum(free_bias, 0))


@pytest.mark.parametrize("name", sorted(set(activations._REGISTRY.names) - {"glu"}))
def test_every_activation_computes_in_torch_as_in_numpy(name):
    x = np.linspace(-4, 4, 41).reshape(1, 41, 1)
    layer = ct.Conv1DTranspose(1, 1, activation=name, kernel_initializer="ones", dtype="float64")
    got = layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, activations.get(name)(x), rtol=1e-12, atol=1e-12)


def test_glu_halves_the_channels_and_foreign_activations():
    layer = ct.Conv1DTranspose(4, 1, activation="glu")
    assert layer(torch.ones(1, 3, 2)).shape == (1, 3, 2)
    layer = ct.Conv1DTranspose(2, 1, activation=torch.nn.functional.softplus)
    assert layer(torch.ones(1, 3, 2)).shape == (1, 3, 2)
    with pytest.raises(ValueError, match="computes on torch tensors"):
        ct.Conv1DTranspose(2, 1, activation=np.tanh)
    layer = ct.Conv1DTranspose(2, 1, activation=lambda x: 1.0)
    with pytest.raises(TypeError, match="take and return torch tensors"):
        layer(torch.ones(1, 3, 2))


def test_trainable_false_freezes_parameters():
    layer = ct.Conv1DTranspose(2, 3, trainable=False, input_shape=(None, 1))
    assert not any(p.requires_grad for p in layer.parameters())
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    layer.trainable = True
    assert all(p.requires_grad for p in layer.parameters())
    with pytest.raises(ValueError, match=r"Expected `trainable` to be a boolean. "
                                         r"Received: trainable='no' \(of type str\)"):
        layer.trainable = "no"
    assert layer.trainable is True and all(p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("value", [None, np.ones(1), np.ones((2, 1))])
def test_initializer_returning_other_than_its_shape_materializes_nothing(value):
    layer = ct.Conv1DTranspose(2, 3, bias_initializer=lambda shape, dtype=None: value)
    with pytest.raises(ValueError, match=r"Expected `bias_initializer` to return numbers of "
                                         r"shape \(2,\). Received: "):
        layer(torch.ones(1, 4, 1))
    assert not layer.built and layer.has_uninitialized_params() and layer.weights == []
    layer.bias_initializer = convt.initializers.get("zeros")
    assert layer(torch.ones(1, 4, 1)).shape == (1, 6, 2)


def test_weights_and_outputs_larger_than_the_machine_are_refused(monkeypatch):
    """Both layers refuse before allocating a kernel whose float64 initial values do not
    fit twice in memory (NumPy's MemoryError or the system's OOM killer before). On torch,
    whose layers call the backend without the op, so does an output (a fuzzed
    ``dilation_rate=10**9`` had the process killed)."""
    monkeypatch.setattr(convt._shapes, "PHYSICAL_MEMORY", 2**20)
    for cls, x in ((convt.Conv2DTranspose, np.ones((1, 2, 2, 32))),
                   (ct.Conv2DTranspose, torch.ones(1, 2, 2, 32))):
        layer = cls(512, 3)
        with pytest.raises(ValueError, match=r"Expected a kernel that fits twice in this "
                                             r"machine's 1048576 bytes of memory. Received: "
                                             r"kernel_shape=\(3, 3, 512, 32\), 1179648 bytes"):
            layer(x)
        assert not layer.built
    layer = ct.Conv2DTranspose(2, 2, strides=(256, 128))
    with pytest.raises(ValueError, match=r"Expected an output that fits twice in this machine's "
                                         r"1048576 bytes of memory. Received: output_shape="
                                         r"\(2, 512, 256, 2\), 2097152 bytes"):
        layer(torch.ones(2, 2, 2, 1))
    assert layer(torch.ones(2, 1, 1, 1)).shape == (2, 256, 128, 2)  # 512 KiB, twice fits
    expanded = torch.ones(1).expand(4, 256, 256, 1)  # 4 bytes held, 1 MiB read
    with pytest.raises(ValueError, match=r"Expected an input that fits twice in this machine's "
                                         r"1048576 bytes of memory. Received: input_shape="
                                         r"\(4, 256, 256, 1\), 1048576 bytes"):
        convt.ops.conv_transpose(expanded, torch.ones(1, 1, 1, 1))


def test_numpy_layers_name_the_tensors_numpy_cannot_read():
    """A bfloat16 or sparse tensor given to a NumPy layer: torch's own TypeError said
    neither what was expected nor which argument it was."""
    for tensor in (torch.ones(1, 3, 2, dtype=torch.bfloat16), torch.ones(1, 3, 2).to_sparse()):
        with pytest.raises(TypeError, match=r"Expected `inputs` to be an array that NumPy can "
                                            r"read. Received: inputs of type Tensor, which "
                                            r"could not be read \("):
            convt.Conv1DTranspose(2, 3)(tensor)


def test_dtypes_follow_to_and_the_policy():
    layer = ct.Conv2DTranspose(2, 3, input_shape=(None, None, 1))
    layer.to(torch.float64)
    assert layer(torch.ones(1, 3, 3, 1)).dtype == torch.float64
    lazy = ct.Conv2DTranspose(2, 3).to(torch.float64)
    lazy(torch.ones(1, 3, 3, 1))
    assert lazy.kernel.dtype == torch.float64
    mixed = ct.Conv2DTranspose(2, 3, dtype="mixed_float16")
    out = mixed(torch.ones(1, 3, 3, 1))
    assert (mixed.kernel.dtype, out.dtype) == (torch.float32, torch.float16)
    bf16 = ct.Conv2DTranspose(2, 3, input_shape=(None, None, 1)).to(torch.bfloat16)
    assert bf16(torch.ones(1, 3, 3, 1)).dtype == torch.bfloat16
    assert bf16.get_weights()[0].dtype == np.float32


def test_modules_compose_and_train():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 2 * 2 * 8), torch.nn.Unflatten(1, (2, 2, 8)),
        ct.Conv2DTranspose(4, 3, 2, "same", activation="relu"),
        ct.Conv2DTranspose(1, 4, 2, "same"),
    )
    model(torch.zeros(1, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, target = torch.randn(8, 4), torch.randn(8, 8, 8, 1)
    first = None
    for _ in range(20):
        optimizer.zero_grad()
        loss = (model(x) - target).square().mean()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_torch_compile():
    torch.manual_seed(0)
    layer = ct.Conv2DTranspose(3, 3, 2, "same", activation="relu", input_shape=(None, None, 2))
    x = torch.randn(2, 5, 4, 2, requires_grad=True)
    compiled = torch.compile(layer)
    torch.testing.assert_close(compiled(x), layer(x))
    compiled(x).sum().backward()
    assert x.grad is not None and layer.kernel.grad is not None


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.parametrize("filters", [1, 16])  # the fold route and torch's operator
def test_torch_compile_trains_a_sequential_of_layers_in_one_graph(filters):
    """Two layers of one class, of different shapes, in an ``nn.Sequential``: one graph (a
    graph break in each layer's input check made torch recompile the second layer with
    symbolic sizes, which Inductor failed on), and eager's weights after three steps."""
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            ct.Conv2DTranspose(8, 3, 2, "same", activation="relu", input_shape=(7, 7, 64)),
            ct.Conv2DTranspose(filters, 5, 2, "same", input_shape=(14, 14, 8)))

    x = torch.randn(16, 7, 7, 64)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model())(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    weights = []
    for compiled in (False, True):
        module = model()
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
        step = torch.compile(module) if compiled else module
        for _ in range(3):
            optimizer.zero_grad()
            step(x).square().mean().backward()
            optimizer.step()
        weights.append(list(module.parameters()))
    for got, expected in zip(*weights):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_torch_compile_trains_channels_last_layers_on_changing_sizes():
    """Two channels_last 2-D layers with biases, compiled, on three input sizes (symbolic from
    the second): eager's outputs and gradients. Without the contiguous window before the bias,
    Inductor failed on the second size (pytorch#185510)."""
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            ct.Conv2DTranspose(8, 3, 2, "same", activation="relu", input_shape=(None, None, 16)),
            ct.Conv2DTranspose(16, 4, 2, "same", input_shape=(None, None, 8)))

    compiled_model, eager_model = model(), model()
    torch._dynamo.reset()
    compiled = torch.compile(compiled_model)
    for size in (5, 6, 8):
        x = torch.randn(4, size, size, 16)
        got, expected = compiled(x), eager_model(x)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        grads = [torch.autograd.grad(out.square().mean(), list(module.parameters()))
                 for out, module in ((got, compiled_model), (expected, eager_model))]
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_converters_round_trip_exactly():
    module = torch.nn.ConvTranspose2d(3, 5, (4, 3), stride=(2, 1), padding=(1, 1),
                                      dilation=1, bias=True).double()
    layer = ct.from_torch(module)
    assert (layer.padding, layer.output_padding) == ("same", None)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), module(x))
    back = ct.to_torch(layer)
    assert (back.padding, back.output_padding) == (module.padding, module.output_padding)
    torch.testing.assert_close(back(x), module(x))
    valid = torch.nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1, bias=False)
    layer = ct.from_torch(valid)
    assert (layer.padding, layer.output_padding, layer.use_bias) == ("valid", (1,), False)
    x1 = torch.randn(1, 2, 6)
    torch.testing.assert_close(layer(x1), valid(x1))
    numpy_layer = convt.Conv1DTranspose(3, 3, 2, "valid", 1, "channels_first", use_bias=False,
                                        input_shape=(2, None))
    numpy_layer.set_weights(layer.get_weights())
    torch.testing.assert_close(ct.to_torch(numpy_layer)(x1), valid(x1))


@pytest.mark.parametrize(
    "module, message",
    [
        (torch.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
         "No Keras padding"),
        (torch.nn.ConvTranspose2d(2, 2, 3, groups=2), "Received: groups=2"),
        (torch.nn.ConvTranspose1d(2, 2, 3, padding_mode="zeros", padding=5), "No Keras padding"),
        (torch.nn.ConvTranspose1d(2, 2, 3, stride=2, dilation=2), "in conjunction"),
        (torch.nn.Conv1d(2, 2, 3), "Expected a torch.nn.ConvTranspose1d"),
    ],
)
def test_from_torch_refuses_what_keras_cannot_express(module, message):
    with pytest.raises(ValueError, match=message):
        ct.from_torch(module)


@pytest.mark.parametrize(
    "layer, message",
    [
        (ct.Conv1DTranspose(2, 3, 2, "same", data_format="channels_first",
                            input_shape=(1, None)), "cannot express"),
        (ct.Conv1DTranspose(2, 3, input_shape=(None, 1)), "channels_first"),
        (ct.Conv1DTranspose(2, 3, data_format="channels_first", activation="relu",
                            input_shape=(1, None)), "no activation"),
        (ct.Conv1DTranspose(2, 3), "built=False"),
    ],
)
def test_to_torch_refuses_what_torch_cannot_express(layer, message):
    with pytest.raises(ValueError, match=message):
        ct.to_torch(layer)


def test_missing_torch_names_the_install_command():
    code = "import sys; sys.modules['torch'] = None; import convt; import convt.torch"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "pip install torch" in done.stderr


@CUDA
def test_layers_run_on_cuda():
    layer = ct.Conv2DTranspose(3, 3, 2, "same").cuda()
    x = torch.randn(2, 5, 5, 4, device="cuda")
    out = layer(x)
    assert out.device.type == "cuda" and layer.kernel.device.type == "cuda"
    cpu = ct.Conv2DTranspose(3, 3, 2, "same", input_shape=(None, None, 4))
    cpu.set_weights(layer.get_weights())
    torch.testing.assert_close(out.cpu(), cpu(x.cpu()), rtol=1e-4, atol=1e-4)
    out.sum().backward()
    assert layer.kernel.grad.device.type == "cuda"


def test_regularizers_beyond_the_built_ins():
    layer = ct.Conv1DTranspose(2, 3, kernel_regularizer=lambda w: w.sum(), input_shape=(None, 1))
    torch.testing.assert_close(layer.losses[0], layer.kernel.sum())
    for argument in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        with pytest.raises(ValueError, match=f"other ranks. Received: {argument}="):
            ct.Conv1DTranspose(2, 3, **{argument: "orthogonal_regularizer"},
                               input_shape=(None, 1))


def test_an_unbuilt_layer_refuses_a_state_dict_its_config_does_not_allow():
    source = ct.Conv1DTranspose(8, 3, strides=2, padding="same", input_shape=(None, 2))
    lazy = ct.Conv1DTranspose(4, 5, strides=2, padding="same")
    with pytest.raises(RuntimeError, match=r"size mismatch for kernel: copying a param with "
                                           r"shape \(3, 8, 2\) from checkpoint, the shape in "
                                           r"current model is \(5, 4, in_channels\)"):
        lazy.load_state_dict(source.state_dict())
    assert not lazy.built and lazy.has_uninitialized_params()
    good = ct.Conv1DTranspose(4, 5, strides=2, padding="same", input_shape=(None, 3))
    lazy.load_state_dict(good.state_dict())
    x = torch.randn(1, 6, 3)
    torch.testing.assert_close(lazy(x), good(x))


def test_a_partly_loaded_layer_keeps_what_it_loaded_and_builds_the_rest():
    source = ct.Conv1DTranspose(2, 3, input_shape=(None, 4), bias_initializer="ones")
    lazy = ct.Conv1DTranspose(2, 3)
    result = lazy.load_state_dict({"kernel": source.kernel.detach()}, strict=False)
    assert result.missing_keys == ["bias"] and not lazy.built
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 4"):
        lazy(torch.ones(1, 5, 3))
    lazy(torch.ones(1, 5, 4))
    torch.testing.assert_close(lazy.kernel, source.kernel)
    assert not lazy.bias.any()  # its own initializer's zeros


def test_a_failed_build_from_the_weights_argument_leaves_the_layer_lazy():
    weights = [np.ones((3, 3, 4, 2), "float32"), np.zeros(4, "float32")]
    layer = ct.Conv2DTranspose(4, 3, weights=weights)
    with pytest.raises(ValueError, match="not compatible with provided weight shape"):
        layer(torch.ones(1, 5, 5, 3))
    assert not layer.built and layer.has_uninitialized_params()
    out = layer(torch.ones(1, 5, 5, 2))
    np.testing.assert_array_equal(layer.get_weights()[0], weights[0])
    assert tuple(out.shape) == (1, 7, 7, 4)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (np.ones((1, 4, 1), "float32"),
         "Layer 'up' is a torch module and expects a torch.Tensor. Received: inputs of type "
         "ndarray"),
        (torch.ones(1, 4, 1, dtype=torch.complex64),
         r"Layer 'up' expects dense real-valued numeric inputs. Received: "
         r"inputs.dtype=torch.complex64, inputs.layout=torch.strided"),
    ],
)
def test_inputs_that_are_not_real_tensors_are_refused(inputs, message):
    for layer in (ct.Conv1DTranspose(2, 3, name="up"),
                  ct.Conv1DTranspose(2, 3, name="up", input_shape=(4, 1))):
        with pytest.raises(TypeError, match=message):
            layer(inputs)


def test_layers_pickle_with_every_kind_of_argument(tmp_path):
    layer = ct.Conv1DTranspose(3, 3, 2, activation="leaky_relu", kernel_regularizer="l2",
                               bias_regularizer="l1", kernel_constraint="max_norm",
                               bias_constraint="non_neg", activity_regularizer="l1l2",
                               input_shape=(None, 2))
    path = tmp_path / "layer.pt"
    torch.save(layer, path)
    loaded = torch.load(path, weights_only=False)
    x = torch.randn(2, 5, 2)
    torch.testing.assert_close(loaded(x), layer(x))
    torch.testing.assert_close(sum(loaded.losses), sum(layer.losses))
    loaded.apply_constraints()


def test_bfloat16_before_the_first_call():
    # torch's lazy parameters refuse .bfloat16() (LazyLinear too); convt's follow it
    model = torch.nn.Sequential(ct.Conv2DTranspose(2, 3, strides=2)).bfloat16()
    layer = model[0]
    assert layer.dtype == "bfloat16" and not layer.built
    x = torch.randn(2, 4, 4, 3)
    got = model(x.bfloat16())
    assert got.dtype == layer.kernel.dtype == layer.bias.dtype == torch.bfloat16
    kernel, bias = (torch.from_numpy(w) for w in layer.get_weights())
    expected = convt.ops.conv_transpose(x.bfloat16().float(), kernel, strides=2) + bias
    torch.testing.assert_close(got.float(), expected, rtol=2e-2, atol=2e-2)


def test_dtype_policy_follows_the_parameters():
    layer = ct.Conv2DTranspose(2, 3, input_shape=(None, None, 1)).double()
    assert layer.dtype == "float64" and layer.get_config()["dtype"]["config"]["name"] == "float64"
    copy = ct.Conv2DTranspose.from_config(layer.get_config())
    copy.set_weights(layer.get_weights())
    x = torch.randn(1, 3, 3, 1, dtype=torch.float64) * 1e3
    torch.testing.assert_close(copy(x), layer(x), rtol=0, atol=0)
    assert layer.half().dtype == "float16"
    assert layer.bfloat16().dtype == "bfloat16"
    assert layer.get_config()["dtype"]["config"]["name"] == "bfloat16"
    mixed = ct.Conv2DTranspose(2, 3, dtype="mixed_float16").double()
    assert mixed.dtype_policy.name == "mixed_float16"


@pytest.mark.parametrize(("dtype", "variable", "compute"), [
    ("bfloat16", torch.bfloat16, torch.bfloat16),
    (torch.bfloat16, torch.bfloat16, torch.bfloat16),
    ("mixed_bfloat16", torch.float32, torch.bfloat16),
])
def test_bfloat16_policies_as_keras_takes_them(dtype, variable, compute):
    layer = ct.Conv2DTranspose(3, 3, strides=2, padding="same", dtype=dtype)
    x = torch.randn(2, 5, 5, 4)
    out = layer(x)
    assert layer.kernel.dtype == variable and out.dtype == compute
    kernel, bias = layer.get_weights()  # NumPy has no bfloat16: float32 copies
    assert kernel.dtype == bias.dtype == np.float32
    expected = convt.ops.conv_transpose(
        x.to(compute).double().numpy(), kernel.astype(np.float64), strides=2, padding="same")
    torch.testing.assert_close(out.double(), torch.from_numpy(expected + bias), rtol=0.02,
                               atol=0.05)
    copy = ct.Conv2DTranspose.from_config(layer.get_config())
    copy.build(x.shape)
    copy.set_weights(layer.get_weights())
    assert torch.equal(copy(x), out)


@pytest.mark.parametrize("dtype", ["bfloat16", "mixed_bfloat16"])
def test_the_numpy_layers_refuse_bfloat16_and_say_where_it_is_taken(dtype):
    message = ("Expected `dtype` to be one of ['float16', 'float32', 'float64', "
               "'mixed_float16'] (NumPy has no bfloat16: the torch layers, convt.torch, take "
               f"'bfloat16' and 'mixed_bfloat16'). Received: dtype='{dtype}'")
    with pytest.raises(ValueError) as raised:
        convt.Conv2DTranspose(3, 3, dtype=dtype)
    assert str(raised.value) == message
    config = ct.Conv2DTranspose(3, 3, dtype=dtype).get_config()
    with pytest.raises(ValueError) as raised:
        convt.Conv2DTranspose.from_config(config)
    assert str(raised.value) == message


def test_converters_keep_bfloat16():
    module = torch.nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1).to(torch.bfloat16)
    layer = ct.from_torch(module)
    assert layer.kernel.dtype == torch.bfloat16
    x = torch.randn(1, 2, 5, dtype=torch.bfloat16)
    torch.testing.assert_close(layer(x), module(x), rtol=2e-2, atol=2e-2)
    assert ct.to_torch(layer).weight.dtype == torch.bfloat16


def test_set_weights_takes_parameters_and_constraints_get_detached_weights():
    source = ct.Conv1DTranspose(2, 3, input_shape=(4, 1))
    layer = ct.Conv1DTranspose(2, 3, input_shape=(4, 1),
                               kernel_constraint=lambda w: np.asarray(w).clip(0, 1))
    layer.set_weights(list(source.parameters()))
    torch.testing.assert_close(layer.kernel, source.kernel)
    with pytest.raises(TypeError, match="Expected the constraint of a convt.torch layer to take "
                                        "and return torch tensors .* returning ndarray"):
        layer.apply_constraints()


def test_to_torch_names_what_it_was_given():
    with pytest.raises(TypeError, match="Expected a convt Conv1DTranspose, Conv2DTranspose or "
                                        "Conv3DTranspose layer. Received: layer of type Linear"):
        ct.to_torch(torch.nn.Linear(2, 2))


def test_training_is_accepted_and_masks_are_refused():
    layer = ct.Conv1DTranspose(2, 3, name="up")
    x = torch.ones(1, 4, 1)
    torch.testing.assert_close(layer(x, training=True), layer(x))
    with pytest.raises(TypeError, match="Layer up does not support masking"):
        layer(x, mask=torch.ones(1, 4, dtype=torch.bool))


@pytest.mark.parametrize(
    ("layer_class", "kwargs", "shape"),
    [
        (ct.Conv2DTranspose, dict(filters=8, kernel_size=3, strides=2, padding="same",
                                  data_format="channels_first"), (2, 4, 5, 5)),  # operator
        (ct.Conv2DTranspose, dict(filters=8, kernel_size=2, strides=2,
                                  data_format="channels_first"), (2, 4, 5, 5)),  # tiles
        (ct.Conv1DTranspose, dict(filters=8, kernel_size=16, strides=8, padding="same"),
         (1, 20, 4)),  # rows
        (ct.Conv3DTranspose, dict(filters=4, kernel_size=3, strides=2, padding="same",
                                  kernel_regularizer="l2", activity_regularizer="l1",
                                  kernel_constraint="max_norm"), (1, 4, 4, 4, 2)),
    ],
)
def test_a_training_step_never_reads_a_value_on_the_host(layer_class, kwargs, shape):
    """On the meta device tensors have no values: any host sync (.item(), .numpy(), a Python
    branch on a tensor) would raise, so a step that runs there runs on a GPU without one."""
    layer = layer_class(**kwargs, input_shape=shape[1:]).to("meta")
    x = torch.empty(shape, device="meta", requires_grad=True)
    (layer(x).sum() + sum(layer.losses)).backward()
    layer.apply_constraints()
    assert x.grad.device.type == layer.kernel.grad.device.type == "meta"


def test_positional_training_builds_and_from_torch_keeps_a_requested_policy():
    layer = ct.Conv1DTranspose(2, 3)
    assert tuple(layer(torch.ones(1, 4, 1), False).shape) == (1, 6, 2)
    module = torch.nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1)
    assert ct.from_torch(module, dtype="float64").kernel.dtype == torch.float64


def test_numpy_layers_take_tensors_in_set_weights_and_refuse_complex_ones_first():
    layer = convt.Conv1DTranspose(2, 3, input_shape=(4, 1))
    before = layer.get_weights()
    kernel = torch.ones(before[0].shape, requires_grad=True)
    layer.set_weights([kernel, torch.zeros(2, dtype=torch.bfloat16)])
    np.testing.assert_array_equal(layer.get_weights()[0], kernel.detach().numpy())
    with pytest.raises(ValueError, match="to hold real numbers .* Received: dtype=torch.complex64"):
        layer.set_weights([np.zeros(before[0].shape), torch.zeros(2, dtype=torch.complex64)])
    np.testing.assert_array_equal(layer.get_weights()[0], kernel.detach().numpy())


@settings(max_examples=200, deadline=None)
@given(rank=st.integers(1, 3), arguments=st.dictionaries(
    st.sampled_from(hostile.LAYER_ARGUMENTS), st.sampled_from(hostile.HOSTILE_VALUES), max_size=3))
def test_hostile_arguments_build_a_working_module_or_are_refused_clearly(rank, arguments):
    hostile.build_and_call(TORCH_LAYERS[rank], rank, arguments, torch.ones)
