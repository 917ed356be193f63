import math
import re

import pytest
import torch

import argen
from argen.sampling import draw, entropy, seeded_uniforms
from argen.schedules import CoarseToFine, Raster, raster_logits, raster_values
from conftest import grey, labels_kwargs, make_tiny


def run(model, **kwargs):
    return list(argen.sample_stream(model, **{**labels_kwargs(model, 3), **kwargs}))


def test_stream_frames(tiny):
    sequential = tiny.schedule().order(tiny.num_values) is not None  # one value per step
    every = 4 if sequential else 1
    frames = run(tiny, every=every, seed=1)
    n, steps = tiny.num_values, tiny.schedule().num_steps(tiny.num_values)
    assert len(frames) == math.ceil(steps / every) and frames[-1].done and not frames[0].done
    assert frames[-1].num_steps == steps and frames[-1].drawn.all()
    if sequential:
        assert [f.values_done for f in frames[:2]] == [4, 8] and steps == n
    for frame in frames:
        sampled = ~torch.isnan(frame.prob)
        assert torch.equal(sampled, frame.drawn) and sampled.sum().item() == 3 * frame.values_done
        assert (frame.image[~frame.drawn] == 0).all()
        assert frame.committed.any() and (frame.committed <= frame.drawn).all()
        assert ((frame.prob[sampled] > 0) & (frame.prob[sampled] <= 1)).all()
        ent = frame.entropy[sampled]
        assert ((ent >= -1e-6) & (ent <= math.log(tiny.levels) + 1e-5)).all()
        assert torch.allclose(frame.dist.sum(-1), torch.ones(3))
        assert frame.image.shape == (3, *tiny.value_shape)
        assert (frame.nll_bits > 0).all()
    if sequential:
        assert frames[-1].committed[:, -1, -1, -1].all()  # raster and coarse-to-fine: the last value comes last


def test_seeded_determinism(tiny):
    a = argen.sample(tiny, seed=3, **labels_kwargs(tiny, 4))
    b = argen.sample(tiny, seed=3, **labels_kwargs(tiny, 4))
    c = argen.sample(tiny, seed=4, **labels_kwargs(tiny, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_every_bit_of_a_seed_counts():
    """torch's generator keeps 32 bits of a seed; the sampler mixes in the rest, and a seed below
    2^32 keeps torch's own numbers (so earlier samples are unchanged)."""
    model = make_tiny("pixel-gpt")
    seeds = (0, 2**32, 2**63 - 1, 2**63 - 2**32)
    images = [argen.sample(model, seed=seed, **labels_kwargs(model, 4)) for seed in seeds]
    assert all(not torch.equal(images[i], images[j]) for i in range(4) for j in range(i))
    u, _ = seeded_uniforms(7, (2, 5))
    assert torch.equal(u, torch.rand(2, 5, generator=torch.Generator().manual_seed(7)))
    u, _ = seeded_uniforms(2**63 - 1, (1000,))
    assert 0 <= float(u.min()) and float(u.max()) < 1 and 0.45 < float(u.mean()) < 0.55
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\^63\), got 9223372036854775808"):
        argen.sample(model, seed=2**63, **labels_kwargs(model, 1))


def test_fast_path_equals_naive_path(tiny):
    top_k = min(3, tiny.levels)
    fast = run(tiny, seed=5, every=7, temperature=0.8, top_k=top_k)
    naive = run(tiny, seed=5, every=7, temperature=0.8, top_k=top_k, fast=False)
    assert tiny.has_fast_path or tiny.schedule().order(tiny.num_values) is None
    for f, g in zip(fast, naive, strict=True):
        assert torch.equal(f.image, g.image)
        assert torch.allclose(f.prob.nan_to_num(-1), g.prob.nan_to_num(-1), atol=1e-5)


def test_coarse_to_fine_draws_the_small_image_first():
    """The multi-scale model's frames show the small image complete before any other pixel, and a
    schedule other than the model's own falls back to the naive path (its fast path would be wrong)."""
    model = make_tiny("multiscale-pixelrnn")
    n, f = model.num_values, model.config.factor
    frames = list(argen.sample_stream(model, labels=[3, 1], every=n // f**2, seed=2))
    coarse = torch.zeros(model.value_shape, dtype=torch.bool)
    coarse[..., ::f, ::f] = True
    assert torch.equal(frames[0].drawn, coarse.expand(2, -1, -1, -1)) and frames[-1].drawn.all()
    small = frames[0].image[..., ::f, ::f]  # shown enlarged, then refined
    enlarged = model.codec.decode(small.repeat_interleave(f, 2).repeat_interleave(f, 3))
    assert torch.equal(argen.pipelines.pictures(model, frames[0]), enlarged)
    assert torch.equal(argen.pipelines.pictures(model, frames[-1]), model.codec.decode(frames[-1].image))
    raster = dict(labels=[3, 1], seed=2, schedule=Raster())
    assert torch.equal(argen.sample(model, **raster), argen.sample(model, fast=False, **raster))


def test_row_lstm_fast_path_goes_down_the_rows():
    """Rows may be skipped in part (the multi-scale model's full-size pass) but not revisited."""
    model = make_tiny("multiscale-pixelrnn").large
    step, x = model.fast_sampler(torch.tensor([1]), 1), torch.zeros(1, *model.value_shape, dtype=torch.long)
    step(x, 9)
    with pytest.raises(ValueError, match="goes down the rows: asked for row 1, column 0 after column 1 of row 1"):
        step(x, 8)


def test_diagonal_bilstm_fast_path_goes_pixel_by_pixel():
    """Its scans carry their state from one pixel to the next: a skipped or revisited pixel is an error."""
    model = make_tiny("diagonal-bilstm")
    step, x = model.fast_sampler(torch.tensor([1]), 1), torch.zeros(1, *model.value_shape, dtype=torch.long)
    step(x, 0)
    with pytest.raises(ValueError, match="goes pixel by pixel in raster order: asked for pixel 2 after pixel 0"):
        step(x, 2)


def test_pixelcnnpp_fast_path_goes_pixel_by_pixel():
    """Its down-right stream gains one position per map and pixel: a skipped or revisited pixel is an error."""
    model = make_tiny("pixelcnnpp-rgb")
    step, x = model.fast_sampler(None, 1), torch.zeros(1, *model.value_shape, dtype=torch.long)
    for t in range(4):  # pixel 0's three channels, then pixel 1's first
        step(x, t)
    for t, asked in [(0, "channel 0 of pixel 0"), (9, "channel 0 of pixel 3"), (7, "channel 1 of pixel 2")]:
        with pytest.raises(ValueError, match=f"goes pixel by pixel in raster order: asked for {asked} after pixel 1"):
            step(x, t)
    step(x, 4)  # pixel 1 goes on


def test_pixelcnn_fast_path_goes_value_by_value():
    """Its row buffers hold the values drawn so far: a skipped or revisited value is an error."""
    model = make_tiny("pixelcnn-rgb")
    step, x = model.fast_sampler(None, 1), torch.zeros(1, *model.value_shape, dtype=torch.long)
    for t in range(4):
        step(x, t)
    for t in (0, 3, 5):
        with pytest.raises(ValueError, match=f"goes value by value in raster order: asked for value {t} after value 3"):
            step(x, t)
    step(x, 4)


@pytest.mark.parametrize("name", ["pixelcnnpp-rgb", "mlp-v1"])
def test_in_training_mode_with_dropout_a_model_samples_by_the_whole_network(name):
    """PixelCNN++'s position-wise fast path and the MLP's table leave dropout out, so a model being
    trained with dropout has no fast path."""
    model = make_tiny(name)
    model.config.dropout = 0.0
    assert model.fast_sampler(None, 1) is not None and model.train().fast_sampler(None, 1) is not None
    model.config.dropout = 0.5
    assert model.eval().fast_sampler(None, 1) is not None and model.train().fast_sampler(None, 1) is None


@pytest.mark.parametrize("position", [(0, 6, 0), (1, 0, 0), (0, -1, 2), (0, 1)])
def test_bad_positions(position):
    with pytest.raises(ValueError, match=r"position must be \(channel, row, col\) inside the value grid \(1, 6, 8\)"):
        argen.pipelines.drawn_before(make_tiny("multiscale-pixelrnn"), position)


def test_multiscale_needs_pixels():
    from conftest import TINY_TOKENIZER

    with pytest.raises(ValueError, match="models pixels \\(a levels or binary codec\\), got a 'bsq-tokens' codec"):
        argen.models.MultiScalePixelRNN(codec=argen.models.Tokens(TINY_TOKENIZER), hidden_channels=4)


@pytest.mark.parametrize("factor", [1, 3, 2.0, True])
def test_bad_coarse_to_fine_factor(factor):
    with pytest.raises(ValueError, match=f"factor must be an integer >= 2 that divides the height and width 6 x 8, got {factor!r}"):
        CoarseToFine((1, 6, 8), factor)


@pytest.mark.parametrize("kernel_size, input_kernel_size", [(5, 3), (3, 5), (5, 7)])
def test_gated_fast_path_for_other_kernels(kernel_size, input_kernel_size):
    """The gated fast path's caches are sized by the kernels: other widths give the naive samples too."""
    model = argen.models.GatedPixelCNN(codec=argen.models.Levels(4, (1, 7, 6)), hidden_channels=6, num_layers=3,
                                       kernel_size=kernel_size, input_kernel_size=input_kernel_size,
                                       output_channels=8).eval()
    fast, naive = (run(model, seed=1, every=5, fast=fast) for fast in (True, False))
    for f, g in zip(fast, naive, strict=True):
        assert torch.equal(f.image, g.image)
        assert torch.allclose(f.prob.nan_to_num(-1), g.prob.nan_to_num(-1), atol=1e-5)


@pytest.mark.parametrize("kernel_size, input_kernel_size, channels", [(1, 1, 1), (1, 3, 3), (5, 1, 3), (3, 5, 1)])
def test_pixelcnn_fast_path_for_other_kernels(kernel_size, input_kernel_size, channels):
    """The PixelCNN fast path's caches are sized by the kernels, a 1 x 1 kernel reaching no row above:
    other sizes give the naive samples too, grey and RGB."""
    torch.manual_seed(0)
    model = argen.models.PixelCNN(codec=argen.models.Levels(4, (channels, 5, 4)), hidden_channels=6, num_blocks=2,
                                  kernel_size=kernel_size, input_kernel_size=input_kernel_size).eval()
    fast, naive = (run(model, seed=1, every=5, fast=fast) for fast in (True, False))
    for f, g in zip(fast, naive, strict=True):
        assert torch.equal(f.image, g.image)
        assert torch.allclose(f.prob.nan_to_num(-1), g.prob.nan_to_num(-1), atol=1e-5)


def test_nll_of_sample_matches_likelihood(tiny):
    if not tiny.exact_likelihood:
        pytest.skip("no exact likelihood")
    last = run(tiny, seed=2)[-1]
    kwargs = labels_kwargs(tiny, 3)
    y = torch.as_tensor(kwargs["labels"]) if "labels" in kwargs else None
    expected = argen.nll(tiny, last.image, y) / math.log(2)
    assert torch.allclose(last.nll_bits, expected, rtol=1e-4)


def test_top_k_one_is_greedy(tiny):
    frames = run(tiny, seed=0, top_k=1)
    sampled = ~torch.isnan(frames[-1].prob)
    assert torch.allclose(frames[-1].prob[sampled], torch.ones(1))


def test_prompt_is_kept(tiny):
    prompt = argen.sample(tiny, seed=9, **labels_kwargs(tiny, 3))
    keep = tiny.num_values // 2
    last = run(tiny, seed=1, prompt=prompt, keep=keep)[-1]
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(3, -1)  # noqa: E731
    assert torch.equal(flat(last.image)[:, :keep], flat(prompt)[:, :keep])
    assert not torch.equal(last.image, prompt)
    assert torch.equal(last.image, run(tiny, seed=1, prompt=prompt, keep=keep, fast=False)[-1].image)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0}, "temperature"), ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"), ({"temperature": float("inf")}, "temperature"),
    ({"top_k": 0}, "top_k"), ({"top_k": 99}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"every": 0}, "every"),
    ({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"), ({"seed": 1.5}, "seed"), ({"keep": 3}, "needs a prompt"),
])
def test_bad_sampling_arguments(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(tiny, **kwargs)


def test_bad_batches(tiny):
    with pytest.raises(ValueError):
        next(argen.sample_stream(tiny, **labels_kwargs(tiny, 0)))
    with pytest.raises(ValueError, match="number of images"):
        next(argen.sample_stream(tiny, **labels_kwargs(tiny, 1000)))
    if tiny.num_classes:
        with pytest.raises(ValueError, match="labels must be in"):
            next(argen.sample_stream(tiny, labels=[tiny.label_count]))


def test_confidence_schedule_commits_the_most_confident(tiny):
    """MaskGIT's schedule through the same sampler: a cosine number of values per step, each step's
    commits among the most probable proposals when the Gumbel temperature is 0, and all drawn at the end."""
    schedule = argen.Confidence(steps=4, choice_temperature=0.0)
    n = tiny.num_values
    frames = run(tiny, seed=3, schedule=schedule)
    assert len(frames) == 4 and frames[-1].done and frames[-1].drawn.all()
    drawn = [f.drawn.flatten(1).sum(1) for f in frames]
    expected = [n - schedule.masked_after(step, n) for step in range(4)]
    assert all((d == e).all() for d, e in zip(drawn, expected))
    # step 1 by hand: the model's proposals from the seeded uniforms, ranked by their probability
    kwargs = labels_kwargs(tiny, 3)
    y = torch.as_tensor(kwargs["labels"]) if "labels" in kwargs else None
    u = torch.rand(3, n, generator=torch.Generator().manual_seed(3))
    dist = raster_logits(tiny.predict(frames[0].image, y, frames[0].drawn)).softmax(-1)
    proposal_prob = dist.gather(-1, draw(dist, u)[..., None])[..., 0].masked_fill(raster_values(frames[0].drawn), -1)
    count = expected[1] - expected[0]
    top = proposal_prob.topk(count, dim=1).indices
    committed = raster_values(frames[1].committed)
    assert committed.sum(1).eq(count).all() and committed.gather(1, top).all()
    assert torch.equal(frames[-1].image, run(tiny, seed=3, schedule=schedule)[-1].image)


def test_confidence_schedule_keeps_the_prompt(tiny):
    prompt = argen.sample(tiny, seed=9, **labels_kwargs(tiny, 3))
    keep = torch.zeros(tiny.value_shape, dtype=torch.bool)
    keep[:, 0] = True  # the first row
    frames = run(tiny, seed=2, prompt=prompt, keep=keep, schedule=argen.Confidence(steps=3))
    assert frames[0].committed[:, keep].all()  # kept values first
    assert torch.equal(frames[-1].image[:, keep], prompt[:, keep])


def test_benchmark_prints_both_paths(tmp_path, monkeypatch, capsys):
    from argen.benchmark import main as benchmark

    make_tiny("gated-pixelcnn").save(tmp_path / "tiny-gated")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    benchmark(["tiny-gated", "--naive", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    header, fast, naive = [line for line in lines if line.startswith(("model ", "tiny-gated "))]
    assert "speed-up 10" in header and fast.split()[:2] == ["tiny-gated", "fast"]
    ratios = naive.split()[-2:]
    assert naive.split()[1] == "naive" and all(r.endswith("x") and float(r[:-1]) > 0 for r in ratios)


def test_benchmark_profile_names_the_costly_operators(tmp_path, monkeypatch, capsys):
    from argen.benchmark import main as benchmark

    make_tiny("maskgit").save(tmp_path / "tiny-maskgit")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    benchmark(["tiny-maskgit", "--profile", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tiny-maskgit" and lines[1].startswith("  one image: ")
    assert any("aten::" in line and line.endswith("calls") for line in lines[2:])


def test_benchmark_times_the_sampler_alone(tmp_path, monkeypatch, capsys):
    from argen.benchmark import main as benchmark

    make_tiny("row-lstm").save(tmp_path / "tiny-row")
    make_tiny("maskgit").save(tmp_path / "tiny-maskgit")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    benchmark(["tiny-row", "tiny-maskgit", "--sampler", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"tiny-row: the sampler alone \d\.\d{3} s per image, \d+ us per step", lines[0])
    assert lines[1] == "tiny-maskgit: no fast path one value at a time"


def test_guidance_is_exact_and_fast_equals_naive(tiny):
    if not tiny.can_guide:
        with pytest.raises(ValueError, match="guidance needs a class-conditional model"):
            run(tiny, guidance=2.0)
        return
    guided = run(tiny, seed=4, every=5, guidance=2.5)
    naive = run(tiny, seed=4, every=5, guidance=2.5, fast=False)
    for f, g in zip(guided, naive, strict=True):
        assert torch.equal(f.image, g.image)
        assert torch.allclose(f.prob.nan_to_num(-1), g.prob.nan_to_num(-1), atol=1e-5)
    assert torch.equal(run(tiny, seed=4, guidance=1)[-1].image, run(tiny, seed=4)[-1].image)
    if not tiny.exact_likelihood:
        return
    # the reported NLL is the model's own (unguided) likelihood of the guided sample
    y = torch.as_tensor(labels_kwargs(tiny, 3)["labels"])
    assert torch.allclose(guided[-1].nll_bits, argen.nll(tiny, guided[-1].image, y) / math.log(2), rtol=1e-4)


def test_guidance_follows_the_bayes_rule():
    """Scale 0 samples from the class-free mixture: the first value's distribution is the mean of
    the class-conditional ones (a uniform prior over classes)."""
    model = make_tiny("pixel-gpt")
    first = run(model, seed=0, guidance=0.0, every=1)[0].dist[0]
    x = torch.zeros(1, *model.value_shape, dtype=torch.long)
    per_class = torch.stack([raster_logits(model(x, torch.tensor([c])))[0, 0].softmax(-1) for c in range(10)])
    assert torch.allclose(first, per_class.mean(0), atol=1e-5)


def test_class_free_guidance_steers_away_from_the_null_class():
    """With a null class, scale 0 samples from it (p(x)) and scale s from
    log p(. | null) + s (log p(. | y) - log p(. | null)), renormalised."""
    model = make_tiny("pixelcnn")
    x = torch.zeros(1, *model.value_shape, dtype=torch.long)
    first = {c: raster_logits(model(x, torch.tensor([c])))[0, 0].log_softmax(-1) for c in (3, model.null_class)}
    free = run(model, labels=[3], seed=0, guidance=0.0, every=1)[0].dist[0]
    assert torch.allclose(free, first[model.null_class].exp(), atol=1e-5)
    guided = first[model.null_class] + 2.5 * (first[3] - first[model.null_class])
    assert torch.allclose(run(model, labels=[3], seed=0, guidance=2.5, every=1)[0].dist[0], guided.softmax(-1), atol=1e-5)


def test_the_null_class_is_a_label_of_its_own():
    """A model with a null class takes label num_classes (no class: it samples p(x)), and no more."""
    model = make_tiny("pixelcnn")
    assert model.null_class == 10 and model.label_count == 11 and model.can_guide
    assert argen.sample(model, [10, 3], seed=0).shape[0] == 2
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\) or 10 \(the null class\), got 11"):
        argen.sample(model, [11], seed=0)
    assert make_tiny("pixel-gpt").null_class is None


@pytest.mark.parametrize("bad", [1.0, -0.1, True, "0.1"])
def test_bad_class_dropout(bad):
    from argen.models import PixelCNN

    with pytest.raises(ValueError, match="class_dropout must be in"):
        PixelCNN(class_dropout=bad)
    with pytest.raises(ValueError, match="class_dropout must be in .* num_classes=0"):
        PixelCNN(class_dropout=0.1, num_classes=0)


def test_training_hides_a_class_dropout_fraction_of_labels():
    from train.objectives import Likelihood, training_labels

    model, labels = make_tiny("pixelcnn"), torch.arange(10).repeat(100)
    hidden = training_labels(model, labels, torch.Generator().manual_seed(0)) == model.null_class
    assert 50 <= hidden.sum() <= 150  # 10% of 1,000
    kept = training_labels(model, labels, torch.Generator().manual_seed(0))[~hidden]
    assert torch.equal(kept, labels[~hidden])
    assert torch.equal(training_labels(make_tiny("pixel-gpt"), labels, None), labels)
    images = torch.zeros(4, *model.codec.picture_shape, dtype=torch.uint8)
    assert Likelihood().batch(model, images, labels[:4], torch.Generator().manual_seed(1))[1].shape == (4,)


@pytest.mark.parametrize("scale", [-1.0, float("nan"), "2", True])
def test_bad_guidance(scale):
    with pytest.raises(ValueError, match="guidance must be a finite number"):
        run(make_tiny("lstm"), guidance=scale)


@pytest.mark.parametrize("window_steps", [64, 2])  # 2: long windows are folded as they grow
def test_frame_shows_the_most_uncertain_value_since_the_last_frame(tiny, window_steps, monkeypatch):
    monkeypatch.setattr(argen.sampling, "WINDOW_STEPS", window_steps)
    frames = run(tiny, every=5, seed=6)
    before = torch.zeros_like(frames[0].drawn)
    for frame in frames:
        new = frame.drawn & ~before
        for i in range(3):
            top = frame.entropy[i][new[i]].max()
            assert entropy(frame.dist[i]) == pytest.approx(float(top), abs=1e-5)
            assert frame.dist_value[i] in frame.image[i][new[i] & (frame.entropy[i] == top)]
        before = frame.drawn


def test_inspect_gives_the_distribution_a_value_was_drawn_from(tiny):
    if not tiny.exact_likelihood:
        with pytest.raises(ValueError, match="no exact likelihood"):
            argen.pipelines.inspect(tiny, torch.zeros(tiny.value_shape, dtype=torch.long), None, (0, 0, 0))
        return
    kwargs = labels_kwargs(tiny, 1)
    label = int(kwargs["labels"][0]) if "labels" in kwargs else None
    frames = run(tiny, seed=3, every=1, **{k: v[:1] if k == "labels" else 1 for k, v in kwargs.items()})
    c, h, w = tiny.value_shape
    t = len(frames) // 2  # every=1: a frame per step; the frame's chart is its step's most uncertain value
    committed, uncertainty = raster_values(frames[t].committed)[0], raster_values(frames[t].entropy)[0]
    p = int(uncertainty.masked_fill(~committed, -1).argmax())
    position = (p % c, p // c // w, p // c % w)
    seen = argen.pipelines.inspect(tiny, frames[-1].image[0], label, position)
    assert torch.allclose(seen.dist, frames[t].dist[0], atol=1e-5)  # every=1: the value drawn at step t
    assert seen.value == int(frames[t].dist_value[0]) and seen.prob == pytest.approx(float(frames[-1].prob[0][position]), abs=1e-5)
    if tiny.num_classes:
        assert seen.posterior_before.sum() == pytest.approx(1) and not torch.allclose(seen.posterior_before,
                                                                                       seen.posterior_after)


def test_receptive_field_of_the_centre(tiny):
    """Only earlier values, all of them where the model promises no blind spot, and the MLP's window."""
    from conftest import FULL_FIELD

    if not tiny.exact_likelihood:
        pytest.skip("not autoregressive")
    c, h, w = tiny.value_shape
    seen = argen.pipelines.receptive_field(tiny, (0, h // 2, w // 2), contexts=2)
    steps, step = argen.pipelines.steps_to(tiny, (0, h // 2, w // 2))  # of the model's schedule
    flat, before = raster_values(seen[None])[0], steps < step
    assert not flat[~before].any() and flat[before].any()
    if tiny.tiny_name in FULL_FIELD:
        assert flat[before].all()
    if tiny.tiny_name.startswith("mlp"):
        assert flat[before].sum() == min(step, tiny.config.context_length)


def test_compare_is_the_finish_of_a_race():
    models = [make_tiny("pixel-gpt"), make_tiny("maskgit")]
    finish = argen.compare(models, [2], seed=7)
    laps = list(argen.pipelines.race(models, [2], seed=7, pixels_per_frame=4))
    assert len(laps) > 1 and all(r.frame.done for r in finish)
    for runner, last in zip(finish, laps[-1]):
        assert torch.equal(runner.frame.image, last.frame.image)
        assert torch.equal(runner.frame.image, argen.sample(runner.model, [2], seed=7))


def test_frames_report_the_same_at_any_frame_rate():
    """The sampler settles a raster run's maps, NLL and most uncertain value once per frame (at
    most WINDOW_STEPS steps at a time): any frame rate gives the same figures as one frame a step."""
    from argen.models import PixelLSTM
    from argen.sampling import WINDOW_STEPS

    torch.manual_seed(0)
    model = PixelLSTM(codec=grey(5, (1, 12, 14)), embed_dim=4, position_dim=8, hidden_dim=8).eval()
    assert model.num_values > 2 * WINDOW_STEPS
    steps = run(model, seed=2, every=1, guidance=1.5)
    for every in (None, 50, model.num_values):
        frames = run(model, seed=2, every=every, guidance=1.5)
        last = frames[-1]
        assert torch.equal(last.image, steps[-1].image) and torch.equal(last.prob, steps[-1].prob)
        assert torch.equal(last.entropy, steps[-1].entropy)
        assert torch.allclose(last.nll_bits, steps[-1].nll_bits, rtol=1e-5)
        start = 0 if len(frames) == 1 else frames[-2].step + 1  # the last frame's steps
        window = steps[start:]
        peak = torch.stack([f.window[0][0][:, 0] for f in window], 1).max(1)  # entropy, the first of equal maxima
        for b in range(3):
            assert torch.equal(last.dist[b], window[int(peak.indices[b])].dist[b])
            assert last.dist_value[b] == window[int(peak.indices[b])].dist_value[b]
        assert torch.equal(last.drawn, steps[-1].drawn) and torch.equal(last.committed, steps[-1].committed)


def test_packed_products_keep_the_fast_path_exact(monkeypatch):
    """With every LSTM product packed for oneDNN (on this build), guided fast sampling still equals
    the naive path."""
    import argen.models.layers as layers

    monkeypatch.setattr(layers, "PACKED_MIN_SIZE", 0)
    model = make_tiny("lstm")
    guided = run(model, seed=4, every=5, guidance=2.5)
    naive = run(model, seed=4, every=5, guidance=2.5, fast=False)
    for f, g in zip(guided, naive, strict=True):
        assert torch.equal(f.image, g.image)
        assert torch.allclose(f.prob.nan_to_num(-1), g.prob.nan_to_num(-1), atol=1e-5)


def test_benchmark_times_the_products_of_a_few_rows():
    from argen.benchmark import LINEAR_SHAPES, linear_lines

    lines = linear_lines(rows=(1, 2), repeats=3)
    assert lines[0].split() == ["weight", "rows", "F.linear", "us", "packed", "us"]
    assert len(lines) == 1 + 2 * len(LINEAR_SHAPES)
    for line, (out_features, in_features) in zip(lines[1::2], LINEAR_SHAPES):
        assert re.fullmatch(rf"{out_features}x{in_features} +1 +\d+\.\d +(\d+\.\d|—)", line)


def test_a_schedule_with_an_order_gives_one_position_per_step():
    """The sampler commits an ordered schedule's position at every step without asking it, so a
    schedule that claims an order but gives two positions a step is refused."""
    class Pairs(Raster):
        def num_steps(self, num_values):
            return num_values // 2

        def positions(self, step, num_values):
            return slice(2 * step, 2 * step + 2)

    model = make_tiny("pixelcnn")
    with pytest.raises(ValueError, match=r"a schedule with an order gives one position per step; .* gave 2 at step 0"):
        argen.sample(model, [1], schedule=Pairs(), fast=False)


@pytest.mark.parametrize("images, guidance, expected", [
    (1, None, 1), (1, 2.0, 1), (2, None, 1),  # one or two rows per step: one thread
    (2, 2.0, 2), (3, None, 2)])  # more rows: the caller's
def test_the_thread_rule_is_the_callers(images, guidance, expected, monkeypatch):
    """The sampler sets no threads (a process-wide setting): :func:`run_threads` says what a fast
    path is quickest on, and :func:`threads` applies it to a block and gives the caller's count back,
    even when the block fails."""
    model = make_tiny("row-lstm")
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n))[1])
    real(2)
    try:
        list(argen.sample_stream(model, labels=list(range(images)), every=5, guidance=guidance))
        assert calls == [] and torch.get_num_threads() == 2
        assert argen.sampling.run_threads(model, images, guidance) == expected
        with pytest.raises(ZeroDivisionError):
            with argen.sampling.threads(1):
                assert torch.get_num_threads() == 1
                1 / 0
        assert torch.get_num_threads() == 2
    finally:
        real(1)  # the suite's count (conftest)


def test_concurrent_streams_do_not_interfere():
    """Two streams advanced in turn from two threads on different thread counts: each draws its
    solo images and each thread keeps its own count at every frame."""
    import threading

    model = make_tiny("row-lstm")
    solo = {seed: argen.sample(model, [seed], seed=seed) for seed in (1, 2)}
    turns = [threading.Semaphore(1), threading.Semaphore(0)]
    results, counts = {}, {1: set(), 2: set()}

    def run(seed, mine, other, count):
        torch.set_num_threads(count)
        frame = None
        for frame in argen.sample_stream(model, [seed], seed=seed, every=4):
            mine.acquire()
            counts[seed].add(torch.get_num_threads())
            other.release()
        results[seed] = frame.image
        other.release()

    workers = [threading.Thread(target=run, args=(1, turns[0], turns[1], 1)),
               threading.Thread(target=run, args=(2, turns[1], turns[0], 2))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    torch.set_num_threads(1)
    assert all(torch.equal(results[seed], solo[seed]) for seed in solo)
    assert counts == {1: {1}, 2: {2}}


def test_benchmark_can_run_one_image_on_all_threads(tmp_path, monkeypatch, capsys):
    """``--all-threads`` turns the one-thread rule off, to compare (the rule is kept otherwise)."""
    from argen import sampling
    from argen.benchmark import main as benchmark

    make_tiny("row-lstm").save(tmp_path / "tiny-row")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(sampling, "ONE_THREAD_ROWS", sampling.ONE_THREAD_ROWS)  # restored after the test
    cpu = torch.device("cpu")
    try:
        benchmark(["tiny-row", "--sampler", "--threads", "2"])
        assert sampling.step_threads(True, 1, cpu) == 1 and sampling.step_threads(True, 3, cpu) == 2
        benchmark(["tiny-row", "--sampler", "--threads", "2", "--all-threads"])
        assert sampling.step_threads(True, 1, cpu) == 2 and "the sampler alone" in capsys.readouterr().out
        sampling.ONE_THREAD_ROWS = 2
        benchmark(["tiny-row", "--thread-rule", "--repeats", "1", "--threads", "2"])  # the rule on and off, interleaved
        header, row = capsys.readouterr().out.splitlines()
        assert "2 threads: best" in header and row.split()[0] == "tiny-row" and len(row.split()) == 5
        assert sampling.ONE_THREAD_ROWS == 2  # put back
    finally:
        torch.set_num_threads(1)


def test_a_half_precision_gpt_samples_on_its_fast_path():
    """The GPT's reordered query-key-value weight keeps the model's dtype."""
    model = make_tiny("pixel-gpt").to(torch.bfloat16)
    assert argen.sample(model, [1, 2], seed=0).shape == (2, *model.value_shape)


@pytest.mark.parametrize("name", ["pixelcnn", "maskgit"])  # one value a step (a slice), several (a tensor)
@pytest.mark.parametrize("guidance", [None, 2.0])
def test_frames_hold_ordinary_tensors(name, guidance):
    """The steps run in inference mode, but what a caller gets is made outside it: the frames'
    tensors can be written in place and used with autograd (an inference tensor can do neither)."""
    model = make_tiny(name)
    frames = list(argen.sample_stream(model, labels=[3, 1], seed=0, every=5, guidance=guidance))
    for frame in frames:
        window = [t for entry in frame.window for t in entry if t is not None]
        for t in (frame.image, frame.drawn, frame.committed, frame.prob, frame.entropy, frame.nll_bits, frame.dist,
                  *window):
            assert not t.is_inference()
    frames[-1].prob.nan_to_num_(0.0)  # in place, as a caller may
    weight = torch.ones((), requires_grad=True)
    (frames[-1].nll_bits * weight).sum().backward()
    assert weight.grad == frames[-1].nll_bits.sum()
