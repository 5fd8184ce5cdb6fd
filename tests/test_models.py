"""Functional models and Sequential: running, shared weights, config, summary, losses."""

import numpy as np
import pytest

import convt

RNG = np.random.default_rng(7)


def _random(*shape):
    return RNG.normal(size=shape).astype("float32")


def test_functional_model_runs_the_graph_like_its_layers():
    x = convt.Input(shape=(5, 5, 3))
    first = convt.Conv2DTranspose(4, 3, strides=2, activation="relu")
    second = convt.Conv2DTranspose(2, 2, padding="same")
    model = convt.Model(x, second(first(x)))
    data = _random(2, 5, 5, 3)
    np.testing.assert_allclose(model(data), second(first(data)), rtol=1e-6)
    assert model.layers[1:] == [first, second]
    assert isinstance(model.layers[0], convt.InputLayer)


def test_shared_layer_uses_one_set_of_weights():
    x = convt.Input(shape=(4, 2))
    shared = convt.Conv1DTranspose(2, 3, padding="same")
    model = convt.Model(x, shared(shared(x)))
    data = _random(3, 4, 2)
    np.testing.assert_allclose(model(data), shared(shared(data)), rtol=1e-6)
    assert len(model.weights) == 2 and model.count_params() == 3 * 2 * 2 + 2


def test_several_inputs_and_outputs_as_lists_and_dicts():
    a, b = convt.Input(shape=(4, 1), name="a"), convt.Input(shape=(3, 3, 1), name="b")
    up_a, up_b = convt.Conv1DTranspose(2, 2, strides=2), convt.Conv2DTranspose(3, 2)
    listed = convt.Model([a, b], [up_a(a), up_b(b)])
    keyed = convt.Model({"a": a, "b": b}, {"wave": listed.outputs[0], "image": listed.outputs[1]})
    xa, xb = _random(2, 4, 1), _random(2, 3, 3, 1)
    ya, yb = listed([xa, xb])
    assert (ya.shape, yb.shape) == ((2, 8, 2), (2, 4, 4, 3))
    out = keyed({"b": xb, "a": xa})
    assert sorted(out) == ["image", "wave"]
    np.testing.assert_array_equal(out["wave"], ya)
    with pytest.raises(ValueError, match="expects 2 input\\(s\\), but it received 1 input arrays"):
        listed([xa])


def test_model_checks_input_shapes_against_its_inputs():
    x = convt.Input(shape=(5, 5, 3), name="image")
    model = convt.Model(x, convt.Conv2DTranspose(2, 2)(x))
    with pytest.raises(ValueError) as error:
        model(np.zeros((1, 6, 5, 3)))
    assert str(error.value) == (
        'Input 0 of layer "image" is incompatible with the layer: expected '
        "shape=(None, 5, 5, 3), found shape=(1, 6, 5, 3)"
    )


def test_graph_disconnected_and_duplicate_names_are_refused():
    x, other = convt.Input(shape=(4, 1)), convt.Input(shape=(4, 1))
    y = convt.Conv1DTranspose(2, 2)(other)
    with pytest.raises(ValueError, match="Graph disconnected: cannot find parent for tensor"):
        convt.Model(x, y)
    z = convt.Conv1DTranspose(2, 2, name="same")(x)
    w = convt.Conv1DTranspose(2, 2, name="same")(z)
    with pytest.raises(ValueError, match='The name "same" is used 2 times in the model'):
        convt.Model(x, w)


def test_predict_batches_and_joins():
    model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1))])
    data = _random(70, 4, 1)
    np.testing.assert_allclose(model.predict(data, batch_size=8), model(data), rtol=1e-6)
    assert model.predict(data[:0]).shape == (0, 6, 2)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        model.predict(data, batch_size=0)
    with pytest.raises(ValueError, match=r"Expected `x` to be a rectangular array .*"
                                         r"Received: x=\[\[\[1.0\]\], \[\]\]"):
        model.predict({model.inputs[0].name: [[[1.0]], []]})


def test_sequential_builds_from_first_layer_input_shape_or_input_or_first_call():
    declared = convt.Sequential([convt.Conv2DTranspose(2, 3, batch_input_shape=(None, 4, 4, 1))])
    assert declared.built and declared.outputs[0].shape == (None, 6, 6, 2)
    from_input = convt.Sequential([convt.Input(shape=(4, 4, 1)), convt.Conv2DTranspose(2, 3)])
    assert from_input.outputs[0].shape == (None, 6, 6, 2)
    lazy = convt.Sequential([convt.Conv2DTranspose(2, 3)])
    assert not lazy.built
    with pytest.raises(ValueError, match="the layer isn't built"):
        lazy.count_params()
    assert lazy(np.zeros((1, 4, 4, 1))).shape == (1, 6, 6, 2)
    assert lazy.built and lazy.count_params() == 20


def test_sequential_add_pop_and_layers():
    model = convt.Sequential(name="stack")
    model.add(convt.Input(shape=(4, 1)))
    first = convt.Conv1DTranspose(2, 2, name="first")
    model.add(first)
    model.add(convt.Conv1DTranspose(3, 2, name="second"))
    assert [layer.name for layer in model.layers] == ["first", "second"]
    assert model.outputs[0].shape == (None, 6, 3)
    popped = model.pop()
    assert popped.name == "second" and popped.inbound_nodes == []
    assert model.outputs[0].shape == (None, 5, 2) and first.output is model.outputs[0]
    with pytest.raises(ValueError, match='Name "first" is already the name of a layer'):
        model.add(convt.Conv1DTranspose(3, 2, name="first"))
    with pytest.raises(ValueError, match="can only be the first layer"):
        model.add(convt.InputLayer(shape=(4, 1)))
    with pytest.raises(ValueError, match="Only instances of `convt.layers.Layer`"):
        model.add("dense")
    model.pop()
    with pytest.raises(TypeError, match="There are no layers in the model."):
        model.pop()


def test_sequential_build_refuses_a_shape_other_than_its_declared_input():
    model = convt.Sequential([convt.Input((4, 4, 1)), convt.Conv2DTranspose(3, 2)], name="s")
    with pytest.raises(ValueError, match=r"Sequential model 's' has already been configured "
                                         r"to use input shape \(None, 4, 4, 1\). You cannot "
                                         r"build it with input_shape \(None, 8, 8, 1\)"):
        model.build((None, 8, 8, 1))
    model.build((None, 4, 4, 1))
    assert model.outputs[0].shape == (None, 5, 5, 3)


def test_sequential_build_that_fails_leaves_no_input_behind():
    model = convt.Sequential([convt.Conv2DTranspose(3, 2), convt.Conv1DTranspose(2, 2)])
    with pytest.raises(ValueError, match="expected max_ndim=3, found ndim=4"):
        model.build((None, 4, 4, 1))
    model.pop()
    model.build((None, 8, 8, 1))
    assert model.inputs[0].shape == (None, 8, 8, 1)
    assert model.predict(np.ones((1, 8, 8, 1))).shape == (1, 9, 9, 3)


def test_sequential_build_that_fails_leaves_no_call_on_its_layers():
    first = convt.Conv1DTranspose(2, 3, name="first")
    model = convt.Sequential([first, convt.Conv2DTranspose(2, 3)])
    with pytest.raises(ValueError, match="expected min_ndim=4, found ndim=3"):
        model.build((None, 8, 1))
    assert first._inbound_nodes == []
    model.pop()
    model.build((None, 8, 1))
    assert first.input.shape == (None, 8, 1) and first.output.shape == (None, 10, 2)
    assert repr(model) == f"<Sequential name={model.name}, layers=1>"
    assert repr(convt.Sequential([first])).endswith("layers=1>")  # unbuilt too


def test_weights_get_set_and_trainable():
    model = convt.Sequential(
        [convt.Conv2DTranspose(2, 2, input_shape=(3, 3, 1)), convt.Conv2DTranspose(1, 2)]
    )
    values = [np.full(w.shape, 0.5) for w in model.get_weights()]
    model.set_weights(values)
    assert all(np.all(w == 0.5) for w in model.get_weights())
    with pytest.raises(ValueError, match="weight list of length 1, but the model was expecting 4"):
        model.set_weights(values[:1])
    with pytest.raises(ValueError, match="weight shape \\(2, 2, 2, 1\\) is not compatible"):
        model.set_weights([np.zeros((1,))] + values[1:])
    assert all(np.all(w == 0.5) for w in model.get_weights())  # nothing changed
    assert len(model.trainable_weights) == 4 and model.non_trainable_weights == []
    model.trainable = False
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 4
    assert not any(layer.trainable for layer in model.layers)


def test_model_losses_follow_the_last_run():
    x = convt.Input(shape=(4, 1))
    layer = convt.Conv1DTranspose(
        1, 1, kernel_initializer="ones", activity_regularizer="l1", bias_regularizer="l2"
    )
    model = convt.Model(x, layer(layer(x)))
    data = np.ones((2, 4, 1), "float32")
    assert len(model.losses) == 1  # the weight penalty only, before a run
    model(data)
    assert len(model.losses) == 3  # two activity penalties (one per call), one weight penalty
    assert len(model.get_losses_for(data)) == 2 and len(model.get_losses_for(None)) == 1
    assert model.get_losses_for(np.ones(3)) == []


@pytest.mark.parametrize("batch_size", [1, 2, 5, 8])
def test_after_predict_the_losses_are_the_whole_inputs_as_after_a_call(batch_size):
    x = convt.Input(shape=(3, 2))
    layer = convt.Conv1DTranspose(2, 2, activity_regularizer="l2", kernel_regularizer="l1")
    model = convt.Model(x, layer(layer(x)))
    data = np.random.default_rng(0).standard_normal((5, 3, 2))
    model(data)
    expected = model.losses
    model(data[:1])  # another run, which predict must replace
    model.predict(data, batch_size=batch_size)
    np.testing.assert_allclose(model.losses, expected, rtol=1e-5)
    np.testing.assert_allclose(model.get_losses_for(data), expected[:2], rtol=1e-5)
    model.predict(data[:0])
    assert model.get_losses_for(data) == [] and len(model.losses) == 3


def test_functional_config_round_trip_keeps_graph_and_names():
    a = convt.Input(shape=(4, 1), name="a")
    shared = convt.Conv1DTranspose(1, 3, padding="same", name="shared")
    model = convt.Model(
        a, [shared(shared(a)), convt.Conv1DTranspose(2, 2, name="tail")(a)], name="graph"
    )
    config = model.get_config()
    assert config["input_layers"] == ["a", 0, 0]
    assert config["output_layers"] == [["shared", 1, 0], ["tail", 0, 0]]
    shared_entry = next(entry for entry in config["layers"] if entry["name"] == "shared")
    histories = [
        node["args"][0]["config"]["keras_history"] for node in shared_entry["inbound_nodes"]
    ]
    assert histories == [["a", 0, 0], ["shared", 0, 0]]
    rebuilt = convt.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    data = _random(2, 4, 1)
    for got, want in zip(rebuilt(data), model(data)):
        np.testing.assert_array_equal(got, want)
    assert rebuilt.get_config() == config


def test_sequential_config_round_trip():
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))], name="seq")
    config = model.get_config()
    assert [entry["class_name"] for entry in config["layers"]] == ["InputLayer", "Conv2DTranspose"]
    assert "batch_input_shape" not in config["layers"][1]["config"]
    rebuilt = convt.Sequential.from_config(config)
    assert rebuilt.outputs[0].shape == (None, 6, 6, 2) and rebuilt.name == "seq"


def test_summary_of_a_sequential_model_is_tf_keras_table():
    model = convt.Sequential(
        [convt.Conv2DTranspose(4, 3, strides=2, input_shape=(5, 5, 3), name="up")], name="tiny"
    )
    lines = []
    model.summary(print_fn=lines.append)
    assert lines == [
        'Model: "tiny"',
        "_" * 65,
        " Layer (type)                Output Shape              Param #   ",
        "=" * 65,
        " up (Conv2DTranspose)        (None, 11, 11, 4)         112       ",
        " " * 65,
        "=" * 65,
        "Total params: 112",
        "Trainable params: 112",
        "Non-trainable params: 0",
        "_" * 65,
    ]


def test_summary_of_a_graph_has_connections_and_wraps_long_names():
    x = convt.Input(shape=(4, 1), name="x")
    shared = convt.Conv1DTranspose(1, 1, name="shared")
    model = convt.Model(x, shared(shared(x)), name="g")
    model.trainable = False
    lines = []
    model.summary(print_fn=lambda line: lines.append(line.rstrip()))
    assert lines[2].startswith(" Layer (type)") and lines[2].endswith("Connected to")
    assert " x (InputLayer)                 [(None, 4, 1)]       0           []" in lines
    assert any(line.startswith(" shared (Conv1DTranspose)       (None, 4, 1)") for line in lines)
    assert "Trainable params: 0" in lines and "Non-trainable params: 2" in lines


def test_summary_shows_a_shared_layers_one_shape_and_input_shapes_as_lists():
    a, b = convt.Input((4, 4, 1), name="a"), convt.Input((4, 4, 1), name="b")
    shared = convt.Conv2DTranspose(1, 3, name="shared")
    model = convt.Model([a, b], [shared(a), shared(b)])
    lines = []
    model.summary(print_fn=lambda line: lines.append(line.rstrip()))
    assert any(line.startswith(" shared (Conv2DTranspose)       (None, 6, 6, 1)") for line in lines)
    assert a.history.layer.output_shape == a.history.layer.input_shape == [(None, 4, 4, 1)]
    assert shared.output_shape == (None, 6, 6, 1)
    small, varied = convt.Input((2, 2, 1), name="small"), convt.Conv2DTranspose(1, 3, name="v")
    lines = []
    convt.Model([a, small], [varied(a), varied(small)]).summary(print_fn=lines.append)
    assert any(line.startswith(" v (Conv2DTranspose)            multiple") for line in lines)


def test_summary_of_an_unbuilt_model_prints_nothing_and_says_why():
    lines = []
    with pytest.raises(ValueError, match=r"This model has not yet been built. Build the model "
                                         r"first by calling `build\(\)`"):
        convt.Sequential([convt.Conv2DTranspose(2, 3)]).summary(print_fn=lines.append)
    assert lines == []


def test_inputs_are_matched_by_name_and_never_by_luck():
    a, b = convt.Input((4, 4, 1), name="a"), convt.Input((4, 4, 1), name="b")
    ca = convt.Conv2DTranspose(2, 3, kernel_initializer="ones", name="ca")
    cb = convt.Conv2DTranspose(2, 3, kernel_initializer="ones", name="cb")
    model = convt.Model([a, b], [ca(a), cb(b)], name="pair")
    ones, zeros = np.ones((2, 4, 4, 1)), np.zeros((2, 4, 4, 1))
    expected = [o.sum() for o in model([ones, zeros])]
    for given in ({"b": zeros, "a": ones}, {"a": ones, "b": zeros, "extra": zeros}):
        assert [o.sum() for o in model(given)] == expected
        assert [o.sum() for o in model.predict(given)] == expected
    with pytest.raises(ValueError, match=r"Model 'pair' expects arrays for the inputs \['a', "
                                         r"'b'\] \(by input name\). Received: inputs with keys "
                                         r"\['p', 'q'\]"):
        model({"p": ones, "q": zeros})
    with pytest.raises(ValueError, match=r"expects 2 input\(s\), but it received 1 input "
                                         r"arrays. Received: inputs=ndarray of shape "
                                         r"\(2, 2, 4, 4, 1\)"):
        model(np.stack([ones, zeros]))
    keyed = convt.Model({"b": b, "a": a}, {"ya": model.outputs[0]}, name="keyed")
    with pytest.raises(ValueError, match=r"Model 'keyed' expects a dict with keys \['b', 'a'\]"):
        keyed([ones, zeros])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(positions=[0.5]), r"Expected `positions` to be 3 increasing positive numbers, "
                                r"the end of each column. Received: positions=\[0.5\]"),
        (dict(positions=[0.5, 0.4, 1.0]), r"Received: positions=\[0.5, 0.4, 1.0\]"),
        (dict(positions="abc"), r"Received: positions='abc'"),
        (dict(line_length=0), r"Expected `line_length` to be a positive integer of at most "
                              r"10000. Received: line_length=0"),
        (dict(line_length="wide"), r"Received: line_length='wide'"),
        (dict(line_length=2**63), r"Received: line_length=9223372036854775808"),  # OverflowError
    ],
)
def test_summary_layout_errors_print_nothing(arguments, message):
    model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1))])
    lines = []
    with pytest.raises(ValueError, match=message):
        model.summary(print_fn=lines.append, **arguments)
    assert lines == []


def test_get_layer_by_name_or_index_and_sequential_of_a_non_list():
    """Keras 3's ``get_layer(name=None, index=None)``; an index was not accepted, and a
    name that is an array raised NumPy's "truth value ... is ambiguous"."""
    first, second = convt.Conv1DTranspose(2, 3, name="a"), convt.Conv1DTranspose(1, 2, name="b")
    model = convt.Sequential([first, second])
    assert model.get_layer("b") is second and model.get_layer(index=-2) is first
    with pytest.raises(ValueError, match="Was asked to retrieve layer at index 2 but model "
                                         "only has 2 layers."):
        model.get_layer(index=2)
    with pytest.raises(ValueError, match=r"Expected exactly one of a layer name and a layer "
                                         r"index. Received: name='a', index=0"):
        model.get_layer("a", 0)
    with pytest.raises(ValueError, match=r"Received: name=None, index=None"):
        model.get_layer()
    with pytest.raises(TypeError, match=r"Expected `name` to be a string. Received: name=array"):
        model.get_layer(np.array([1, 2]))
    with pytest.raises(TypeError, match=r"Expected `index` to be an integer. Received: index=1.0"):
        model.get_layer(index=1.0)
    with pytest.raises(TypeError, match=r"Expected `layers` to be a list of layers. "
                                        r"Received: layers=True"):  # "'bool' object is not ..."
        convt.Sequential(True)


def test_model_with_an_unused_input_saves_and_loads(tmp_path):
    pytest.importorskip("h5py")
    used, unused = convt.Input((4, 1), name="used"), convt.Input((5, 1), name="unused")
    model = convt.Model([used, unused], convt.Conv1DTranspose(2, 3, name="up")(used))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = convt.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    data = [_random(1, 4, 1), _random(1, 5, 1)]
    np.testing.assert_array_equal(loaded(data), model(data))
    assert convt.Model.from_config(model.get_config()).get_config() == model.get_config()


def test_a_long_chain_maps_without_recursion():
    x = convt.Input((1, 1))
    y = x
    for _ in range(1500):  # deeper than Python's recursion limit
        y = convt.Conv1DTranspose(1, 1, kernel_initializer="ones", use_bias=False)(y)
    model = convt.Model(x, y)
    assert len(model.layers) == 1501
    assert model(np.full((1, 1, 1), 2.0, dtype="float32"))[0, 0, 0] == 2.0


@pytest.mark.parametrize("class_name", [["Sequential"], {"a": 1}])
def test_model_class_name_that_is_not_a_string_is_refused(class_name):
    with pytest.raises(ValueError, match=r"Unknown model class: .* Received: class_name="):
        convt.saving.keras_file.model_from_config({"class_name": class_name, "config": {}})


def test_tensor_reference_naming_a_list_is_refused():
    model = convt.Model(x := convt.Input((4, 1)), convt.Conv1DTranspose(2, 3)(x))
    config = model.get_config()
    call = config["layers"][1]["inbound_nodes"][0]["args"][0]["config"]
    call["keras_history"][0] = ["a"]  # unhashable: no dict lookup may see it
    with pytest.raises(ValueError, match=r"Expected a tensor reference \[layer_name, "
                                         r"node_index, 0\] .* Received: reference=\[\['a'\]"):
        convt.Model.from_config(config)


@pytest.mark.parametrize(("line_length", "positions"), [(8, None), (65, [3, 6, 65])])
def test_summary_of_narrow_columns_ends(line_length, positions):
    model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1), name="up")])
    lines = []
    model.summary(line_length=line_length, positions=positions, print_fn=lines.append)
    assert lines[-1] == "_" * line_length and len(lines) < 200


def test_nested_inputs_are_taken_nested_or_flat_by_call_and_predict():
    a, b, c = (convt.Input((4, 4, 1), name=n) for n in "abc")
    model = convt.Model([[a, b], c], [convt.Conv2DTranspose(1, 3)(a),
                                      convt.Conv2DTranspose(1, 3)(c)])
    x = RNG.normal(size=(2, 4, 4, 1))
    expected = model([[x, x * 0], x * 2])
    for given in ([[x, x * 0], x * 2], [x, x * 0, x * 2], {"a": x, "b": x * 0, "c": x * 2}):
        for run in (model, model.predict):
            for got, want in zip(run(given), expected):
                np.testing.assert_allclose(got, want, rtol=1e-6)

