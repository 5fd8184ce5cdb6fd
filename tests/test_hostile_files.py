"""Hostile files, made at test time: each refused with a clear error and no allocation spike."""

import io
import json
import tracemalloc
import zipfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

import convt
from convt.saving import keras_file, weights_h5

h5py = pytest.importorskip("h5py")

PEAK_LIMIT = 8 << 20  # bytes of Python/NumPy memory a refused load may use


def _good_parts():
    """(config dict, weights bytes) of a small valid Sequential model."""
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))], name="m")
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5file:
        weights_h5.write_weights(model, h5file)
    return keras_file.serialize_model(model), weights.getvalue()


def _archive(path, *, config=None, weights=None, extra=(), compression=zipfile.ZIP_STORED):
    good_config, good_weights = _good_parts()
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr(
            "config.json", config if isinstance(config, str) else json.dumps(config or good_config)
        )
        archive.writestr("model.weights.h5", good_weights if weights is None else weights)
        for name, data in extra:
            archive.writestr(name, data)
    return path


def _refused(path, match, **kwargs):
    """Loads ``path`` expecting a ValueError matching ``match``; returns the peak traced bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            convt.models.load_model(path, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT
    return peak


def _with_layer(update):
    config, _ = _good_parts()
    update(config["config"]["layers"][1])
    return config


def test_the_good_archive_loads(tmp_path):
    model = convt.models.load_model(_archive(tmp_path / "good.keras"))
    assert model.outputs[0].shape == (None, 6, 6, 2)


@pytest.mark.parametrize("safe_mode", [True, False])
def test_lambda_layer_is_refused_whatever_safe_mode(tmp_path, safe_mode):
    config = _with_layer(
        lambda layer: layer.update(
            class_name="Lambda",
            config={
                "name": "l",
                "function": {"class_name": "__lambda__", "config": {"code": "..."}},
            },
        )
    )
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "Refusing to load code: .* Received: class_name='Lambda'",
        safe_mode=safe_mode,
    )


def test_serialized_lambda_activation_is_refused(tmp_path):
    config = _with_layer(
        lambda layer: layer["config"].update(
            activation={
                "class_name": "__lambda__",
                "config": {"code": "4wEAAAAA", "defaults": None},
            }
        )
    )
    _refused(
        _archive(tmp_path / "m.keras", config=config), "Refusing to load code", safe_mode=False
    )


def test_module_paths_are_never_imported(tmp_path):
    config = _with_layer(lambda layer: layer.update(module="os", class_name="Conv2DTranspose"))
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "convt never imports modules named in a file. Received: module='os'",
    )
    config = _with_layer(lambda layer: layer.update(module="os", class_name="system"))
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "Unknown layer class: .* Received: class_name='system'",
    )
    config = _with_layer(lambda layer: layer.update(registered_name="evil>Conv2DTranspose"))
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "Received: registered_name='evil>Conv2DTranspose'",
    )


def test_unknown_layer_class_is_named(tmp_path):
    config = _with_layer(lambda layer: layer.update(class_name="Dense"))
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        r"expected one of \['Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose', "
        r"'InputLayer'\]. Received: class_name='Dense'",
    )


def test_unknown_model_class_and_custom_objects_are_refused(tmp_path):
    config, _ = _good_parts()
    config["class_name"] = "MyModel"
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "Unknown model class: .* Received: class_name='MyModel'",
    )
    with pytest.raises(ValueError, match="never custom objects"):
        convt.models.load_model(_archive(tmp_path / "g.keras"), custom_objects={"x": object})


def test_unknown_keys_are_refused(tmp_path):
    config = _with_layer(lambda layer: layer.update(shell="rm -rf /"))
    _refused(
        _archive(tmp_path / "m.keras", config=config), r"Unknown keys \['shell'\] in layer_config"
    )
    config = _with_layer(lambda layer: layer["config"].update(evil=1))
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "Unrecognized keyword arguments passed to Conv2DTranspose: {'evil': 1}",
    )


def test_missing_arguments_and_record_dtypes_are_value_errors(tmp_path):
    """Found by mutating configs: a missing argument raised Python's TypeError, and a
    policy name NumPy reads as a record dtype its ValueError 'entry not a 2- or 3- tuple'."""
    config = _with_layer(lambda layer: layer["config"].pop("filters"))
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        r"Expected `config` to hold the arguments \['filters'\] of Conv2DTranspose. "
        r"Received: config=\{'name'",
    )
    config = _with_layer(lambda layer: layer["config"]["dtype"]["config"].update(name={"a": 1}))
    _refused(
        _archive(tmp_path / "d.keras", config=config),
        r"Expected `dtype` to be one of \['float16', 'float32', 'float64', 'mixed_float16'\]. "
        r"Received: dtype=\{'a': 1\}",
    )
    config, _ = _good_parts()
    config["config"]["layers"][0]["config"]["dtype"] = {}
    _refused(_archive(tmp_path / "i.keras", config=config),
             r"Expected `dtype` to be one of 'float16', 'float32', 'float64'. Received: dtype=\{\}")


def test_absurd_kernel_is_refused_before_allocation(tmp_path):
    config = _with_layer(
        lambda layer: layer["config"].update(filters=2**16, kernel_size=[512, 512])
    )
    _refused(
        _archive(tmp_path / "m.keras", config=config),
        "Expected the model's weights to fit in what the file can hold",
    )


def test_absurd_declared_input_is_refused_before_allocation(tmp_path):
    config, _ = _good_parts()
    layers = config["config"]["layers"]
    layers[0]["config"]["batch_shape"] = [None, 4, 4, 2**24]
    _refused(_archive(tmp_path / "m.keras", config=config), "fit in what the file can hold")
    layers[0]["config"]["batch_shape"] = [None, 2**30, 2**30, 8]
    _refused(_archive(tmp_path / "m.keras", config=config), "more than 1099511627776 elements")
    layers[0]["config"]["batch_shape"] = [None, -4, 4.5, 1]
    _refused(_archive(tmp_path / "m.keras", config=config), "non-negative integers or None")


def test_layer_declaring_its_input_is_charged_before_it_builds(tmp_path):
    config = _with_layer(
        lambda layer: layer["config"].update(
            batch_input_shape=[None, 4, 4, 2**20], kernel_size=[64, 64]
        )
    )
    _refused(_archive(tmp_path / "m.keras", config=config), "fit in what the file can hold")


def test_deeply_nested_json_is_refused(tmp_path):
    _refused(
        _archive(tmp_path / "m.keras", config="[" * 200_000 + "]" * 200_000),
        "Expected archive member 'config.json' to be valid JSON",
    )


def test_zip_bomb_member_is_refused_before_reading(tmp_path):
    bomb = b"\0" * (40 << 20)
    path = _archive(tmp_path / "bomb.keras", weights=bomb, compression=zipfile.ZIP_DEFLATED)
    del bomb
    _refused(
        path,
        "Refusing archive member 'model.weights.h5': it would expand more than 100 "
        "times, as a decompression bomb does. Received: file_size=41943040",
    )


def test_oversized_metadata_is_refused(tmp_path):
    path = tmp_path / "big.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", b" " * (2 << 20))
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
    _refused(path, "Refusing archive member 'metadata.json': expected at most 1048576 bytes")


@pytest.mark.parametrize("member", ["../evil.py", "/etc/passwd", "assets/x.bin", "config.json"])
def test_unexpected_traversing_or_repeated_members_are_refused(tmp_path, member):
    repeated = member == "config.json"
    with pytest.warns(UserWarning, match="Duplicate name") if repeated else nullcontext():
        path = _archive(tmp_path / "m.keras", extra=[(member, b"x")])
    _refused(path, "Expected a .keras archive to hold only .* Received: unexpected or repeated")


def _weights_replacing(index, link=None, **dataset_args):
    """Good weights bytes with variable ``index`` of the layer replaced by a link or dataset."""
    _, good = _good_parts()
    buffer = io.BytesIO(good)
    with h5py.File(buffer, "a") as h5file:
        group = h5file["layers/conv2d_transpose/vars"]
        del group[index]
        if link is not None:
            group[index] = link
        else:
            group.create_dataset(index, **dataset_args)
    return buffer.getvalue()


def test_hdf5_external_link_is_refused(tmp_path):
    weights = _weights_replacing("0", h5py.ExternalLink("/etc/passwd", "/data"))
    _refused(
        _archive(tmp_path / "m.keras", weights=weights),
        "Refusing an HDF5 file with links: .* Received: ExternalLink at "
        "'/layers/conv2d_transpose/vars/0'",
    )


def test_hdf5_soft_link_is_refused(tmp_path):
    weights = _weights_replacing("1", h5py.SoftLink("/vars"))
    _refused(
        _archive(tmp_path / "m.keras", weights=weights),
        "Received: SoftLink at '/layers/conv2d_transpose/vars/1'",
    )


def test_hdf5_external_storage_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"\0" * 72)
    path = tmp_path / "m.weights.h5"
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))])
    model.save_weights(path)
    with h5py.File(path, "a") as h5file:
        group = h5file["layers/conv2d_transpose/vars"]
        del group["0"]
        group.create_dataset("0", shape=(3, 3, 2, 1), dtype="float32", external=[(str(raw), 0, 72)])
    with pytest.raises(
        ValueError, match="Refusing an HDF5 dataset whose data lives outside the file"
    ):
        model.load_weights(path)


def test_hdf5_dataset_declaring_far_more_than_the_file_is_refused(tmp_path):
    weights = _weights_replacing(
        "0", shape=(2**20, 2**16), dtype="float32", chunks=(64, 64), compression="gzip"
    )
    assert len(weights) < 1 << 20
    _refused(
        _archive(tmp_path / "m.keras", weights=weights),
        "Refusing HDF5 dataset '/layers/conv2d_transpose/vars/0': it declares 274877906944 bytes",
    )


def test_legacy_h5_with_external_link_is_refused(tmp_path):
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as h5file:
        h5file.attrs["layer_names"] = [b"conv2d_transpose"]
        group = h5file.create_group("conv2d_transpose")
        group.attrs["weight_names"] = [b"conv2d_transpose/kernel:0"]
        group["conv2d_transpose"] = h5py.ExternalLink(str(Path("/etc/passwd")), "/")
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))])
    with pytest.raises(
        ValueError, match="Received: ExternalLink at '/conv2d_transpose/conv2d_transpose'"
    ):
        model.load_weights(path)


def test_wrong_dtype_in_weights_is_refused(tmp_path):
    weights = _weights_replacing("1", data=np.array(["a", "b"], dtype="S1"))
    _refused(
        _archive(tmp_path / "m.keras", weights=weights), "to be floating point. Received: dtype=|S1"
    )


def _forge_central_directory(path, member, *, compress_size, file_size):
    """Rewrites the sizes ``member``'s central directory entry declares (the real data stays)."""
    data = bytearray(Path(path).read_bytes())
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_length = int.from_bytes(data[entry + 28:entry + 30], "little")
        if bytes(data[entry + 46:entry + 46 + name_length]) == member.encode():
            data[entry + 20:entry + 24] = compress_size.to_bytes(4, "little")
            data[entry + 24:entry + 28] = file_size.to_bytes(4, "little")
        entry = data.find(b"PK\x01\x02", entry + 4)
    Path(path).write_bytes(bytes(data))
    return path


def test_forged_member_size_does_not_buy_a_weight_budget(tmp_path):
    # The archive is a few KB; its header claims a 4 GB weights member that would otherwise
    # let the config build 1.6e9 weight elements before the member is read.
    config, _ = _good_parts()
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 4, 4, 96]
    config["config"]["layers"][1]["config"].update(filters=4096, kernel_size=[64, 64])
    path = _archive(tmp_path / "m.keras", config=config, weights=b"\0" * 100,
                    compression=zipfile.ZIP_DEFLATED)
    _forge_central_directory(path, "model.weights.h5",
                             compress_size=40_000_000, file_size=4_000_000_000)
    assert path.stat().st_size < 8192
    _refused(path, r"Expected the model's weights to fit in what the file can hold \(at most "
                   r"\d{1,3} elements\)")


def test_compressed_archive_is_budgeted_by_its_real_contents(tmp_path):
    path = _archive(tmp_path / "m.keras", compression=zipfile.ZIP_DEFLATED)
    model = convt.models.load_model(path)
    assert model.outputs[0].shape == (None, 6, 6, 2)


def test_file_that_is_not_a_zip_archive_is_a_value_error(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"not a zip archive")
    _refused(path, r"File format not supported: expected a .keras file \(a zip archive\)")


def test_damaged_archive_headers_and_contents_are_value_errors(tmp_path):
    """Found by mutating bytes of a .keras file (1,500 files): a member whose bytes no
    longer match its CRC-32 raised zipfile's BadZipFile, and a central directory asking
    for a newer zip version raised NotImplementedError."""
    path = _archive(tmp_path / "m.keras")
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"Sequential"', b'"Sequentiam"', 1))
    _refused(path, r"Expected archive member 'config.json' to be well formed. Received: "
                   r"BadZipFile: Bad CRC-32 for file 'config.json'")
    central = data.index(b"PK\x01\x02")  # the first central directory entry
    path.write_bytes(data[:central + 6] + bytes([138]) + data[central + 7:])
    _refused(path, r"File format not supported: expected a .keras file \(a zip archive\). "
                   r"Received: filepath=.* \(zip file version 13.8\)")


def _weights_file(tmp_path, change):
    """A valid ``.weights.h5`` of the small model, edited by ``change(h5file)``."""
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))], name="m")
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "a") as h5file:
        change(h5file)
    return model, path


def _replace(h5file, name, **dataset):
    del h5file[name]
    h5file.create_dataset(name, **dataset)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda f: _replace(f, "layers/conv2d_transpose/vars", data=1.0), "TypeError"),
        (lambda f: _replace(f, "layers/conv2d_transpose/vars/1", data=h5py.Empty("f4")),
         "TypeError"),
    ],
    ids=["scalar vars", "empty bias"],
)
def test_malformed_weight_files_are_value_errors(tmp_path, change, error):
    model, path = _weights_file(tmp_path, change)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=f"Expected the weights file to be well formed. "
                                         f"Received: {error}: "):
        model.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("signature", [b"HEAP", b"TREE", b"SNOD"])
def test_corrupted_hdf5_structures_are_value_errors(tmp_path, signature):
    """Found by mutating bytes of a weights file (1,500 files, none crashed the process):
    a damaged local heap, B-tree or symbol table node made h5py raise RuntimeError."""
    model, path = _weights_file(tmp_path, lambda f: None)
    data = path.read_bytes()
    assert signature in data
    path.write_bytes(data.replace(signature, b"XXXX", 1))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="Expected the weights file to be well formed. "
                                         "Received: RuntimeError: "):
        model.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_legacy_layer_stored_as_a_dataset_is_named(tmp_path):
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))], name="m")
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as h5file:
        h5file.attrs["layer_names"] = [b"conv"]
        h5file.create_dataset("conv", data=np.arange(3.0)).attrs["weight_names"] = [b"a", b"b"]
    with pytest.raises(ValueError, match="Expected saved layer 'conv' to be an HDF5 group of "
                                         "weights. Received: Dataset at '/conv'"):
        model.load_weights(path)


def test_legacy_file_naming_a_missing_dataset_is_a_value_error(tmp_path):
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))], name="m")
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as h5file:
        h5file.attrs["layer_names"] = [b"conv"]
        h5file.create_group("conv").attrs["weight_names"] = [b"conv/kernel:0", b"nope"]
    with pytest.raises(ValueError, match="Expected the weights file to be well formed. "
                                         "Received: KeyError: "):
        model.load_weights(path)


def test_named_datatype_in_a_weights_file_is_refused(tmp_path):
    model, path = _weights_file(tmp_path, lambda f: f.__setitem__("t", np.dtype("f4")))
    with pytest.raises(ValueError, match="Expected an HDF5 weights file to hold only groups "
                                         "and datasets. Received: Datatype at '/t'"):
        model.load_weights(path)


@pytest.mark.parametrize("name", ["m.weights.h5", "m.h5"])
def test_weights_file_that_is_not_hdf5_is_a_value_error(tmp_path, name):
    model = convt.Sequential([convt.Conv2DTranspose(2, 3, input_shape=(4, 4, 1))])
    path = tmp_path / name
    path.write_bytes(b"not an HDF5 file")
    with pytest.raises(ValueError, match=r"File format not supported: expected an HDF5 "
                                         r"weights file. Received: filepath=.*signature"):
        model.load_weights(path)
    with pytest.raises(FileNotFoundError):  # the system's own errors stay what they are
        model.load_weights(tmp_path / "missing.weights.h5")


def _set_member_fields(path, member, *, flag_bits=None, compress_type=None):
    """Rewrites ``member``'s central directory flags or compression method."""
    data = bytearray(Path(path).read_bytes())
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_length = int.from_bytes(data[entry + 28:entry + 30], "little")
        if bytes(data[entry + 46:entry + 46 + name_length]) == member.encode():
            if flag_bits is not None:
                data[entry + 8:entry + 10] = flag_bits.to_bytes(2, "little")
            if compress_type is not None:
                data[entry + 10:entry + 12] = compress_type.to_bytes(2, "little")
        entry = data.find(b"PK\x01\x02", entry + 4)
    Path(path).write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("fields", "received"),
    [
        (dict(flag_bits=1), "compress_type=0, encrypted=True"),
        (dict(compress_type=99), "compress_type=99, encrypted=False"),
    ],
    ids=["encrypted", "unknown compression"],
)
def test_member_zipfile_cannot_read_is_refused(tmp_path, fields, received):
    path = _set_member_fields(_archive(tmp_path / "m.keras"), "config.json", **fields)
    _refused(path, f"Refusing archive member 'config.json': expected it stored or compressed "
                   f"by deflate, bzip2 or lzma, without encryption. Received: {received}")


def test_many_members_are_refused_quickly_with_a_short_message(tmp_path):
    path = _archive(tmp_path / "m.keras", extra=[(f"junk{i}", b"") for i in range(20000)])
    with pytest.raises(ValueError, match=r"Received: unexpected or repeated members "
                                         r"\['junk0', .*\] and 19990 more$") as error:
        convt.models.load_model(path)
    assert len(str(error.value)) < 400


def test_a_model_that_cannot_be_saved_leaves_the_old_file(tmp_path):
    model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1))])
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()
    model.add(convt.Conv1DTranspose(2, 3, activation=lambda x: x))
    with pytest.raises(ValueError, match="Cannot serialize this activation function"):
        model.save(path)
    assert path.read_bytes() == before
    assert convt.models.load_model(path).outputs[0].shape == (None, 6, 2)


def test_weights_that_cannot_be_written_leave_the_old_file(tmp_path, monkeypatch):
    model = convt.Sequential([convt.Conv1DTranspose(2, 3, input_shape=(4, 1))])
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    before = path.read_bytes()

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(weights_h5, "write_weights", fail)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(path)
    assert path.read_bytes() == before
