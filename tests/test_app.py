"""The app: handlers called directly, the server driven through its API, and a real browser."""
import concurrent.futures
import re
import shutil
import socket

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
import argen
from argen.data import from_drawing
from argen.hub import read_metrics

MODEL = "mlp-v3"


def run_generate(**overrides):
    args = dict(name=MODEL, digit=7, temperature=1.0, top_k=0, seed=0, random_seed=False, count=1, speed=112,
                guidance=1.0)
    return list(app.generate(**{**args, **overrides}))


def final_array(outputs):
    return np.asarray(Image.open(outputs[-1][5]))


def test_generate_streams_frames_and_exports():
    outputs = run_generate()
    assert len(outputs) == 784 // 112  # 6 intermediate frames + the final one
    canvas, prob, entropy, chart, stats, png, gif, finished = outputs[-1]
    assert canvas.size == (280, 280) and png.endswith(".png") and gif.endswith(".gif")
    assert "784/784" in stats and all(o[5] is None for o in outputs[:-1])
    assert Image.open(gif).n_frames >= len(outputs)
    assert prob.size[1] == canvas.size[1] + app.render.map_band(prob.size[0]) and entropy.size == prob.size


def test_the_canvas_shows_undrawn_pixels_and_the_end_chart_the_most_uncertain_value():
    """Mid-stream, the pixels not drawn yet are a light checkerboard, not black; at the end the
    chart shows the distribution of the run's most uncertain value (not the last pixel's, which for
    a digit is background at p = 1)."""
    outputs = run_generate(speed=112)
    middle, final = np.asarray(outputs[2][0]), np.asarray(outputs[-1][0])
    bottom = middle[-20:, :, 0]  # the last rows: not drawn yet
    assert set(np.unique(bottom)) == {160, 200} and (final[-20:] == 8).mean() > 0.5  # then mostly background
    model, peak = argen.load(MODEL), None
    for frame in argen.sample_stream(model, [7], seed=0, every=112):
        h = float(argen.sampling.entropy(frame.dist[:1])[0])
        if peak is None or h > peak[0]:
            peak = (h, frame.dist[0], int(frame.dist_value[0]))
    chart = outputs[-1][3]
    assert np.array_equal(np.asarray(chart), np.asarray(app.render.distribution_chart(peak[1].numpy(), peak[2])))
    assert peak[0] > 0.5  # a value the model was unsure of


def test_map_scales_keep_their_figures_apart():
    """The colour scale's three figures (top, middle, bottom) never touch, however wide a panel
    (several pictures) makes the font, and the unit is written above the scale, in the band the
    browser's label chip sits in."""
    for height in (70, 140, 280):
        bar = np.asarray(app.render.colorbar(height, 0, 1, "viridis", font_size=60).convert("L"))[:, 22:]
        inked = (bar < 128).any(1)
        starts = np.flatnonzero(np.diff(inked.astype(int)) == 1) + 1
        assert len(starts) + int(inked[0]) == 3, height
    for count in (1, 4, 10):
        panel = app.render.map_panel(np.random.rand(count, 7, 7), 0, 1, "viridis", "nats", cell=4)
        band = app.render.map_band(panel.width)
        assert (np.asarray(panel.convert("L"))[:band, -80:] < 200).any(), count  # the unit, above the scale


@pytest.mark.parametrize("overrides, message", [
    ({"temperature": 0}, "temperature"), ({"temperature": -1}, "temperature"),
    ({"temperature": float("nan")}, "temperature"), ({"top_k": 300}, "top-k must be a whole number in 0..16, got 300"),
    ({"digit": 11}, "digit"), ({"count": 1000}, "number of images"), ({"name": "nope"}, "unknown model"),
    ({"seed": -3}, "seed"), ({"seed": 2**64}, "seed"), ({"seed": 1.5}, "seed must be a whole number .*got 1.5"),
    ({"speed": 5}, "speed"), ({"temperature": "hot"}, "temperature must be a number in 0.05..2, got 'hot'"),
    ({"temperature": 1e9}, "temperature must be a number in 0.05..2"), ({"top_k": 2.5}, "top-k .*got 2.5"),
    ({"guidance": "x"}, "guidance must be a number in 0..5, got 'x'"),
])
def test_generate_bad_input(overrides, message):
    with pytest.raises(gr.Error, match=message):
        run_generate(**overrides)


def test_complete_keeps_the_top_rows():
    outputs = list(app.complete(MODEL, "test image", 70, None, None, 14, 3, 1.0, 0, 784))
    canvas = np.asarray(outputs[-1][0])
    image, label = app.source_image("test image", 70, None)
    assert label == 7
    model = argen.load(MODEL)
    prompts = app.render.canvas(model.codec.decode(model.codec.encode(image)).repeat(3, 1, 1, 1))
    rows = 14 * app.render.layout(3)[1]
    assert np.array_equal(canvas[:rows], np.asarray(prompts)[:rows])
    assert (canvas[rows, 5] == (0, 170, 255)).all()  # the line under the kept rows
    assert not np.array_equal(canvas, np.asarray(prompts))


def test_complete_a_drawing_without_a_class_and_says_what_it_kept():
    drawing = np.full((280, 280, 3), 255, np.uint8)
    drawing[40:240, 130:150] = 0  # a "1"
    stats = list(app.complete(MODEL, "my drawing", 0, {"composite": drawing}, None, 14, 2, 1.0, 0, 784))[-1][4]
    assert "as a 1" in stats and "kept** the top 14 of 14 rows asked" in stats
    stats = list(app.complete("bsq-gpt", "test image", 70, None, None, 3, 1, 1.0, 0, 784))[-1][4]
    assert "kept** the top 0 of 3 rows asked (a token covers 4 rows)" in stats


def test_guidance_and_the_model_list():
    guided = run_generate(name="lstm", guidance=3.0, speed=784)[-1]
    assert "**guidance** 3" in guided[4] and "**lstm**" in guided[4]
    model = argen.load("lstm")
    expected = app.render.canvas(model.codec.decode(argen.sample(model, [7], seed=0, guidance=3.0)))
    assert np.array_equal(np.asarray(Image.open(guided[5])), np.asarray(expected))
    labels = dict((name, label) for label, name in app.model_choices())
    for name in "mlp-v3", "pixel-gpt":  # one figure on one scale: the 8-bit-equivalent bits/dim
        assert labels[name].endswith(f" · {read_metrics(name)['test']['bits_per_dim_8bit']:.3f} bits/dim")
    for name in "bsq-gpt", "gated-pixelcnn-binary", "maskgit":  # no figure on that scale: none in the picker
        assert "bits" not in labels[name]


def test_likelihood_scores_and_classifies():
    panel, summary, posterior = app.likelihood(MODEL, "test image", 70, None, None)
    assert "bits per pixel" in summary and "scored as a 7" in summary and panel.size[0] > 28
    assert sum(posterior.values()) == pytest.approx(1.0, abs=1e-4)
    assert max(posterior, key=posterior.get) == "7"
    model = argen.load(MODEL)
    image, _ = app.source_image("test image", 70, None)
    bits = float(argen.nll(model, model.codec.encode(image), torch.tensor([7]))) / np.log(2)
    assert f"**{bits:.1f} bits**" in summary


def test_compress_tab_stores_a_digit_and_checks_the_round_trip(tmp_path):
    panel, summary, path, compressed = app.compress_picture("pixel-gpt", "test image", 70, None)
    data = open(path, "rb").read()
    assert f"**{len(data)} bytes** as `.argen`" in summary and "PNG (optimize)" in summary and "WebP lossless" in summary
    assert "coded as a 7" in summary and "Lossless over the model's values" not in summary and panel.size[0] > 28
    image, _ = app.source_image("test image", 70, None)
    assert torch.equal(argen.decompress(data), image)
    picture, verdict = app.decompress_file(path, compressed)
    assert "**identical** to what was compressed" in verdict and picture.size[0] >= 28
    _, summary, _, _ = app.compress_picture(MODEL, "test image", 70, None)  # 16 levels: lossy on the way in
    assert "Lossless over the model's values (16 per pixel)" in summary and "PSNR" in summary
    assert [name for _, name in app.exact_choices(app.model_choices())] == \
        [name for name in argen.available() if argen.load(name).exact_likelihood]
    with pytest.raises(gr.Error, match="no exact likelihood"):
        app.compress_picture("maskgit", "test image", 70, None)
    (tmp_path / "notes.argen").write_bytes(b"hello")
    with pytest.raises(gr.Error, match="not an .argen file"):
        app.decompress_file(str(tmp_path / "notes.argen"), compressed)
    with pytest.raises(gr.Error, match="compress a picture first"):
        app.decompress_file(None, None)


def test_drawing_input():
    drawing = np.full((300, 211, 3), 255, np.uint8)
    drawing[50:250, 100:115] = 0  # a dark vertical stroke: a "1"
    image = from_drawing(drawing)
    assert image.shape == (1, 1, 28, 28) and image.dtype == torch.uint8 and image.max() > 200
    panel, summary, posterior = app.likelihood(MODEL, "my drawing", 0, {"composite": drawing}, None)
    assert "(its most probable class)" in summary and max(posterior, key=posterior.get) == "1"
    with pytest.raises(gr.Error, match="empty"):
        app.likelihood(MODEL, "my drawing", 0, {"composite": np.full((50, 50, 3), 255, np.uint8)}, 1)
    with pytest.raises(gr.Error, match="empty"):
        app.likelihood(MODEL, "my drawing", 0, None, 1)
    with pytest.raises(gr.Error, match="one flat dark colour"):  # all black: not "empty"
        app.likelihood(MODEL, "my drawing", 0, {"composite": np.zeros((50, 50, 3), np.uint8)}, 1)
    with pytest.raises(gr.Error, match="drawing must be"):
        app.likelihood(MODEL, "my drawing", 0, {"composite": np.zeros(5)}, 1)


def test_compare_races_every_model_to_the_library_images():
    """Every digit model but the slowest (PixelCNN++: the phone's browser test races the race's
    start) and one game model of each kind, in a race of its dataset."""
    names = [name for name in argen.available() if not name.startswith("pixelcnnpp")]
    digits = [name for name in names if app.class_word(argen.load(name)) == "digit"]
    games = ["pixelcnn-games", "games-maskgit"]  # games-gpt races in test_a_race_at_each_models_recommended_settings
    for group in digits, games:
        laps = list(app.compare(group, 3, 1.0, 0, 784))  # a lap: a digit's worth of pixels (49 tokens of a game frame)
        assert len(laps) >= (3072 // 784 if group is games else 1)
        assert all(len(gallery) == len(group) for gallery, _ in laps)
        assert ("| … |" in laps[0][1]) == (group is games) and "| … |" not in laps[-1][1]  # running, then done
        assert [caption for _, caption in laps[-1][0]] == group
        if group is digits:
            picture = dict((name, p) for p, name in laps[-1][0])[MODEL]
    model = argen.load(MODEL)
    assert np.array_equal(np.asarray(picture), np.asarray(app.render.canvas(model.codec.decode(
        argen.sample(model, [3], seed=0)))))
    with pytest.raises(gr.Error, match="race models that draw the same classes: mlp-v3 draws digits, games-gpt draws games"):
        list(app.compare(["mlp-v3", "games-gpt"], 3, 1.0, 0, 784))


def test_stop_ends_the_race_at_its_next_lap():
    from types import SimpleNamespace

    session = SimpleNamespace(session_hash="racer")
    laps = app.compare(["mlp-v3", "lstm"], 3, 1.0, 0, 1, request=session)  # a pixel a lap: 784 laps
    next(laps)
    app.stop_race(session)
    assert list(laps) == []


def test_a_race_at_each_models_recommended_settings():
    """The race starts with a few models of one dataset, its classes in the picker; at their own
    settings each model draws what the library draws at its recommended temperature, top-k and guidance."""
    picker, models = app.on_race_group_change("games")
    assert picker.choices[3] == ("Enduro", 3) and models.value and all(
        app.class_word(argen.load(name)) == "game" for name in models.value)
    assert len(app.on_race_group_change("digits")[1].value) <= 5
    name = "games-gpt"  # tuned on the yardstick: temperature 0.9
    final = list(app.compare([name], 3, 1.0, 0, 784, True))[-1][0][0][0]
    model, hub = argen.load(name), argen.hub
    expected = argen.sample(model, [3], seed=0, temperature=hub.recommended_temperature(name),
                            top_k=hub.recommended_top_k(name), guidance=hub.recommended_guidance(name))
    assert np.array_equal(np.asarray(final), np.asarray(app.render.canvas(model.codec.decode(expected))))


def test_a_new_run_supersedes_the_last_of_its_session():
    """Stop, a model change or a new run of the same kind ends the session's run at its next frame
    (on the server: the browser's cancel alone was seen to miss); other sessions and kinds go on."""
    from types import SimpleNamespace

    runs, alice, bob = app.Runs(), SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    first, other, theirs = runs.start(alice, "generate"), runs.start(alice, "complete"), runs.start(bob, "generate")
    assert runs.current(first) and runs.current(other) and runs.current(theirs)
    second = runs.start(alice, "generate")
    assert not runs.current(first) and runs.current(second) and runs.current(other) and runs.current(theirs)
    runs.stop("generate", alice)
    assert not runs.current(second) and runs.current(theirs)
    assert runs.current(runs.start(None, "generate")) and runs.current(runs.start(None, "generate"))  # no session
    frames = app.stream(argen.load(MODEL), argen.sample_stream(argen.load(MODEL), [3], seed=0, every=392), 0,
                        ticket=second)
    assert list(frames) == []  # a superseded run draws nothing more


def test_about():
    text, grid, field = app.about(MODEL)
    assert f"test bits/pixel (over its 16 values) | {read_metrics(MODEL)['test']['bits_per_dim']}" in text
    assert grid.endswith("samples.png") and "1 threads" not in text
    # the MLP sees its context window: the 28 values before the centre pixel, no more
    assert "receptive field of the centre pixel | 28 of the 406 pixels drawn before it" in text
    pixels = np.asarray(field)[::10, ::10]  # one per value
    assert (pixels == (80, 160, 255)).all(-1).sum() == 28 and (pixels[14, 14] == (230, 40, 40)).all()


def test_token_model_streams_token_by_token():
    outputs = run_generate(name="bsq-gpt", speed=112)  # 112 pixels: a row of 4 x 4 patches, 7 tokens
    assert len(outputs) == 49 // 7
    canvas, prob, entropy, chart, stats, png, gif, finished = outputs[0]
    assert canvas.size == (280, 280) and "**tokens** 7/49" in stats
    assert prob.size[1] == canvas.size[1] + app.render.map_band(prob.size[0])  # token maps as large as the picture
    first_row = np.asarray(canvas)[:, :, 1]  # green: the red mark of the token being drawn aside
    assert set(np.unique(first_row[4 * 10:])) == {160, 200}  # patches below the first row of tokens: not drawn
    model = argen.load("bsq-gpt")
    expected = app.render.canvas(model.codec.decode(argen.sample(model, [7], seed=0)))
    assert np.array_equal(np.asarray(Image.open(outputs[-1][5])), np.asarray(expected))
    completed = list(app.complete("bsq-gpt", "test image", 70, None, None, 14, 2, 1.0, 0, 784))
    assert len(completed) == 1
    panel, summary, posterior = app.likelihood("bsq-gpt", "test image", 70, None, None)
    assert "bits per token" in summary and max(posterior, key=posterior.get) == "7"


def test_maskgit_streams_its_steps_and_the_likelihood_tab_says_why():
    outputs = run_generate(name="maskgit", speed=28)
    assert len(outputs) == 8  # one frame per decoding step at the default speed
    canvas, prob, entropy, chart, stats, png, gif, finished = outputs[0]
    assert "**tokens** " in stats and 1 <= int(stats.split("**tokens** ")[1].split("/")[0]) < 49
    model = argen.load("maskgit")
    expected = app.render.canvas(model.codec.decode(argen.sample(model, [7], seed=0)))
    assert np.array_equal(np.asarray(Image.open(outputs[-1][5])), np.asarray(expected))
    with pytest.raises(gr.Error, match="MaskGIT has no exact likelihood"):
        app.likelihood("maskgit", "test image", 70, None, None)
    with pytest.raises(gr.Error, match="MaskGIT has no exact likelihood"):
        app.inspect_click(finished or outputs[-1][-1], gr.SelectData(None, {"index": [140, 140], "value": None}))
    text, _, field = app.about("maskgit")
    assert field is None
    assert "bits per masked token (not a likelihood) | 5.88427" in text and "Confidence(steps=8" in text


def test_var_streams_a_frame_per_scale_and_inspects_its_finest_tokens():
    """VAR in the app: one frame per scale at the auto speed, each the picture of the scales so far
    (no checkerboard: the 1 x 1 scale already covers it) with its maps; a click reads the finest
    scale's token there; a completion keeps coarse scales; the likelihood map sums to the bits."""
    model = argen.load("var")
    sizes = model.schedule().sizes
    outputs = run_generate(name="var", speed=0)
    assert len(outputs) == len(sizes)
    canvas, prob, entropy, chart, stats, png, gif, finished = outputs[0]
    assert "**tokens** 1/104" in stats and canvas.size == (280, 280)
    assert prob.size[1] == canvas.size[1] + app.render.map_band(prob.size[0])
    frames = list(argen.generate(model, [7], seed=0, every=1))
    marks = model.codec.to_grid(frames[0].committed, "any").any(1)
    assert marks.all()  # the first step, 1 x 1, covers the whole picture
    assert np.array_equal(np.asarray(canvas), np.asarray(app.render.canvas(argen.pipelines.pictures(model, frames[0]),
                                                                           marks, 4)))
    expected = app.render.canvas(model.codec.decode(frames[-1].image))
    assert np.array_equal(final_array(outputs), np.asarray(expected))
    chart, text = app.inspect_click(outputs[-1][-1], gr.SelectData(None, {"index": [140, 140], "value": None}))
    finest = 55 + 3 * 7 + 3  # the 7 x 7 scale's token at cell (3, 3), under the click at picture pixel (14, 14)
    assert f"**image 1, token (3, 3)**: value {int(frames[-1].image[0, 0, 0, finest])} had p" in text
    completed = list(app.complete("var", "test image", 70, None, None, 14, 2, 1.0, 0, 0))
    assert "**kept** the 3 coarsest of 6 scales (up to 3 × 3 tokens), for 14 of 28 rows" in completed[-1][4]
    panel, summary, posterior = app.likelihood("var", "test image", 70, None, None)
    assert "bits per token" in summary and max(posterior, key=posterior.get) == "7"
    text, _, field = app.about("var")
    assert "NextScale(sizes=[1, 4, 9, 16, 25, 49])" in text and field is not None
    assert "Raster-order models" in model.about and "MaskGIT draws many tokens per step" in model.about


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


def test_api_streams_and_survives_bad_input(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    job = client.submit(MODEL, 4, 1.0, 0, 1, False, 1, 112, 1.0, api_name="/generate")
    frames = list(job)
    assert len(frames) >= 3
    final = job.result()
    assert Image.open(final[0]).size == (280, 280) and final[5] is not None
    with pytest.raises(Exception, match="temperature|less than minimum value"):  # ours or Gradio's slider check
        client.predict(MODEL, 4, 0.0, 0, 1, False, 1, 112, 1.0, api_name="/generate")
    with pytest.raises(Exception, match="number of images|not in the list of choices"):
        client.predict(MODEL, 4, 1.0, 0, 1, False, 10_000, 112, 1.0, api_name="/generate")
    with pytest.raises(Exception, match="top-k must be a whole number in 0..16, got 100"):
        client.predict(MODEL, 4, 1.0, 100, 1, False, 1, 112, 1.0, api_name="/generate")
    for args, message in (((MODEL, 4, "hot", 0, 1, False, 1, 112, 1.0), "temperature must be a number in 0.05..2"),
                          ((MODEL, 4, 1.0, 2.5, 1, False, 1, 112, 1.0), "top-k must be a whole number in 0..16, got 2.5"),
                          ((MODEL, 4, 1.0, 0, 1.5, False, 1, 112, 1.0), "seed must be a whole number in 0..\\d+, got 1.5"),
                          ((MODEL, 4, 1.0, 0, 1, False, 1, 112, "x"), "guidance must be a number in 0..5, got 'x'")):
        with pytest.raises(Exception, match=message):
            client.predict(*args, api_name="/generate")
    with pytest.raises(Exception, match="the drawing must be an image"):  # a text file as the drawing
        client.predict(MODEL, "my drawing", 0, "not an image", None, api_name="/likelihood")
    assert client.predict(MODEL, 4, 1.0, 0, 1, False, 1, 784, 1.0, api_name="/generate")[5] is not None


def test_concurrent_clients_get_their_own_images(server):
    from gradio_client import Client

    def one(seed):
        final = Client(server, verbose=False).predict(MODEL, seed % 10, 1.0, 0, seed, False, 1, 112, 1.0,
                                                      api_name="/generate")
        return seed, np.asarray(Image.open(final[0]))

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = dict(pool.map(one, range(6)))
    model = argen.load(MODEL)
    for seed, picture in results.items():
        expected = app.render.canvas(model.codec.decode(argen.sample(model, [seed % 10], seed=seed)))
        assert np.array_equal(picture[..., :3], np.asarray(expected)), f"client {seed} got another's image"


@pytest.fixture
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        yield browser
        browser.close()


def test_browser_switching_model_stops_the_run(server, browser):
    """Generate at one pixel per frame, switch the model, Generate again: the new model's image
    finishes and nothing of the old run is left. (The phone studio races in the browser;
    test_compare_races_every_model_to_the_library_images races the models through the handler.)"""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server)
    page.get_by_text("top-k (0 = all 16 values)").wait_for()
    page.get_by_label("speed (pixels per frame)").click()
    page.get_by_role("option", name="1", exact=True).click()
    page.get_by_role("button", name="Generate").click()  # about a minute at 12 frames per second
    page.get_by_text("mlp-v3 · temperature").first.wait_for(timeout=30_000)
    page.get_by_label("model").first.click()
    page.get_by_role("option", name="bsq-gpt").first.click()
    page.get_by_text("top-k (0 = all 1024 values)").wait_for()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("49/49").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    assert page.get_by_text("mlp-v3 · temperature").count() == 0 and "bsq-gpt" in page.get_by_text("49/49").inner_text()
    page.close()


def test_browser_generates_a_digit(server, browser):
    """A user picks 7 and presses Generate: the page ends showing the library's image for seed 0,
    with the figures line naming every pixel drawn."""
    import io

    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(server)
    page.get_by_text("top-k (0 = all 16 values)").wait_for()  # the model's settings are loaded
    page.get_by_label("7", exact=True).first.check()
    page.get_by_label("random seed").uncheck()  # seed 0, shown in the box
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("784/784").wait_for(timeout=60_000)
    canvas = page.locator("img[src*='.png']").first
    shown = Image.open(io.BytesIO(page.request.get(canvas.get_attribute("src")).body()))
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})  # Inspect: the middle pixel
    page.get_by_text("had p =").wait_for(timeout=30_000)
    inspected = page.get_by_text("had p =").inner_text()
    model = argen.load(MODEL)  # drawn at the model's recommended guidance and top-k, where the sliders start
    expected = argen.sample(model, [7], seed=0, guidance=argen.hub.recommended_guidance(MODEL),
                            top_k=argen.hub.recommended_top_k(MODEL))
    assert np.array_equal(np.asarray(shown.convert("RGB")), np.asarray(app.render.canvas(model.codec.decode(expected))))
    assert re.match(r"image 1, pixel \((13|14), (13|14)\): value \d+ had p = ", inspected), inspected  # the middle
    page.close()


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def open_tab(page, name):
    """Click a tab; on a phone the tabs that do not fit sit behind the "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)
    if not tab.is_visible():
        page.get_by_role("button", name="More tabs").click()
        tab = page.get_by_role("button", name=name, exact=True).filter(visible=True)
    tab.first.click()


def in_viewport(page, selector):
    """Whether the top of the element ``selector`` is on screen (it may run past the bottom)."""
    box = page.locator(selector).first.bounding_box()
    return bool(box) and -2 <= box["y"] < page.viewport_size["height"] - 40


def assert_in_first_viewport(page, name):
    box = page.get_by_role("button", name=name, exact=True).filter(visible=True).first.bounding_box()
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= page.viewport_size["height"], (name, box)


def draw_seven(page):
    """Pick the brush and draw a 7 on the visible sketchpad, as a user would."""
    page.get_by_role("button", name="Brush").filter(visible=True).first.click()
    canvas = page.locator(".pixi-target canvas").filter(visible=True).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in
              [(0.3, 0.25), (0.7, 0.25), (0.45, 0.8)]]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=3)  # each step is a render of the sketchpad (slow without a GPU)
    page.mouse.up()


def values_done(page):
    """The ``n`` of the visible figures line's ``n/784``."""
    text = page.get_by_text(re.compile(r"pixels \d+/784")).filter(visible=True).first.inner_text()
    return int(re.search(r"(\d+)/784", text).group(1))


# the loaded picture of the visible image block labelled `label`, or null
SHOWN_IMAGE = """[...document.querySelectorAll('.block')].filter(b => b.offsetParent && b.querySelector(
    '[data-testid=block-label]')?.innerText.trim() === label).map(b => b.querySelector('img')).find(
    img => img && img.complete && img.naturalWidth)"""


def covered_map_area(page, label):
    """How a map panel shows: the elements (label chip, buttons) over its figures and colour scale,
    below the white band left for them, and the panel's height on screen."""
    return page.wait_for_function("""([label, least, share]) => {
        const img = """ + SHOWN_IMAGE + """, block = img?.closest('.block'), r = img?.getBoundingClientRect();
        if (!img) return null;  // still loading
        const band = Math.max(least, Math.floor(img.naturalWidth / share));  // render.map_band
        const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
        const left = r.left + (r.width - img.naturalWidth * s) / 2, right = left + img.naturalWidth * s;
        const top = r.top + (r.height - img.naturalHeight * s) / 2, bottom = top + img.naturalHeight * s;
        const over = [...block.querySelectorAll('[data-testid=block-label], button')]
            .filter(e => !e.contains(img)).map(e => e.getBoundingClientRect())  // not the image's own frame
            .filter(b => b.width && b.bottom > top + band * s && b.top < bottom && b.right > left && b.left < right);
        return {over: over.length, height: bottom - top};
    }""", arg=[label, app.render.MAP_TOP, 9]).json_value()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_browser_studio(server, browser, viewport):
    """What a user sees on a desktop and on a phone: the main buttons of each tab in the first
    screenful, a typed temperature shown as the value the run uses, the canvas changing while it
    streams, map scales nobody covers; on the desktop also a second Generate that restarts the run,
    Inspect, Complete (a test digit and a drawing), Likelihood of a drawing with no class and an
    error's own message (the same widgets and handlers on both: the layout is what differs); on
    the phone a race."""
    page = browser.new_page(viewport=VIEWPORTS[viewport])
    page.goto(server)
    page.get_by_text("top-k (0 = all 16 values)").wait_for()
    for name in ("Generate", "Stop"):
        assert_in_first_viewport(page, name)

    temperature = page.get_by_label("number input for temperature").first
    temperature.fill("50")
    page.get_by_role("button", name="Generate", exact=True).click()
    assert temperature.input_value() == "2"  # Gradio brings a typed value into range, in sight
    canvas, seen, in_view = page.locator("#generate-canvas img[src*='.png']").first, set(), []
    while not page.get_by_text("784/784").count():
        if canvas.count():
            seen.add(canvas.get_attribute("src"))
            in_view.append(in_viewport(page, "#generate-canvas"))
        page.wait_for_timeout(100)
    assert len(seen) >= 3, "the canvas did not change while streaming"
    assert in_view and all(in_view), "the canvas was out of sight while it streamed"
    assert "temperature 2" in page.get_by_text("784/784").inner_text()
    for label in ("probability of the chosen value (colour: mean of R, G, B)", "entropy in nats (colour: mean of R, G, B)"):
        shown = covered_map_area(page, label)
        assert shown["over"] == 0 and shown["height"] >= 100, (label, shown)
    if viewport == "phone":
        for tab, button in (("Complete", "Complete"), ("Likelihood", "Score")):
            open_tab(page, tab)
            assert_in_first_viewport(page, button)
        return race_on_the_phone(page)
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})  # Inspect: the middle pixel
    page.get_by_text("had p =").wait_for(timeout=30_000)

    page.get_by_label("speed (pixels per frame)").click()  # a slow run, pressed again midway: it restarts
    page.get_by_role("option", name="1", exact=True).click()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function("/pixels (2\\d|[3-9]\\d)\\//.test(document.body.innerText)", timeout=30_000)
    before = values_done(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(f"(m => m && +m[1] < {before})(document.body.innerText.match(/pixels (\\d+)\\//))",
                           timeout=30_000)
    page.get_by_role("button", name="Stop", exact=True).first.click()
    page.wait_for_timeout(500)  # a frame already on its way may still land
    stopped = values_done(page)
    page.wait_for_timeout(1000)
    assert values_done(page) == stopped < 784, "the run went on after Stop"

    open_tab(page, "Complete")
    assert_in_first_viewport(page, "Complete")
    page.wait_for_function(f"label => !!({SHOWN_IMAGE})", arg="the image", timeout=10_000)  # the preview, on load
    page.get_by_role("button", name="Complete", exact=True).filter(visible=True).first.click()
    page.get_by_text("kept the top 14 of 14 rows").filter(visible=True).wait_for(timeout=60_000)
    page.get_by_label("my drawing").filter(visible=True).first.check()
    draw_seven(page)
    page.get_by_role("button", name="Complete", exact=True).filter(visible=True).first.click()
    page.get_by_text(re.compile(r"784/784 .*mlp-v3 as a \d")).filter(visible=True).wait_for(timeout=60_000)

    open_tab(page, "Likelihood")
    assert_in_first_viewport(page, "Score")
    page.get_by_label("my drawing").filter(visible=True).first.check()
    draw_seven(page)
    page.get_by_role("button", name="Score", exact=True).click()
    summary = page.get_by_text("bits for this image").filter(visible=True)
    summary.wait_for(timeout=30_000)
    assert "(its most probable class)" in summary.inner_text()

    page.get_by_role("button", name="Clear canvas").filter(visible=True).first.click()
    page.get_by_role("button", name="Score", exact=True).click()
    page.get_by_text("the drawing is empty: draw a digit first", exact=True).first.wait_for(timeout=30_000)
    assert page.locator("#likelihood-map img").count() == 0 and not summary.count()  # no stale result stays up

    open_tab(page, "Compare: a race")
    assert_in_first_viewport(page, "Race")  # the phone studio races
    page.close()


def test_browser_compress_tab(server, browser):
    """Compress a test digit, see its size next to PNG's, and decompress the file to check it."""
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    page.goto(server)
    page.get_by_text("top-k (0 = all 16 values)").wait_for()
    open_tab(page, "Compress")
    page.get_by_role("button", name="Compress", exact=True).filter(visible=True).first.click()
    summary = page.get_by_text(re.compile(r"bytes as \.argen")).filter(visible=True)
    summary.wait_for(timeout=60_000)
    assert "PNG (optimize)" in summary.inner_text() and "WebP lossless" in summary.inner_text()
    page.get_by_role("button", name="Decompress and check").click()
    page.get_by_text("identical to what was compressed").wait_for(timeout=60_000)


def race_on_the_phone(page):
    """The race starts with a few digit models; Race brings its gallery into view, where each
    model's picture is captioned by its name and the table below says when all are done."""
    open_tab(page, "Compare: a race")
    assert_in_first_viewport(page, "Race")
    page.get_by_role("button", name="Race", exact=True).click()
    page.locator("#race-gallery img").first.wait_for(timeout=60_000)
    assert in_viewport(page, "#race-gallery"), "the race's gallery is out of sight"
    ticked = app.on_race_group_change("digits")[1].value
    page.wait_for_function("names => [...document.querySelectorAll('td')].filter(td => td.innerText.trim() === 'done')"
                           ".length === names.length", arg=ticked, timeout=90_000)
    page.close()


def test_a_colour_model_in_the_app(tmp_path, monkeypatch):
    """A game-scene model: the class picker shows the games, the canvas is in colour, the maps and
    the distribution chart follow the channels, Likelihood and Complete take the dataset's own test
    images, and a drawing (a digit) is refused with a reason."""
    from argen.models import Levels, PixelLSTM

    torch.manual_seed(0)
    model = PixelLSTM(codec=Levels(256, (3, 32, 32)), dataset="games", output="logistic-mixture", num_mixtures=2,
                      embed_dim=4, position_dim=4, hidden_dim=8, num_layers=1)
    model.save(tmp_path / "tiny-games-lstm")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    name = "tiny-games-lstm"
    picker = app.on_model_change(name)[0]
    assert picker.choices[3] == ("Enduro", 3) and picker.label == "game"
    outputs = run_generate(name=name, digit=3, speed=784)
    canvas, prob, entropy, chart, stats, png, gif, finished = outputs[-1]
    final = np.asarray(Image.open(png).convert("RGB"))
    assert canvas.size == (320, 320) and (final[..., 0] != final[..., 1]).any()  # colour, not grey
    assert "3072/3072" in stats and "colour values" in stats
    panel, summary, posterior = app.likelihood(name, "test image", 30, None, None)
    assert "scored as Enduro" in summary and set(posterior) == set(app.DATASETS["games"].class_names)
    completed = list(app.complete(name, "test image", 30, None, None, 16, 2, 1.0, 0, 784))[-1]
    assert "as Enduro" in completed[4] and "kept** the top 16 of 16 rows asked" in completed[4]
    drawing = np.full((280, 280, 3), 255, np.uint8)
    drawing[40:240, 130:150] = 0
    with pytest.raises(gr.Error, match="drawings are for the digit models"):
        app.likelihood(name, "my drawing", 0, {"composite": drawing}, None)


def test_a_token_model_of_large_game_frames_in_the_app(tmp_path, monkeypatch):
    """A prior over the 24 x 32 tokens of 96 x 128 game frames: games in the picker, the frame drawn
    patch by patch, and Likelihood and Complete on the app's 96 x 128 test frames (the same frames
    as the 32 x 32 models' test images)."""
    from argen.models import ImageGPT, Tokens

    torch.manual_seed(0)
    tokenizer = {"image_shape": (3, 96, 128), "hidden_channels": 8, "latent_dim": 8, "bits": 4}
    model = ImageGPT(codec=Tokens(tokenizer), dataset="games-96x128", dim=16, num_heads=2, num_layers=1, mlp_dim=32)
    model.save(tmp_path / "tiny-games-gpt")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    name = "tiny-games-gpt"
    picker = app.on_model_change(name)[0]
    assert picker.choices[9] == ("Road Runner", 9) and picker.label == "game"
    assert app.on_model_change(name)[2].label == "guidance (1 = none; more = more like the game asked for)"
    assert torch.equal(app.test_samples("games-96x128")[1], app.test_samples("games")[1])
    assert all(len(app.test_samples(d)[1]) == app.TEST_COUNT for d in ("mnist", "games", "games-96x128"))
    outputs = run_generate(name=name, digit=9, speed=784)  # 49 tokens a frame
    canvas, prob, entropy, chart, stats, png, gif, finished = outputs[-1]
    assert len(outputs) == 16 and "768/768" in stats and "tokens" in stats
    assert Image.open(png).size[0] > Image.open(png).size[1]  # 128 wide, 96 high
    panel, summary, posterior = app.likelihood(name, "test image", 30, None, None)
    assert "scored as Enduro" in summary and "bits per token" in summary
    completed = list(app.complete(name, "test image", 30, None, None, 48, 2, 1.0, 0, 784))[-1]
    assert "as Enduro" in completed[4] and "48" in completed[4]


def test_each_worker_runs_requests_on_the_apps_threads(monkeypatch):
    """A request sets ``ARGEN_THREADS`` once in each worker thread that runs it (a stream's steps may
    hop between workers); the library itself sets none."""
    import threading

    monkeypatch.setattr(app, "THREADS", 2)
    seen = []

    def frames():
        seen.append(torch.get_num_threads())
        yield from argen.sample_stream(argen.load("row-lstm"), [3], every=392)
        seen.append(torch.get_num_threads())

    def in_a_new_worker(work):
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()

    try:
        torch.set_num_threads(1)
        in_a_new_worker(lambda: app.library_errors(lambda: seen.append(torch.get_num_threads()))())
        stream = app.library_errors(frames)()
        in_a_new_worker(lambda: next(stream))  # the first step on one worker, the rest on another
        in_a_new_worker(lambda: list(stream))
        assert seen == [2, 2, 2]
    finally:
        torch.set_num_threads(1)  # the suite's count (conftest)


def test_picking_a_model_sets_its_recommended_top_k_and_guidance():
    """The top-k and guidance sliders start at the model's recorded defaults (top-k 0 = all values
    where no k was measured better)."""
    for name in ("pixelcnn", "pixel-gpt", "mlp-v1"):
        _, top_k, guidance, temperature = app.on_model_change(name)
        assert temperature.value == argen.hub.recommended_temperature(name)
        assert top_k.value == (argen.hub.recommended_top_k(name) or 0) and top_k.maximum == argen.load(name).levels
        assert guidance.value == argen.hub.recommended_guidance(name)
    assert argen.hub.recommended_top_k("pixelcnn") and not argen.hub.recommended_top_k("pixel-gpt")
