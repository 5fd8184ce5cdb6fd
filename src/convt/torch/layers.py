"""Keras's transposed convolution layers as ``torch.nn.Module``s.

They take the Keras constructor (validated by the same code as the NumPy
layers: :class:`convt.layers.conv_transpose_config.ConvTransposeConfig` and
:class:`convt.layers.Layer`'s base arguments), keep their weights as
``torch.nn.Parameter`` in Keras's layout (``kernel`` ``(*kernel_size, filters,
in_channels)``, ``bias`` ``(filters,)``) and compute with
:mod:`convt.backends.torch`, so values equal Keras's on every device.

Kernel memory. The kernel has Keras's shape and indexing, but is stored in the
memory order the backend reads without a copy (torch's ``(in, filters,
*kernel_size)`` for torch's operator; see
:func:`convt.backends.torch.kernel_layout`): ``layer.kernel`` is then not
C-contiguous (use ``reshape``, not ``view``), and a step on channels_first
memory relays out neither it nor its gradient. On channels_last memory (Keras's
format), torch's CPU kernels want a channels_last weight: a training step copies
the kernel once, and torch its gradient back. ``get_weights`` returns
C-ordered arrays.

Building. Like torch's ``Lazy*`` modules, a layer creates its parameters from
the first input it sees (as uninitialized parameters until then, which follow
``.to(device, dtype)``); with ``input_shape=`` (or ``batch_input_shape=``) it
builds at once. Create the optimizer, and wrap the model in
``DistributedDataParallel``, after the first forward or an eager build.
Initial values come from convt's initializers; an unseeded random initializer
draws its seed from torch's generator, so ``torch.manual_seed`` makes them
reproducible.

Dtypes. Inputs are cast to the compute dtype, as Keras does: the parameters'
dtype (so ``.double()`` computes in float64), or the policy's compute dtype
for ``dtype="mixed_float16"``.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter, is_lazy

from convt.backends import torch as torch_backend
from convt.dtype_policies import DTypePolicy
from convt.layers.conv_transpose import ConvTranspose as NumpyConvTranspose
from convt.layers.conv_transpose_config import ConvTransposeConfig
from convt.layers.layer import Layer
from convt.layers.node_api import refuse_mask
from convt.torch.blocks import torch_activation, torch_constraint, torch_regularizer

_FOLLOWED_DTYPES = ("float16", "float32", "float64", "bfloat16")

_SIGNATURE = inspect.signature(NumpyConvTranspose.__init__)
"""The constructor's arguments: those of the NumPy layer, read rather than restated."""


class _LazyParameter(UninitializedParameter):
    """A parameter before the first call that also follows ``.bfloat16()``: torch's own
    refuses that method (it allows ``.half()`` and ``.to(torch.bfloat16)``), which broke
    ``module.bfloat16()`` on unbuilt layers."""

    _allowed_methods = [*UninitializedParameter._allowed_methods, torch.Tensor.bfloat16]


class ParameterVariable:
    """One parameter of a module seen through :class:`convt.Variable`'s interface.

    It lets the torch layers share :class:`convt.layers.Layer`'s weight
    methods (``get_weights``, ``set_weights``, ``losses``, ``apply_constraints``...).
    The regularizer and the constraint are their torch counterparts.
    """

    def __init__(
        self, module: torch.nn.Module, name: str, *, regularizer: Any, constraint: Any
    ) -> None:
        self._module = module
        self.name = name
        self.path = f"{module.name}/{name}"
        self.trainable = True
        self.regularizer = torch_regularizer(regularizer)
        self.constraint = torch_constraint(constraint)

    @property
    def value(self) -> torch.nn.Parameter:
        return getattr(self._module, self.name)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def numpy(self) -> np.ndarray:
        """A host copy (bfloat16 as float32, which NumPy lacks)."""
        value = self.value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy().copy()

    def assign(self, value: Any) -> None:
        """Copies ``value`` (array or tensor) into the parameter, outside autograd."""
        with torch.no_grad():
            self.value.copy_(torch.as_tensor(value))


class ConvTranspose(LazyModuleMixin, ConvTransposeConfig, torch.nn.Module):
    """Abstract N-D transposed convolution module (N = 1, 2, 3), Keras's layer in torch.

    Computes ``activation(conv_transpose(inputs, kernel) + bias)`` exactly as
    :func:`convt.ops.conv_transpose` does, differentiably.

    Args:
        rank, filters, kernel_size, strides, padding, output_padding,
        data_format, dilation_rate, activation, use_bias, kernel_initializer,
        bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint, **kwargs:
            as :class:`convt.layers.ConvTranspose`. Activations compute in
            torch (convt's names, or any callable on tensors); ``losses`` are
            differentiable 0-d tensors; constraints are applied by
            :meth:`apply_constraints`, which
            :func:`convt.torch.register_constraints` calls after each
            optimizer step. ``trainable=False`` turns off ``requires_grad``.

    Raises:
        ValueError: for any invalid argument, with Keras's message.
    """

    cls_to_become = None
    _holds_bfloat16 = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        arguments = _SIGNATURE.bind(self, *args, **kwargs)
        arguments.apply_defaults()
        arguments = arguments.arguments
        del arguments["self"]
        activity_regularizer = arguments["activity_regularizer"]
        kwargs = arguments.pop("kwargs")
        self._configure(**arguments)
        Layer.__init__(self, activity_regularizer=activity_regularizer, **kwargs)
        self._activation = torch_activation(self.activation)
        self._activity_penalty = torch_regularizer(self.activity_regularizer)
        self.kernel = self._uninitialized()
        self.bias = self._uninitialized() if self.use_bias else None
        self.register_load_state_dict_post_hook(self._built_by_loading)
        self._build_from_declared_input()

    __init__.__signature__ = _SIGNATURE  # type: ignore[attr-defined]

    # convt.layers.Layer's contract, shared rather than restated.
    dtype = Layer.dtype
    compute_dtype = Layer.compute_dtype
    weights = variables = Layer.weights
    trainable_weights = trainable_variables = Layer.trainable_weights
    non_trainable_weights = non_trainable_variables = Layer.non_trainable_weights
    get_weights = Layer.get_weights
    set_weights = Layer.set_weights
    count_params = Layer.count_params
    losses = Layer.losses
    _weight_losses = Layer._weight_losses
    apply_constraints = Layer.apply_constraints
    from_config = Layer.__dict__["from_config"]
    _build_and_set_initial_weights = Layer._build_and_set_initial_weights
    _build_from_declared_input = Layer._build_from_declared_input

    def _apply(self, fn: Any, recurse: bool = True) -> ConvTranspose:
        """torch's ``.to()``/``.double()``/``.half()``: the dtype policy follows the kernel's
        new dtype (float16, bfloat16, float32 or float64; a mixed policy keeps its own), so
        that ``dtype`` and ``get_config`` tell the truth."""
        module = super()._apply(fn, recurse)
        dtype = str(self.kernel.dtype).removeprefix("torch.")
        policy = self.dtype_policy
        if policy.compute_dtype == policy.variable_dtype and dtype in _FOLLOWED_DTYPES:
            self.dtype_policy = DTypePolicy.get(dtype, bfloat16=True)
        return module

    def _uninitialized(self) -> UninitializedParameter:
        return _LazyParameter(self.trainable, dtype=getattr(torch, self.dtype))

    trainable = Layer.trainable

    def _apply_trainable(self, value: bool) -> None:
        """The parameters are trained when they require gradients."""
        for parameter in self.parameters(recurse=False):
            parameter.requires_grad_(value)

    def build(self, input_shape: Any) -> None:
        """Materializes ``kernel`` and ``bias`` for inputs of ``input_shape``.

        A parameter already loaded from a ``state_dict`` keeps its values.

        Raises:
            ValueError: for a wrong rank or an unknown channel dimension.
        """
        shapes = {"kernel": self._kernel_shape(tuple(input_shape))}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        values = {name: self._initial_value(f"{name}_initializer", shape)  # all checked first
                  for name, shape in shapes.items() if is_lazy(getattr(self, name))}
        self._track_parameters()
        with torch.no_grad():
            for variable in self._variables:
                if variable.name in values:
                    variable.value.materialize(shapes[variable.name])
                    variable.assign(values[variable.name])
        self._lay_out_kernel()
        self.built = True

    def _unbuild(self) -> None:
        """Back to uninitialized parameters (after a build whose ``weights=`` failed)."""
        Layer._unbuild(self)
        self.kernel = self._uninitialized()
        self.bias = self._uninitialized() if self.use_bias else None

    def _known_in_channels(self) -> int | None:
        """The input channels of the kernel, once built or loaded."""
        # isinstance, not is_lazy: torch.compile traces it (is_lazy broke the graph in a model)
        return None if isinstance(self.kernel, UninitializedParameter) else self.kernel.shape[-1]

    def _lay_out_kernel(self) -> None:
        """Stores the kernel (Keras's shape) in the memory order the torch backend reads as is.

        torch's operator wants ``(in, filters, *kernel_size)`` in memory; kept
        so, the kernel and its gradient need no relayout in any step.
        """
        order = torch_backend.kernel_layout(self._args)
        self.kernel.data = torch_backend.laid_out(self.kernel.data, order)

    def _track_parameters(self) -> None:
        """Lists the parameters as variables, with their regularizers and constraints."""
        self._variables = [ParameterVariable(
            self, "kernel", regularizer=self.kernel_regularizer, constraint=self.kernel_constraint
        )]
        if self.use_bias:
            self._variables.append(ParameterVariable(
                self, "bias", regularizer=self.bias_regularizer, constraint=self.bias_constraint
            ))

    def _lazy_load_hook(
        self, state_dict: dict[str, Any], prefix: str, local_metadata: Any, strict: bool,
        missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str],
    ) -> None:
        """``load_state_dict`` pre-hook: an unbuilt layer takes only parameters whose shape
        its config allows (its kernel ``(*kernel_size, filters, any)``, its bias
        ``(filters,)``); otherwise it takes none and reports a size mismatch as torch does."""
        if not self.built:
            for name, expected in self._loadable_shapes().items():
                value = state_dict.get(prefix + name)
                if value is None or is_lazy(value):
                    continue
                shape = tuple(value.shape)
                if len(shape) != len(expected) or any(
                        want is not None and want != got for want, got in zip(expected, shape)):
                    wanted = ", ".join("in_channels" if w is None else str(w) for w in expected)
                    error_msgs.append(
                        f"size mismatch for {prefix}{name}: copying a param with shape {shape} "
                        f"from checkpoint, the shape in current model is ({wanted}).")
                    return
        super()._lazy_load_hook(state_dict, prefix, local_metadata, strict, missing_keys,
                                unexpected_keys, error_msgs)

    def _loadable_shapes(self) -> dict[str, tuple[int | None, ...]]:
        shapes = {"kernel": (*self.kernel_size, self.filters, None)}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def _built_by_loading(self, *_: Any) -> None:
        """``load_state_dict`` post-hook: a lazy layer whose parameters were all loaded is
        built; one loaded in part (``strict=False``) builds the rest from its first input."""
        if not self.built and not self.has_uninitialized_params():
            self._track_parameters()
            self._lay_out_kernel()
            self.built = True

    def _initial_value(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The values of the initializer ``name``, checked as the NumPy layer checks them;
        an unseeded random one is seeded from torch's generator."""
        initializer = getattr(self, name)
        if getattr(initializer, "seed", 0) is None:
            seed = int(torch.randint(0, 2**31 - 1, ()))
            initializer = type(initializer).from_config({**initializer.get_config(), "seed": seed})
        # NumPy has no bfloat16: such a parameter takes float32 values, rounded by assign.
        dtype = "float32" if self.dtype == "bfloat16" else self.dtype
        return self._initial_array(name, shape, dtype, initializer=initializer)

    def initialize_parameters(self, inputs: torch.Tensor, *_: Any, **__: Any) -> None:
        """The lazy-module hook: checks the first input and builds from its shape."""
        if not self.built:
            self._check_inputs(inputs)
            self._build_and_set_initial_weights(tuple(inputs.shape))

    def _check_inputs(self, inputs: Any) -> None:
        """A dense real-valued tensor of the layer's rank and channels, or an error.

        Raises:
            TypeError: for anything but a dense tensor of floats, integers or bools.
            ValueError: for a wrong rank or channel count.
        """
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(
                f"Layer '{self.name}' is a torch module and expects a torch.Tensor. "
                f"Received: inputs of type {type(inputs).__name__}"
            )
        if inputs.is_complex() or inputs.layout != torch.strided:
            raise TypeError(
                f"Layer '{self.name}' expects dense real-valued numeric inputs. "
                f"Received: inputs.dtype={inputs.dtype}, inputs.layout={inputs.layout}"
            )
        self._check_input_shape(inputs.shape)

    def forward(
        self, inputs: torch.Tensor, training: bool | None = None, mask: Any = None
    ) -> torch.Tensor:
        """``activation(conv_transpose(inputs, kernel) + bias)``, in the compute dtype.

        ``training`` and ``mask`` as the NumPy layers take them (the same in
        training and inference; no mask).
        """
        refuse_mask(self.name, mask)
        self._check_inputs(inputs)
        dtype = self._work_dtype()
        outputs = torch_backend.conv_transpose(
            inputs.to(dtype), self.kernel.to(dtype), self._args
        )
        if self.bias is not None:
            if torch.compiler.is_compiling() and self.data_format == "channels_last":
                # The window of a channels_last output is a view of channels_first memory;
                # compiled with symbolic sizes, Inductor failed to order the strides of the
                # bias sum of it in a model's training step (pytorch#185510, as for torch's
                # own convolutions): a contiguous window, which Inductor fuses into the sum.
                outputs = outputs.contiguous()
            outputs = outputs + self._bias_for_broadcast(dtype)
        outputs = self._activation(outputs)
        if self._activity_penalty is not None:
            self._call_losses = [self._activity_penalty(outputs) / max(outputs.shape[0], 1)]
        return outputs

    def _work_dtype(self) -> torch.dtype:
        policy = self.dtype_policy
        if policy.compute_dtype != policy.variable_dtype:
            return getattr(torch, policy.compute_dtype)
        return self.kernel.dtype

    def _bias_for_broadcast(self, dtype: torch.dtype) -> torch.Tensor:
        bias = self.bias.to(dtype)
        if self.data_format == "channels_last":
            return bias
        return bias.reshape((self.filters,) + (1,) * self.rank)

    def get_config(self) -> dict[str, Any]:
        """Keras 3's config of this layer, in plain JSON values (as the NumPy layer's)."""
        config = Layer.get_config(self)
        config.update(self._conv_config())
        return config

    def extra_repr(self) -> str:
        return (
            f"{self.filters}, kernel_size={self.kernel_size}, strides={self.strides}, "
            f"padding={self.padding!r}, data_format={self.data_format!r}, name={self.name!r}"
        )

