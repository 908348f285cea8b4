"""infp.Model: creation and config overrides, config errors, predict, checkpoints (save, load,
safetensors layout, mismatches), state_dict naming and round trips, loss_and_grads with a
finite-difference check, lifetime (close, context manager) and threads."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import infp
from infp import InfpError, Model
from infp import safetensors as st

H, W = 32, 48  # tiny preset
OFFICIAL_NAMES = Path(__file__).resolve().parents[2] / "Tests" / "fixtures" / "official-state-dict.txt"


def clips_like(rng, b=2, scale=1.0):
    return (scale * rng.uniform(-1, 1, (b, 4, 3, H, W))).astype(np.float32)


def targets_like(rng, b=2):
    return rng.uniform(-1, 1, (b, 3, H, W)).astype(np.float32)


def file_tensors(path):
    tensors, meta = st.load(path)
    return tensors, meta


# ---- creation, config, parameter counts ---------------------------------------------------

def test_tiny_config_is_the_preset():
    with Model("tiny", seed=0) as m:
        c = m.config
        assert (c["height"], c["width"], c["width_div"], c["blocks"]) == (32, 48, 32, [1] * 6)
        assert c["fusion"] is True and c["trajectory_filter"] is True
        assert (c["filter_mode"], c["freq_mode"], c["loss"]) == ("official", "polar", "official")
        assert m.frame_shape == (3, 32, 48)
        assert "32x48" in repr(m) and "width_div=32" in repr(m)


# Expected trainable parameter counts of the parts the overrides remove or reshape, from the
# spec's layer list (§2.3, §2.5) at tiny width: C = c(2048) = 64, c(256) = 8, H = 32, W = 48.
def fusion_params(c=64):
    conv = lambda cin, cout, k: cin * cout * k * k + cout
    hidden = max(1, c // 8)
    process = conv(c, c, 1) + (c * hidden + hidden) + (hidden * c + c) + conv(c, c, 1)
    spatial = 3 * conv(c, c, 3)
    cat = conv(2 * c, c, 1)
    sspcab = 4 * conv(c, c, 1) + 2 * (c * c + c)
    return spatial + 2 * process + cat + sspcab


def filter_params(p, q, d, n=4):
    m = 2 * d
    return p * (q // 2 + 1) * n * 2 + d * m + m * d + d * (d // 4) + (d // 4) * n * m + 4  # + 2 StarReLUs


def test_overrides_change_parameter_counts_as_the_spec_says():
    with Model("tiny", seed=0) as base:
        n = base.num_parameters
    counts = {}
    for name, kw in {"nofusion": dict(fusion=False), "spatial": dict(filter_mode="spatial"),
                     "cartesian": dict(freq_mode="cartesian"), "nofilter": dict(trajectory_filter=False)}.items():
        with Model("tiny", seed=0, **kw) as m:
            for k, v in kw.items():
                assert m.config[k] == v
            counts[name] = m.num_parameters
    assert n - counts["nofusion"] == fusion_params(64)
    assert n - counts["nofilter"] == filter_params(p=8, q=H, d=W)            # official: (C, H) x W
    assert counts["spatial"] - counts["nofilter"] == filter_params(p=H, q=W, d=8)  # spatial: (H, W) x C
    assert counts["cartesian"] == n  # same layers, other arithmetic
    assert len({n, counts["nofusion"], counts["spatial"], counts["nofilter"]}) == 4


def test_cartesian_same_weights_other_output(rng):
    x = clips_like(rng)
    with Model("tiny", seed=0) as polar, Model("tiny", seed=0, freq_mode="cartesian") as cart:
        for a, b in zip(file_tensors_of(polar), file_tensors_of(cart)):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(polar.predict(x), cart.predict(x))


def file_tensors_of(model):
    """The model's tensors as written by save (independent of state_dict)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        model.save(path)
        tensors, _ = st.load(path)
    return list(tensors.values())


@pytest.mark.parametrize("field,value,words", [
    ("height", 30, ["multiple of 8"]),
    ("width", 0, ["multiple of 8"]),
    ("filter_mode", "diagonal", ["official", "spatial", "diagonal"]),
    ("freq_mode", "hexagonal", ["polar", "cartesian"]),
    ("width_div", 3, ["1, 2, 4, 8, 16, 32, 64"]),
    ("blocks", [1, 1], ["6 entries"]),
    ("fusion", "yes", []),
    ("no_such_field", 1, ["unknown field"]),
])
def test_invalid_config_names_the_field(field, value, words):
    with pytest.raises(InfpError) as e:
        Model("tiny", **{field: value})
    assert e.value.status_name == "invalid argument"
    assert f"'{field}'" in e.value.message
    for w in words:
        assert w in e.value.message


def test_unknown_preset():
    with pytest.raises(InfpError, match=r"preset.*'huge'.*official, small, tiny"):
        Model("huge")


# ---- predict -----------------------------------------------------------------------------

def test_predict_shapes_batch_and_single(rng):
    x = clips_like(rng, b=3)
    with Model("tiny", seed=0) as m:
        y = m.predict(x)
        assert y.shape == (3, 3, H, W) and y.dtype == np.float32
        assert np.all(np.isfinite(y))
        one = m.predict(x[1])
        assert one.shape == (3, H, W) and one.dtype == np.float32
        np.testing.assert_allclose(one, y[1], rtol=1e-5, atol=1e-9 + 1e-5 * np.abs(y).max())
        # batch items are independent in evaluation mode
        np.testing.assert_allclose(m.predict(x[:2])[1], y[1], rtol=1e-5, atol=1e-5 * np.abs(y).max())


def test_predict_depends_on_the_input(rng):
    x = clips_like(rng, b=2)
    with Model("tiny", seed=0) as m:
        y = m.predict(x)
        assert not np.array_equal(y[0], y[1])
        x2 = x.copy()
        x2[1, 3] = -x2[1, 3]  # change the last input frame of item 1 only
        y2 = m.predict(x2)
        assert not np.array_equal(y2[1], y[1])
        np.testing.assert_allclose(y2[0], y[0], rtol=1e-5, atol=1e-5 * np.abs(y).max())


def test_predict_is_deterministic_per_seed(rng):
    x = clips_like(rng, b=2)
    with Model("tiny", seed=7) as a, Model("tiny", seed=7) as b, Model("tiny", seed=8) as c:
        ya = a.predict(x)
        np.testing.assert_array_equal(ya, a.predict(x))  # same model, repeated
        np.testing.assert_array_equal(ya, b.predict(x))  # same seed
        assert not np.array_equal(ya, c.predict(x))      # other seed
        assert any(not np.array_equal(p, q) for p, q in zip(file_tensors_of(a), file_tensors_of(c)))


@pytest.mark.parametrize("shape", [
    (2, 3, 3, H, W),      # 3 input frames
    (2, 4, 1, H, W),      # grey
    (2, 4, 3, H, W - 8),  # other width
    (2, 4, 3, H + 8, W),  # other height
    (4, 3, H),            # too few dims
    (1, 2, 4, 3, H, W),   # too many dims
])
def test_predict_rejects_wrong_shapes(shape):
    with Model("tiny", seed=0) as m:
        with pytest.raises(ValueError, match=r"\(B, 4, 3, 32, 48\).*got") as e:
            m.predict(np.zeros(shape, np.float32))
        assert str(tuple(shape)) in str(e.value)


def test_predict_rejects_empty_batch():
    with Model("tiny", seed=0) as m:
        with pytest.raises((ValueError, InfpError), match="0"):
            m.predict(np.zeros((0, 4, 3, H, W), np.float32))


def test_predict_rejects_non_numeric():
    with Model("tiny", seed=0) as m:
        with pytest.raises((ValueError, TypeError)):
            m.predict(np.full((1, 4, 3, H, W), "a"))


def test_predict_converts_float64(rng):
    x = clips_like(rng, b=2)
    with Model("tiny", seed=0) as m:
        np.testing.assert_array_equal(m.predict(x.astype(np.float64)), m.predict(x))
        # non-contiguous input is fine too
        xf = np.asfortranarray(x)
        np.testing.assert_array_equal(m.predict(xf), m.predict(x))


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.complex64])
def test_predict_rejects_wrong_dtypes(dtype):
    with Model("tiny", seed=0) as m:
        with pytest.raises((ValueError, TypeError), match="dtype|float"):
            m.predict(np.zeros((1, 4, 3, H, W), dtype))


# ---- save / load ---------------------------------------------------------------------------

def trained_model(rng, **kw):
    """A tiny model with non-trivial weights and BatchNorm statistics (two Adam steps)."""
    m = Model("tiny", seed=3, **kw)
    x, g = clips_like(rng), targets_like(rng)
    m.train_step(x, g, lr=1e-2)
    m.train_step(x, g, lr=1e-2)
    return m


def test_save_load_round_trip(rng, tmp_path):
    x = clips_like(rng, b=2)
    path = tmp_path / "model.safetensors"
    with trained_model(rng, fusion=False) as m:
        m.save(path)
        assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]  # no temporary file left
        with Model.load(path) as back:
            assert back.config == m.config
            assert back.num_parameters == m.num_parameters
            np.testing.assert_array_equal(back.predict(x), m.predict(x))
            back.save(tmp_path / "again.safetensors")
        a, meta_a = file_tensors(path)
        b, meta_b = file_tensors(tmp_path / "again.safetensors")
        assert list(a) == list(b)
        for k in a:
            assert a[k].dtype == b[k].dtype
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert meta_a == meta_b
        # the file holds the trained statistics, not a fresh initialisation
        assert a["up8.bn.num_batches_tracked"] == 2
        assert a["wrn38.mod2.block1.bn1.0.num_batches_tracked"] == 8  # 4 frames per step
        assert np.any(a["up8.bn.running_mean"] != 0)


def test_save_load_round_trip_state_dict(rng, tmp_path):
    with trained_model(rng) as m:
        m.save(tmp_path / "m.safetensors")
        with Model.load(tmp_path / "m.safetensors", threads=1) as back:
            assert back.threads == 1
            sa, sb = m.state_dict(), back.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and sa[k].shape == sb[k].shape, k
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def test_checkpoint_is_safetensors_with_infp_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    with Model("tiny", seed=0, filter_mode="spatial") as m:
        m.save(path)
        config = m.config
        n_params = m.num_parameters
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    assert header["__metadata__"]["format"] == "infp"
    tensors, meta = st.load(path)
    assert meta["format"] == "infp"
    assert json.loads(meta["infp_config"]) == config
    assert json.loads(meta["infp_config"])["filter_mode"] == "spatial"
    assert tensors["filter.complex_weights"].shape == (H, W // 2 + 1, 4, 2)
    counters = [k for k in tensors if k.endswith("num_batches_tracked")]
    assert counters and all(tensors[k].dtype == np.int64 and tensors[k].shape == () for k in counters)
    others = [k for k in tensors if k not in counters]
    assert all(tensors[k].dtype == np.float32 for k in others)
    # data offsets tile the body exactly
    ends = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert ends[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ends, ends[1:]))
    assert ends[-1][1] == len(raw) - 8 - header_len
    # parameters = everything but BatchNorm running statistics and counters
    stats = [k for k in others if k.endswith(("running_mean", "running_var"))]
    assert sum(tensors[k].size for k in others if k not in stats) == n_params


def test_load_other_config_lists_mismatches(tmp_path):
    with Model("tiny", seed=0) as m:
        m.save(tmp_path / "default.safetensors")
    tensors, meta = st.load(tmp_path / "default.safetensors")
    # the default tiny tensors, labelled with a spatial-filter config
    config = json.loads(meta["infp_config"])
    config["filter_mode"] = "spatial"
    st.save(tmp_path / "spatial.safetensors", tensors, {"format": "infp", "infp_config": json.dumps(config)})
    with pytest.raises(InfpError) as e:
        Model.load(tmp_path / "spatial.safetensors")
    assert e.value.status_name == "format error"
    msg = e.value.message
    for name in ["filter.complex_weights", "filter.pwconv1.weight", "filter.pwconv2.weight",
                 "filter.reweight.fc1.weight", "filter.reweight.fc2.weight"]:
        assert name in msg
    assert "[32, 25, 4, 2]" in msg  # what the spatial model needs
    assert "5 problems" in msg

    # a config without fusion: every fusion tensor is unexpected, all reported at once
    config = json.loads(meta["infp_config"])
    config["fusion"] = False
    st.save(tmp_path / "nofusion.safetensors", tensors, {"format": "infp", "infp_config": json.dumps(config)})
    with pytest.raises(InfpError) as e:
        Model.load(tmp_path / "nofusion.safetensors")
    fusion_names = [k for k in tensors if k.startswith("fusion.")]
    assert f"{len(fusion_names)} problems" in e.value.message
    assert all(k in e.value.message for k in fusion_names[:3] + fusion_names[-3:])


def test_load_reports_missing_unexpected_shape_and_dtype_together(tmp_path):
    with Model("tiny", seed=0) as m:
        m.save(tmp_path / "m.safetensors")
    tensors, meta = st.load(tmp_path / "m.safetensors")
    del tensors["conv_x1.weight"]
    tensors["extra.weight"] = np.zeros(3, np.float32)
    tensors["final.2.weight"] = np.zeros((3, 4, 1, 1), np.float32)
    tensors["up8.bn.num_batches_tracked"] = np.zeros((), np.float32)
    st.save(tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(InfpError) as e:
        Model.load(tmp_path / "bad.safetensors")
    msg = e.value.message
    assert e.value.status_name == "format error"
    assert "4 problems" in msg
    assert "missing" in msg and "conv_x1.weight" in msg
    assert "unexpected" in msg and "extra.weight" in msg
    assert "final.2.weight" in msg and "[3, 4, 3, 3]" in msg
    assert "up8.bn.num_batches_tracked" in msg and "I64" in msg


def test_load_missing_file(tmp_path):
    with pytest.raises(InfpError) as e:
        Model.load(tmp_path / "nope.safetensors")
    assert e.value.status == infp._lib.ERR_IO and e.value.status_name == "io error"
    assert "nope.safetensors" in e.value.message


def test_load_a_folder(tmp_path):
    with pytest.raises(InfpError) as e:
        Model.load(tmp_path)
    assert e.value.status_name == "io error"


@pytest.mark.parametrize("content", [b"", b"\x01\x02", b"hello, this is not a checkpoint" * 4,
                                     (16).to_bytes(8, "little") + b"{not json}      "])
def test_load_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(InfpError) as e:
        Model.load(path)
    assert e.value.status == infp._lib.ERR_FORMAT and e.value.status_name == "format error"
    assert "garbage.safetensors" in e.value.message


def test_load_safetensors_without_infp_metadata(tmp_path):
    with Model("tiny", seed=0) as m:
        m.save(tmp_path / "m.safetensors")
    tensors, _ = st.load(tmp_path / "m.safetensors")
    st.save(tmp_path / "plain.safetensors", tensors)
    with pytest.raises(InfpError, match="infp_config") as e:
        Model.load(tmp_path / "plain.safetensors")
    assert e.value.status_name == "format error"


def test_save_to_missing_folder(tmp_path):
    with Model("tiny", seed=0) as m:
        with pytest.raises(InfpError) as e:
            m.save(tmp_path / "no" / "such" / "m.safetensors")
    assert e.value.status_name == "io error"
    assert not (tmp_path / "no").exists()


# ---- state_dict ------------------------------------------------------------------------------

def test_state_dict_released_names():
    with Model("tiny", seed=0) as m:
        sd = m.state_dict()
        n_params = m.num_parameters
    names = list(sd)
    assert names[0] == "wrn38.mod1.conv1.weight"
    assert sd["wrn38.mod1.conv1.weight"].shape == (64 // 32, 3, 3, 3)
    assert sd["filter.complex_weights"].shape == (256 // 32, H // 2 + 1, 4, 2)  # official mode: (C, H/2+1)
    assert sd["filter.pwconv1.weight"].shape == (2 * W, W)
    assert sd["final.2.weight"].shape == (3, 128 // 32, 3, 3)
    assert sd["conv_x8.weight"].shape == (2048 // 32, 4 * 4096 // 32, 1, 1)
    assert sd["fusion.freq_extractor.cat.weight"].shape == (64, 128, 1, 1)
    counter = sd["up8.bn.num_batches_tracked"]
    assert isinstance(counter, np.ndarray) and counter.dtype == np.int64 and counter.shape == ()
    assert counter == 0
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            assert v.dtype == np.int64 and v.shape == (), k
        else:
            assert v.dtype == np.float32, k
        if k.endswith("running_var"):
            np.testing.assert_array_equal(v, 1)
        if k.endswith("running_mean"):
            np.testing.assert_array_equal(v, 0)
    for k in ["wrn38.mod2.block1.bn1.0.weight", "wrn38.mod6.block1.convs.bn3.0.running_var",
              "wrn38.mod7.block1.proj_conv.weight", "up8.ConvTranspose.weight", "attn8.layer.2.bias",
              "final.0.bn.running_mean", "filter.reweight.act.scale",
              "fusion.freq_extractor.frequency_process.processpha.2.fc1.weight", "fusion.fusion.conv4.bias"]:
        assert k in sd, k
    np.testing.assert_array_equal(sd["filter.act1.scale"], [1.0])
    np.testing.assert_array_equal(sd["filter.act1.bias"], [0.0])
    assert sum(v.size for k, v in sd.items()
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))) == n_params


@pytest.mark.skipif(not OFFICIAL_NAMES.is_file(), reason="not run from the repository")
def test_state_dict_names_are_the_official_ones_in_order():
    official = [line.split()[0] for line in OFFICIAL_NAMES.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    with Model("tiny", seed=0) as m:
        names = list(m.state_dict())
    assert set(names) <= set(official), set(names) - set(official)
    assert names == [n for n in official if n in set(names)]
    with Model("tiny", seed=0, fusion=False, trajectory_filter=False) as m:
        reduced = list(m.state_dict())
    assert not any(n.startswith(("fusion.", "filter.")) for n in reduced)
    assert reduced == [n for n in names if not n.startswith(("fusion.", "filter."))]


def test_state_dict_matches_the_saved_file(tmp_path):
    with trained_model(np.random.default_rng(5)) as m:
        sd = m.state_dict()
        m.save(tmp_path / "m.safetensors")
    tensors, _ = st.load(tmp_path / "m.safetensors")
    assert list(tensors) == list(sd)
    for k in sd:
        assert tensors[k].dtype == sd[k].dtype, k
        np.testing.assert_array_equal(tensors[k], sd[k], err_msg=k)


def test_state_dict_returns_copies():
    with Model("tiny", seed=0) as m:
        sd = m.state_dict()
        sd["final.2.weight"][:] = 123.0
        assert not np.any(m.state_dict()["final.2.weight"] == 123.0)


def test_load_state_dict_round_trip(rng):
    x = clips_like(rng)
    with trained_model(rng) as src, Model("tiny", seed=11) as dst:
        assert not np.array_equal(src.predict(x), dst.predict(x))
        dst.load_state_dict(src.state_dict())
        np.testing.assert_array_equal(dst.predict(x), src.predict(x))
        a, b = src.state_dict(), dst.state_dict()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert b["up8.bn.num_batches_tracked"] == 2


def test_modifying_one_weight_changes_predictions(rng):
    x = clips_like(rng)
    with Model("tiny", seed=0) as m:
        before = m.predict(x)
        w = m.state_dict()["final.2.weight"]
        w2 = w.copy()
        w2[0] += 0.5
        m.load_state_dict({"final.2.weight": w2}, strict=False)
        np.testing.assert_array_equal(m.state_dict()["final.2.weight"], w2)
        after = m.predict(x)
        assert not np.array_equal(after[:, 0], before[:, 0])     # output channel 0 changed
        np.testing.assert_array_equal(after[:, 1:], before[:, 1:])  # the others did not
        m.load_state_dict({"final.2.weight": w}, strict=False)
        np.testing.assert_array_equal(m.predict(x), before)


def test_load_state_dict_errors():
    with Model("tiny", seed=0) as m:
        sd = m.state_dict()
        with pytest.raises(KeyError, match="missing.*conv_x1.weight"):
            m.load_state_dict({k: v for k, v in sd.items() if k != "conv_x1.weight"})
        with pytest.raises(KeyError, match="unexpected.*bogus"):
            m.load_state_dict({**sd, "bogus": np.zeros(1)})
        with pytest.raises(ValueError, match=r"final.2.weight.*\(3, 4, 1, 1\).*\(3, 4, 3, 3\)"):
            m.load_state_dict({"final.2.weight": np.zeros((3, 4, 1, 1))}, strict=False)
        # nothing was changed by the failed calls
        after = m.state_dict()
        for k in sd:
            np.testing.assert_array_equal(after[k], sd[k], err_msg=k)


# ---- loss_and_grads -------------------------------------------------------------------------

def test_loss_and_grads_covers_every_parameter(rng):
    x, g = clips_like(rng), targets_like(rng)
    with Model("tiny", seed=0) as m:
        sd = m.state_dict()
        loss, grads = m.loss_and_grads(x, g)
        assert isinstance(loss, float) and np.isfinite(loss) and loss > 0
        params = [k for k in sd if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        assert list(grads) == params
        for k in params:
            assert grads[k].shape == sd[k].shape and grads[k].dtype == np.float32, k
            assert np.all(np.isfinite(grads[k])), k
        assert sum(v.size for v in grads.values()) == m.num_parameters
        nonzero = [k for k in params if np.any(grads[k] != 0)]
        assert len(nonzero) >= 0.9 * len(params)
        for k in ["final.2.weight", "wrn38.mod1.conv1.weight", "filter.complex_weights",
                  "fusion.fusion.conv1.weight", "conv_x8.weight"]:
            assert k in nonzero, k
        # weights are unchanged; running statistics follow training mode
        after = m.state_dict()
        for k in params:
            np.testing.assert_array_equal(after[k], sd[k], err_msg=k)
        assert after["up8.bn.num_batches_tracked"] == 1
        assert after["wrn38.mod2.block1.bn1.0.num_batches_tracked"] == 4  # once per input frame
        assert not np.array_equal(after["up8.bn.running_mean"], sd["up8.bn.running_mean"])


def test_loss_and_grads_rejects_bad_targets(rng):
    with Model("tiny", seed=0) as m:
        with pytest.raises(ValueError, match=r"targets must have shape \(2, 3, 32, 48\)"):
            m.loss_and_grads(clips_like(rng), targets_like(rng, b=3))
        bad = targets_like(rng)
        bad[0, 0, 0, 0] = np.nan
        with pytest.raises(InfpError, match="targets holds a non-finite value"):
            m.loss_and_grads(clips_like(rng), bad)


@pytest.mark.parametrize("name", ["final.2.weight", "final.1.bn.weight"])
def test_loss_and_grads_finite_differences(rng, name):
    """d loss / d eps of loss(w ± eps·u) along the unit gradient direction u equals |grad|, and
    along a random unit direction v equals grad·v (central differences, dropout off; the
    training-mode loss does not depend on the BN running statistics the calls update)."""
    x, g = clips_like(rng), targets_like(rng)
    with Model("tiny", seed=0, dropout=False) as m:
        w0 = m.state_dict()[name].astype(np.float64)
        loss0, grads = m.loss_and_grads(x, g)
        assert m.loss_and_grads(x, g)[0] == loss0  # repeatable
        grad = grads[name].astype(np.float64)
        norm = np.linalg.norm(grad)
        assert norm > 1e-3

        def loss_at(w):
            m.load_state_dict({name: w.astype(np.float32)}, strict=False)
            return m.loss_and_grads(x, g)[0]

        eps = 1e-2
        for direction in (grad / norm, rng.normal(size=grad.shape)):
            u = direction / np.linalg.norm(direction)
            fd = (loss_at(w0 + eps * u) - loss_at(w0 - eps * u)) / (2 * eps)
            want = float(np.sum(grad * u))
            assert abs(fd - want) <= 3e-3 * norm, (fd, want, norm)
        # sanity: the check can fail — twice the gradient would not pass
        u = grad / norm
        fd = (loss_at(w0 + eps * u) - loss_at(w0 - eps * u)) / (2 * eps)
        assert abs(fd - 2 * norm) > 3e-3 * norm
        m.load_state_dict({name: w0.astype(np.float32)}, strict=False)
        assert m.loss_and_grads(x, g)[0] == loss0


# ---- lifetime and threads ---------------------------------------------------------------------

def test_close_then_use_is_a_clear_error(rng):
    m = Model("tiny", seed=0)
    m.close()
    assert repr(m) == "Model(closed)"
    for use in (lambda: m.predict(clips_like(rng)), lambda: m.config, lambda: m.num_parameters,
                lambda: m.save("never-written.safetensors"), lambda: m.score(np.zeros((5, H, W, 3), np.uint8)),
                lambda: m.train_step(clips_like(rng), targets_like(rng)), lambda: setattr(m, "threads", 1)):
        with pytest.raises(ValueError, match="closed"):
            use()
    assert not os.path.exists("never-written.safetensors")
    m.close()  # closing twice is fine


def test_close_then_state_api_is_a_clear_error():
    m = Model("tiny", seed=0)
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.state_dict()


def test_context_manager_closes(rng):
    with Model("tiny", seed=0) as m:
        assert isinstance(m, Model)
        assert m.predict(clips_like(rng, b=1)).shape == (1, 3, H, W)
    assert repr(m) == "Model(closed)"
    with pytest.raises(ValueError, match="closed"):
        m.predict(clips_like(rng, b=1))
    # closes on exceptions too
    with pytest.raises(KeyError):
        with Model("tiny", seed=0) as m2:
            raise KeyError("boom")
    assert repr(m2) == "Model(closed)"


def test_threads(rng):
    x = clips_like(rng)
    with Model("tiny", seed=0, threads=2) as m:
        assert m.threads == 2
        y2 = m.predict(x)
        m.threads = 1
        assert m.threads == 1
        np.testing.assert_allclose(m.predict(x), y2, rtol=1e-5, atol=1e-5 * np.abs(y2).max())
        m.threads = 0  # all cores
        assert m.threads == 0
        for bad in (-1, 100000):
            with pytest.raises(InfpError, match=f"n_threads is {bad}") as e:
                m.threads = bad
            assert e.value.status_name == "invalid argument"
            assert m.threads == 0  # unchanged
    with pytest.raises(InfpError, match="n_threads"):
        Model("tiny", threads=-2)
