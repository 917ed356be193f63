"""The model contract, checked for every registered family with a tiny configuration."""
import math
import re

import pytest
import torch

import argen
from argen.gradients import gradient_by_distance
from argen.gradients import main as gradients_main
from argen.schedules import from_raster, raster_logits, raster_values
from conftest import FULL_FIELD, grey, make_tiny, random_batch


def test_forward_shapes(tiny):
    x, y = random_batch(tiny, batch=3)
    logits = tiny(x, y)
    assert logits.shape == (3, tiny.levels, *tiny.value_shape)
    assert torch.isfinite(logits).all()


def influence(model, x, y, threshold=1e-6):
    """``[n, n]`` bools: changing raster value j of image x moves the logits of value i."""
    n = model.num_values
    base = raster_logits(model(x, y))[0]  # (n, K)
    perturbed = raster_values(x).repeat(n, 1)  # row j changes value j
    perturbed[torch.arange(n), torch.arange(n)] = (perturbed.diagonal() + 1) % model.levels
    c, h, w = model.value_shape
    images = perturbed.reshape(n, h, w, c).permute(0, 3, 1, 2)
    logits = raster_logits(model(images, None if y is None else y.repeat(n)))  # (n, n, K)
    return (logits - base).abs().amax(-1) > threshold


def receptive_fields(model, threshold=1e-6):
    """``influence`` over several contexts, so a unit that is dead in one does not hide a path."""
    n = model.num_values
    changed = torch.zeros(n, n, dtype=torch.bool)
    for seed in range(3):
        changed |= influence(model, *random_batch(model, batch=1, seed=seed), threshold)
    return changed


def test_causality(tiny):
    """Changing a value drawn at step j of the model's own schedule (raster, coarse-to-fine, or a
    scale of a pyramid) changes no logits of values drawn at steps <= j, every value after the first
    step depends on earlier ones, and none is blind to an earlier one where the model promises so."""
    if not tiny.exact_likelihood:
        pytest.skip("not autoregressive (test_masked_values_are_hidden checks what it sees)")
    n, c = tiny.num_values, tiny.value_shape[0]
    steps = tiny.schedule().steps_of(n)
    changed = receptive_fields(tiny)  # [value j, value i], raster positions
    earlier = steps[:, None] < steps[None, :]  # [j, i]: j drawn at a step before i's
    assert not changed[~earlier].any(), "a value's logits depend on a value of its own step or a later one"
    assert changed[:, steps > 0].any(0).all(), "some value's logits ignore all earlier values"
    if c > 1:  # colour channels are autoregressive inside a pixel: G sees R, B sees G (raster order here)
        inside = torch.arange(n - 1)[torch.arange(n - 1) % c != c - 1]
        assert changed[inside, inside + 1].all(), "a colour channel ignores the previous one of its pixel"
    if tiny.tiny_name in FULL_FIELD:
        assert changed[earlier].all(), "a value's logits ignore some earlier value (a blind spot)"


def test_masked_values_are_hidden():
    """MaskGIT: a value's logits see every drawn value and nothing of the hidden ones."""
    model = make_tiny("maskgit")
    x, y = random_batch(model, batch=1)
    drawn = torch.rand(model.value_shape) < 0.5
    drawn = drawn[None]
    base = raster_logits(model(x, y, drawn))
    hidden_changed = torch.where(drawn, x, (x + 1) % model.levels)
    assert torch.equal(raster_logits(model(hidden_changed, y, drawn)), base)
    seen_changed = torch.where(drawn, (x + 1) % model.levels, x)
    assert ((raster_logits(model(seen_changed, y, drawn)) - base).abs().amax(-1) > 1e-6).all()


def test_multiscale_pixels_see_the_small_image_ahead():
    """Multi-scale PixelRNN: the small image's pixels come from the small model alone and see no
    other pixel; every other pixel sees small-image pixels below it (through its upsampled gate
    biases), which no model in raster order could."""
    model = make_tiny("multiscale-pixelrnn")
    f = model.config.factor
    x, y = random_batch(model, batch=2)
    assert torch.equal(model(x, y)[..., ::f, ::f], model.small(x[..., ::f, ::f], y))
    coarse = torch.zeros(model.value_shape, dtype=torch.bool)
    coarse[..., ::f, ::f] = True
    coarse = coarse.flatten()  # raster positions (one channel)
    seen = receptive_fields(model)  # [j, i]: value j moves the logits of value i
    later = torch.ones_like(seen).tril(-1)  # [j, i]: j after i in raster order
    assert not seen[~coarse][:, coarse].any(), "a small-image pixel sees a full-size one"
    ahead = ~coarse & (torch.arange(len(coarse)) < coarse.nonzero().max())  # with a small-image pixel after it
    assert (seen & later & coarse[:, None]).any(0)[ahead].all(), "a pixel does not see the small image below it"


def test_row_lstm_field_is_a_triangle():
    """Row LSTM: pixel (i, j) sees row r < i within the triangle |c - j| <= i - r, and no further than
    that widened by the input convolution's reach (on the left also one column per layer, from the
    masked 1-D convolutions along the rows); in row i only pixels to its left: not the whole past."""
    torch.set_default_dtype(torch.float64)  # influence fades over rows: float64 shows the faintest
    try:
        model = make_tiny("row-lstm")
        seen = receptive_fields(model, threshold=1e-13)
    finally:
        torch.set_default_dtype(torch.float32)
    _, height, width = model.value_shape
    reach = model.input.kernel_size[0] // 2
    seen = seen.reshape(height, width, height, width)  # [r, c, i, j]
    r, c, i, j = torch.meshgrid(*(torch.arange(s) for s in seen.shape), indexing="ij")
    core = (r < i) & ((c - j).abs() <= i - r)
    widening = torch.where(c < j, reach + len(model.layers), reach)
    allowed = ((r < i) & ((c - j).abs() <= i - r + widening)) | ((r == i) & (c < j))
    assert seen[core].all(), "a pixel ignores part of the triangle above it"
    assert not seen[~allowed].any(), "a pixel sees beyond its triangle"
    assert not seen[(r < i)].all(), "the Row LSTM should not see the whole past"


def test_class_changes_logits(tiny):
    if not tiny.num_classes:
        pytest.skip("unconditional model")
    x, _ = random_batch(tiny, batch=1)
    assert not torch.allclose(tiny(x, torch.tensor([0])), tiny(x, torch.tensor([1])))


def test_save_load_round_trip(tiny, tmp_path):
    tiny.save(tmp_path / "m")
    loaded = argen.load(tmp_path / "m")
    assert type(loaded) is type(tiny) and not loaded.training
    x, y = random_batch(tiny)
    assert torch.equal(tiny(x, y), loaded(x, y))
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_nll_matches_sum_of_log_probs(tiny):
    x, y = random_batch(tiny)
    if not tiny.exact_likelihood:
        with pytest.raises(ValueError, match="has no exact likelihood"):
            argen.nll(tiny, x, y)
        return
    log_probs = tiny(x, y).log_softmax(1)
    picked = log_probs.gather(1, x.unsqueeze(1)).flatten(1).sum(1)
    assert torch.allclose(argen.nll(tiny, x, y), -picked, atol=1e-4)


@pytest.mark.parametrize("bad, message", [
    (lambda m: torch.zeros(1, *m.value_shape), "integer tensor"),
    (lambda m: torch.zeros(1, 1, 3, 3, dtype=torch.long), "shape"),
    (lambda m: torch.full((1, *m.value_shape), m.levels), "levels in"),
])
def test_bad_images(tiny, bad, message):
    y = torch.tensor([0]) if tiny.num_classes else None
    with pytest.raises(ValueError, match=message):
        tiny(bad(tiny), y)


def test_labels_must_match_conditioning(tiny):
    x, _ = random_batch(tiny, batch=1)
    if tiny.num_classes:
        with pytest.raises(ValueError, match="class-conditional"):
            tiny(x)
        with pytest.raises(ValueError, match=f"labels must be in \\[0, {tiny.num_classes}\\)"):
            tiny(x, torch.tensor([tiny.label_count]))
    else:
        with pytest.raises(ValueError, match="unconditional"):
            tiny(x, torch.tensor([0]))


def test_unknown_model_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        argen.load("no-such-model")
    (tmp_path / "config.json").write_text('{"model_type": "mlp"}')
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        argen.load(tmp_path)


def test_gradient_diagnostic_measures_every_earlier_pixel(tmp_path):
    model = make_tiny("lstm")
    x, y = random_batch(model, batch=2)
    curve = gradient_by_distance(model, x, y, targets=[20, 25])
    assert curve.shape == (21,) and (curve > 0).all() and torch.isfinite(curve).all()
    for name in ("pixelcnn", "lstm-rgb"):  # not an LSTM; an LSTM whose output is a mixture, not K logits
        make_tiny(name).save(tmp_path / name)
        with pytest.raises(SystemExit, match="not a grey sequence LSTM with a softmax output"):
            gradients_main([str(tmp_path / name)])


def test_config_is_the_single_source_of_defaults(tiny, tmp_path):
    """config.json holds exactly the config dataclass's fields (and model_type), codec included."""
    import dataclasses
    import json

    tiny.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved == {"model_type": tiny.model_type, **json.loads(json.dumps(dataclasses.asdict(tiny.config)))}
    assert saved["codec"] == tiny.codec.spec and saved["codec"]["kind"] == tiny.codec.kind
    assert type(tiny)(**{k: v for k, v in saved.items() if k != "model_type"}).config == tiny.config


def test_bad_configs():
    from argen.configs import build

    with pytest.raises(ValueError, match="unknown config fields \\['hiden_dim'\\]"):
        build(argen.models.PixelLSTM, {"hiden_dim": 3})
    with pytest.raises(ValueError, match="codec spec is a dict whose 'kind' is one of"):
        argen.models.PixelLSTM(codec={"kind": "jpeg"})
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0"):
        argen.models.PixelCNN(num_classes=-1)
    with pytest.raises(ValueError, match="models one channel"):
        argen.models.GatedPixelCNN(codec=argen.models.Levels(4, (3, 5, 5)))


def test_nll_refuses_a_model_without_exact_likelihood(monkeypatch):
    model = make_tiny("pixel-gpt")
    monkeypatch.setattr(type(model), "exact_likelihood", False)
    x, y = random_batch(model)
    with pytest.raises(ValueError, match="has no exact likelihood"):
        argen.nll(model, x, y)


@pytest.mark.parametrize("name", ["pixelcnnpp", "pixelcnnpp-rgb", "pixelcnnpp-softmax"])
def test_scores_at_values_are_the_logits_at_the_values(name):
    """The training path (log-probabilities of the values alone) is the forward logits at the values."""
    model = make_tiny(name)
    x, y = random_batch(model)
    log_probs = model(x, y).log_softmax(1)
    if model.config.output == "logistic-mixture":  # its logits are the log-probabilities: they sum to 1
        assert torch.allclose(model(x, y), log_probs, atol=1e-5)
    assert torch.allclose(model(x, y, at_values=True), log_probs.gather(1, x[:, None])[:, 0], atol=1e-5)


@pytest.mark.parametrize("small", [1 << 20, 0], ids=["components at once", "one component at a time"])
def test_discretized_logistic_mixture_matches_its_definition(small, monkeypatch):
    """Bin masses of a mixture of logistics, computed in float64 from the CDF, tails included, and
    no collapse where a bin is a sliver of a wide logistic; both ways of computing them (a few
    positions at once, whole images a component at a time)."""
    from argen.distributions import logistic_mixture_log_probs

    monkeypatch.setattr("argen.distributions.SMALL", small)

    g = torch.Generator().manual_seed(0)
    levels, shape = 7, (2, 3, 1, 2, 2)  # (B, M, C, H, W)
    weights, means, log_scales = torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(shape, generator=g) - 2
    got = logistic_mixture_log_probs(weights.log_softmax(1), means, log_scales, levels)
    edges = torch.linspace(-1, 1, levels, dtype=torch.float64)[:-1] + 1 / (levels - 1)
    cdf = torch.sigmoid((edges.view(1, 1, -1, 1, 1, 1) - means.double()[:, :, None]) / log_scales.double().exp()[:, :, None])
    cdf = torch.cat([torch.zeros_like(cdf[:, :, :1]), cdf, torch.ones_like(cdf[:, :, :1])], 2)  # (B, M, K + 1, ...)
    mass = ((cdf[:, :, 1:] - cdf[:, :, :-1]) * weights.double().softmax(1)[:, :, None]).sum(1)
    assert torch.allclose(got.double().exp(), mass, atol=1e-6)
    one = torch.zeros(1, 1, 1, 1, 1)
    far = logistic_mixture_log_probs(one, one + 30, one - 7, 256)
    assert torch.isfinite(far).all() and far[0, -1].exp() > 0.999  # a mean far right: the top bin, no NaN
    wide = logistic_mixture_log_probs(one, one, one + 12, 256)[0, 100]  # scale e^12: mass ~ (2/255) / (4 e^12)
    assert float(wide) == pytest.approx(math.log(2 / 255 / 4) - 12, abs=1e-3)


def assert_steps_are_the_whole_network(model, y, batch, num_steps, atol, seed=0):
    """Each of the first ``num_steps`` steps of the model's fast path, in the model's own schedule,
    against one whole-network pass; the step sees other values from its own step on (noise), so
    it must not read them."""
    n, schedule = model.num_values, model.schedule()
    steps = schedule.steps_of(n)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.levels, (batch, *model.value_shape), generator=generator)
    with torch.no_grad():
        full = raster_logits(model(x, y))  # (B, n, K)
        step = model.fast_sampler(y, batch)
        for i in range(num_steps):
            at, later = schedule.positions(i, n), (steps >= i).nonzero()[:, 0]
            seen = raster_values(x).clone()
            seen[:, later] = torch.randint(0, model.levels, (batch, len(later)), generator=generator)
            first = at.start if isinstance(at, slice) else int(at[0])
            logits = step(from_raster(seen, model.value_shape), first)
            logits = logits[:, None] if logits.dim() == 2 else logits
            assert torch.allclose(logits, full[:, at], atol=atol), (i, at)


@pytest.mark.parametrize("name", ["pixelcnnpp", "pixelcnnpp-games", "pixelcnn", "pixelcnn-games", "row-lstm",
                                  "diagonal-bilstm", "gated-pixelcnn", "gated-pixelcnn-binary", "multiscale-pixelrnn",
                                  "pixel-gpt", "bsq-gpt", "lstm", "mlp-v1", "mlp-v3", "var"])
def test_fast_path_is_the_whole_network_on_shipped_weights(name):
    """Every step of the shipped model's fast path over its first 6 rows against one whole-network
    pass: for PixelCNN++ past a block of 4 rows and through each scale's new positions, for
    PixelCNN through row starts and the channels of a colour pixel, for the PixelRNNs through the
    input convolution's rows and the mirrored scan, for the Gated PixelCNNs through the vertical
    stack's rows, for the GPTs through their KV caches, for the MLPs through the start tokens of
    the first row (their window layer a table); the multi-scale PixelRNN's every step (its order
    draws the small image first), and VAR's every scale."""
    model = argen.load(name)
    c, _, width = model.value_shape
    steps = model.schedule().num_steps(model.num_values) if name in ("multiscale-pixelrnn", "var") else 6 * width * c
    labels = torch.tensor([3, 7]) if model.num_classes else None
    assert_steps_are_the_whole_network(model, labels, 2, steps, atol=1e-3)


@pytest.mark.parametrize("family", ["row-lstm", "diagonal-bilstm", "multiscale-pixelrnn"])
@pytest.mark.parametrize("input_kernel_size", [1, 5])
@pytest.mark.parametrize("num_classes, batch", [(0, 3), (10, 1)], ids=["unconditional", "one image"])
def test_pixelrnn_fast_paths_for_other_shapes(family, input_kernel_size, num_classes, batch):
    """The PixelRNN fast paths' input convolution is sized by its kernel (1 x 1 reaches no row
    above), with and without classes, for any batch (the multi-scale model in its own order)."""
    torch.manual_seed(0)
    shape = {"hidden_channels": 4, "num_layers": 2, "input_kernel_size": input_kernel_size, "output_channels": 8}
    if family == "multiscale-pixelrnn":
        shape.update(small_hidden_channels=4, small_num_layers=1, conditioning_channels=4)
    model = argen.models.FAMILIES[family](codec=grey(5, (1, 6, 8)), num_classes=num_classes, **shape).eval()
    with torch.no_grad():
        for p in model.parameters():  # away from the initialisation's zeros
            p.add_(torch.randn_like(p) * 0.3)
    y = torch.tensor([4]) if num_classes else None
    assert_steps_are_the_whole_network(model, y, batch, model.num_values, atol=1e-4)


def test_lstm_step_is_the_cells_equations():
    """The fast paths' LSTM cell: one ``torch.lstm_cell`` on the CPU, the cell's equations on other
    devices (CUDA's fused cell takes only 1-D biases), the same up to rounding."""
    from argen.models.pixelrnn import lstm_step, lstm_step_equations

    g = torch.Generator().manual_seed(0)
    x, h, c = torch.randn(3, 6, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    w_input, w_state = torch.randn(16, 6, generator=g), torch.randn(16, 4, generator=g)
    biases = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    for bias_2 in (biases[1], None):
        fused, equations = (f(x, (h, c), w_input, w_state, biases[0], bias_2) for f in (lstm_step, lstm_step_equations))
        for a, b in zip(fused, equations):
            assert torch.allclose(a, b, atol=1e-6)


def test_pixelcnnpp_rejects_grids_it_cannot_halve():
    with pytest.raises(ValueError, match="num_scales 3 halves the 6 x 5 value grid 2 times"):
        argen.models.PixelCNNPP(codec=grey(4), num_scales=3)
    with pytest.raises(ValueError, match="output must be one of"):
        argen.models.PixelCNNPP(codec=grey(4, (1, 4, 4)), num_scales=1, output="gaussian")


def test_the_kv_cache_holds_exactly_the_sequence():
    """The GPT's KV cache is allocated once for every position (class token + values), is filled
    in place, and says so when asked for one position more."""
    model = make_tiny("pixel-gpt")
    step = model.gpt.stepper(torch.tensor([3]))
    logits = step(None)
    for _ in range(model.num_values - 1):
        logits = step(logits.argmax(-1))
    with pytest.raises(ValueError, match=f"the KV cache holds {model.num_values} positions, and all are used"):
        step(logits.argmax(-1))


def test_about_is_markdown(tiny):
    """The app shows a family's module docstring: its Sphinx cross-references become Markdown code."""
    assert tiny.about and not re.search(r":(class|func|meth|mod):`", tiny.about)
    if tiny.model_type == "multiscale-pixelrnn":
        assert "the `CoarseToFine` order" in tiny.about


def test_step_linear_is_f_linear_up_to_rounding():
    from argen.models.layers import PACKED_MIN_SIZE, packed_linear, step_linear

    g = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(1024, 256, generator=g), torch.randn(1024, generator=g)
    assert weight.numel() >= PACKED_MIN_SIZE
    x = torch.randn(2, 256, generator=g)
    expected = torch.nn.functional.linear(x, weight, bias)
    assert torch.equal(step_linear(weight, bias, rows=1)(x), expected)  # one row: F.linear itself
    if torch.backends.mkldnn.is_available():
        assert packed_linear(weight, bias, 2) is not None
    assert torch.allclose(step_linear(weight, bias, rows=2)(x), expected, rtol=1e-5, atol=1e-4)
    x.requires_grad_()
    step_linear(weight, bias, rows=2)(x).sum().backward()  # with a gradient to carry: F.linear
    assert torch.allclose(x.grad, weight.sum(0).expand(2, -1), atol=1e-3)


def test_lstm_steps_are_the_shipped_lstm():
    """The fast path's LSTM, one step at a time with packed products for 2 rows (a guided image),
    gives nn.LSTM's outputs on the shipped weights."""
    from argen.models.lstm import LSTMSteps

    lstm = argen.load("lstm").lstm
    inputs = torch.randn(2, 40, lstm.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = lstm(inputs)[0]
        gates = torch.nn.functional.linear(inputs, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)
        steps, state, outputs = LSTMSteps(lstm, rows=2), None, []
        for t in range(inputs.shape[1]):
            out, state = steps(gates[:, t], state)
            outputs.append(out)
    assert torch.allclose(torch.stack(outputs, 1), expected, atol=1e-5)


def test_var_draws_a_scale_per_step_and_refuses_steps_out_of_order():
    """VAR's schedule is a scale per step; its stepper refuses a step that is not the next scale's,
    and the family refuses a codec that is not a pyramid."""
    from conftest import TINY_TOKENIZER

    model = make_tiny("var")
    assert repr(model.schedule()) == "NextScale(sizes=[1, 4, 12])" and model.schedule().num_steps(17) == 3
    step = model.fast_sampler(None if not model.num_classes else torch.tensor([1]), 1)
    x = torch.zeros(1, *model.value_shape, dtype=torch.long)
    assert step(x, 0).shape == (1, 1, model.levels)
    with pytest.raises(ValueError, match="the steps go scale by scale; scale 1 starts at 1, asked for position 5"):
        step(x, 5)
    assert step(x, 1).shape == (1, 4, model.levels)
    with pytest.raises(ValueError, match="VAR predicts a pyramid of tokens: its codec must be 'bsq-pyramid', got 'bsq-tokens'"):
        argen.models.VAR(codec=argen.models.Tokens(TINY_TOKENIZER))
