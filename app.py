"""argen: watch autoregressive image models draw, pixel by pixel, in the browser.

A thin Gradio shell over the ``argen`` library: every shipped model (``argen.available()``)
appears here without changes to this file. Run ``python app.py``; host and port come from
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860), the weights from ``weights/``
or ``$ARGEN_WEIGHTS`` (a folder or a Hugging Face Hub model repo id).
"""
import functools
import inspect
import math
import os
import random
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
import torch

import argen
from argen import render
from argen.data import from_drawing, quantize
from argen.hub import model_dir, read_metrics
from argen.likelihood import bits_per_dim, class_posterior, surprise_bits

FPS = 12  # frames per second sent to the browser; more is wasted
IMAGE_COUNTS = (1, 4, 10)  # 10 = one per digit
SPEEDS = (1, 4, 14, 28, 56, 112, 784)  # pixels per frame
EXPORT_DIR = Path(tempfile.gettempdir()) / "argen-exports"
EXPORT_MAX_AGE_S = 3600
GIF_FRAMES = 200
DIGITS = np.load(Path(__file__).parent / "argen" / "assets" / "digits.npz")  # 10 test digits per class


@functools.cache
def get_model(name):
    if name not in argen.available():
        raise gr.Error(f"unknown model {name!r}; choose one of {argen.available()}")
    return argen.load(name)


def model_choices():
    """(label, name) pairs for the model picker: name, one-line description, measured figures."""
    choices = []
    for name in argen.available():
        metrics = read_metrics(name)
        model, test, quality = get_model(name), metrics.get("test", {}), metrics.get("quality", {})
        unit = "bits/dim" if model.patch_size == 1 else "bits/token"
        score = f" · {test['bits_per_dim']:.3f} {unit}" if "bits_per_dim" in test else ""
        if quality.get("accuracy") is not None:
            score += f" · {quality['accuracy']:.0%} of samples read as their digit"
        choices.append((f"{name} — {model.summary}{score}", name))
    return choices


def library_errors(fn):
    """Turn the library's ValueErrors into ``gr.Error`` so the user sees them and the app keeps serving."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as error:
                raise gr.Error(str(error)) from error
        return stream_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            raise gr.Error(str(error)) from error
    return wrapper


def check_digit(model, digit):
    if not model.num_classes:
        return None
    if digit is None or isinstance(digit, bool) or int(digit) != digit or not 0 <= digit < model.num_classes:
        raise gr.Error(f"digit must be an integer in 0..{model.num_classes - 1}, got {digit!r}")
    return int(digit)


def resolve_seed(seed, random_seed):
    if random_seed:
        return random.randrange(2**31)
    if seed is None or not math.isfinite(seed) or int(seed) != seed or seed < 0:
        raise gr.Error(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def top_k_arg(top_k):
    return None if not top_k else int(top_k)


def values_per_frame(model, speed):
    """The sampler's ``every`` for a speed in picture pixels per frame: a token stands for a patch."""
    return max(1, speed // model.patch_size ** 2)


def export_path(suffix):
    """A fresh file in the export folder; files older than an hour are removed first."""
    EXPORT_DIR.mkdir(exist_ok=True)
    for old in EXPORT_DIR.iterdir():
        if time.time() - old.stat().st_mtime > EXPORT_MAX_AGE_S:
            old.unlink(missing_ok=True)
    handle, path = tempfile.mkstemp(suffix=suffix, dir=EXPORT_DIR)
    os.close(handle)
    return path


def frame_outputs(model, frame):
    """The panels of one frame: canvas, probability map, entropy map, distribution chart, figures."""
    position = None if frame.done else (frame.row, frame.col)
    pictures = model.to_pixels(frame.image, drawn=~frame.prob.isnan())
    canvas = render.canvas(pictures, 256, position, mark=model.patch_size)
    prob = render.map_panel(frame.prob[:, 0], 0, 1, "viridis", "p")
    entropy = render.map_panel(frame.entropy[:, 0], 0, math.log(model.levels), "magma", "nats")
    chosen = int(frame.image[0].permute(1, 2, 0).reshape(-1)[frame.index])
    chart = render.distribution_chart(frame.dist[0].numpy(), chosen)
    stats = (f"**{model.value_name}** {frame.pixels_done}/{model.num_pixels} · **NLL so far** "
             f"{frame.nll_bits.mean():.1f} bits/image · **mean entropy** {np.nanmean(frame.entropy.numpy()):.3f} nats")
    return canvas, prob, entropy, chart, stats


def stream(model, frames, seed):
    """Pace the sampler's frames at about FPS per second, then export the final PNG and a GIF
    (of at most GIF_FRAMES canvases: every other one is dropped whenever there are more)."""
    pictures, last, outputs, stride = [], 0.0, None, 1
    for i, frame in enumerate(frames):
        outputs = frame_outputs(model, frame)
        if i % stride == 0:
            pictures.append(outputs[0])
        if len(pictures) > GIF_FRAMES:
            pictures, stride = pictures[::2], 2 * stride
        wait = 1 / FPS - (time.monotonic() - last)
        if wait > 0 and not frame.done:
            time.sleep(wait)
        last = time.monotonic()
        stats = outputs[4] + f" · **seed** {seed}"
        if not frame.done:
            yield *outputs[:4], stats, None, None
    png, gif = export_path(".png"), export_path(".gif")
    outputs[0].save(png)
    pictures[0].save(gif, save_all=True, append_images=pictures[1:] + [outputs[0]] * FPS,
                     duration=round(1000 / FPS * stride), loop=0)
    yield *outputs[:4], stats, png, gif


@library_errors
def generate(name, digit, temperature, top_k, seed, random_seed, count, speed):
    """Sample ``count`` images (10 = one per digit) and stream them pixel by pixel."""
    model = get_model(name)
    if count not in IMAGE_COUNTS:
        raise gr.Error(f"number of images must be one of {IMAGE_COUNTS}, got {count!r}")
    if speed not in SPEEDS:
        raise gr.Error(f"speed must be one of {SPEEDS} pixels per frame, got {speed!r}")
    digit = check_digit(model, digit)
    seed = resolve_seed(seed, random_seed)
    if model.num_classes:
        labels = list(range(10)) if count == 10 else [digit] * count
        batch = {"labels": labels}
    else:
        batch = {"num_images": count}
    frames = argen.sample_stream(model, temperature=temperature, top_k=top_k_arg(top_k), seed=seed,
                                 every=values_per_frame(model, speed), **batch)
    yield from stream(model, frames, seed)


def source_image(source, index, drawing):
    """The 8-bit image ``[1, 1, 28, 28]`` and its label (None for a drawing) from the chosen source."""
    if source == "my drawing":
        if drawing is None or drawing.get("composite") is None:
            raise gr.Error("the drawing is empty: draw a digit first")
        return from_drawing(drawing["composite"]), None
    if index is None or int(index) != index or not 0 <= index < len(DIGITS["labels"]):
        raise gr.Error(f"test digit index must be in 0..{len(DIGITS['labels']) - 1}, got {index!r}")
    index = int(index)
    return torch.from_numpy(DIGITS["images"][index:index + 1]), int(DIGITS["labels"][index])


def show_source(source, index, drawing):
    try:
        image, label = source_image(source, index, drawing)
    except (gr.Error, ValueError):
        return None
    return render.grid(quantize(image, 256), 256, nrow=1, scale=6)


@library_errors
def complete(name, source, index, drawing, digit, rows, count, temperature, seed, speed):
    """Keep the top ``rows`` rows of a digit and stream ``count`` completions side by side."""
    model = get_model(name)
    image, label = source_image(source, index, drawing)
    digit = check_digit(model, label if label is not None and digit is None else digit)
    height = model.image_shape[1] * model.patch_size  # picture rows
    if rows is None or int(rows) != rows or not 0 <= rows <= height:
        raise gr.Error(f"rows to keep must be in 0..{height}, got {rows!r}")
    if count is None or int(count) != count or not 1 <= count <= 8:
        raise gr.Error(f"number of completions must be in 1..8, got {count!r}")
    count, seed = int(count), resolve_seed(seed, False)
    prompt = model.from_pixels(image).repeat(count, 1, 1, 1)
    kept = int(rows) // model.patch_size  # a token model keeps the patch rows wholly inside
    batch = {"labels": [digit] * count} if model.num_classes else {"num_images": count}
    frames = argen.sample_stream(model, temperature=temperature, seed=seed, every=values_per_frame(model, speed),
                                 prompt=prompt, prompt_pixels=kept * model.image_shape[2] * model.image_shape[0],
                                 **batch)
    yield from stream(model, frames, seed)


@library_errors
def likelihood(name, source, index, drawing, digit):
    """Per-pixel surprise, bits/dim and p(class | image) of one digit under a model."""
    model = get_model(name)
    image, label = source_image(source, index, drawing)
    x = model.from_pixels(image)
    posterior = {}
    if model.num_classes:
        probs = class_posterior(model, x)[0]
        posterior = {str(c): float(p) for c, p in enumerate(probs)}
        digit = check_digit(model, label if label is not None and digit is None else digit)
    y = torch.tensor([digit]) if model.num_classes else None
    surprise = surprise_bits(model, x, y)[0, 0]
    bits = float(surprise.sum())
    panel = render.map_panel(surprise[None].numpy(), 0, max(math.log2(model.levels), float(surprise.max())),
                             "inferno", "bits")
    per_value = "bits/dim" if model.patch_size == 1 else f"bits per {model.value_name[:-1]}"
    summary = (f"**{bits:.1f} bits** for this image · **{bits_per_dim(bits * math.log(2), model.num_pixels):.4f} "
               f"{per_value}** (K = {model.levels})" + (f" · scored as a {digit}" if model.num_classes else ""))
    return panel, summary, posterior


@library_errors
def compare(names, digit, temperature, seed):
    """The same digit and random numbers through several models: (image, caption) pairs."""
    if not names:
        raise gr.Error("pick at least one model to compare")
    seed = resolve_seed(seed, False)
    results = []
    for name in names:
        model = get_model(name)
        batch = {"labels": [check_digit(model, digit)]} if model.num_classes else {"num_images": 1}
        started = time.perf_counter()
        frame = None
        for frame in argen.sample_stream(model, temperature=temperature, seed=seed, every=model.num_pixels, **batch):
            pass
        seconds = time.perf_counter() - started
        picture = render.canvas(model.to_pixels(frame.image), 256)
        results.append((picture, f"{name}: {frame.nll_bits[0]:.0f} bits, {seconds:.2f} s"))
    return results


def about(name):
    """What a model is, its measured figures and its sample grid."""
    if name not in argen.available():
        raise gr.Error(f"unknown model {name!r}")
    model, metrics = get_model(name), read_metrics(name)
    test, quality, speed, train = (metrics.get(k, {}) for k in ("test", "quality", "speed", "train"))
    token = model.patch_size > 1
    tokenizer = metrics.get("tokenizer", {})
    rows = [("parameters", f"{model.num_parameters:,}"), ("tokens K" if token else "levels K", model.levels),
            ("test NLL (nats/image)", test.get("nats_per_image")),
            ("test bits/token" if token else "test bits/dim", test.get("bits_per_dim")),
            ("tokenizer PSNR (dB) on the test set", tokenizer.get("psnr_db")),
            ("8-bit-equivalent bits/dim", test.get("bits_per_dim_8bit")),
            ("classifier accuracy on samples", quality.get("accuracy")),
            ("classifier-feature FID (real-data floor)",
             f"{quality['fid']} ({quality['fid_floor']})" if quality else None),
            ("seconds per image (fast path)", speed.get("seconds_per_image")),
            ("seconds per image (naive path)", speed.get("naive_seconds_per_image")),
            ("seconds per batch of 10", speed.get("seconds_per_10")),
            ("training minutes", train.get("wall_minutes")), ("hardware", train.get("hardware")),
            ("command", f"`{train['command']}`" if "command" in train else None)]
    lines = [model.about, "", "| measure | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in rows if value is not None]
    grid = model_dir(name) / "samples.png"
    return "\n".join(lines), str(grid) if grid.is_file() else None


def on_model_change(name):
    """Enable the digit picker for class-conditional models, fit top-k to the model's K."""
    model = get_model(name)
    return (gr.Radio(interactive=bool(model.num_classes)),
            gr.Slider(maximum=model.levels, value=0, label=f"top-k (0 = all {model.levels} levels)"))


def temperature_slider():
    return gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")


def digit_picker(label="digit"):
    return gr.Radio(list(range(10)), value=7, label=label)


def source_pickers():
    source = gr.Radio(["test digit", "my drawing"], value="test digit", label="image")
    index = gr.Slider(0, len(DIGITS["labels"]) - 1, value=70, step=1, label="test digit (10 of each class)")
    drawing = gr.Sketchpad(label="draw a digit (white background, dark ink)", height=280,
                           canvas_size=(280, 280), type="numpy")
    return source, index, drawing


def stream_outputs(what):
    """The panels a streamed generation fills, in the order :func:`stream` yields them."""
    canvas = gr.Image(label=what, type="pil", format="png")
    stats = gr.Markdown()
    with gr.Row():
        prob = gr.Image(label="probability of the chosen value", type="pil", format="png")
        entropy = gr.Image(label="entropy (nats)", type="pil", format="png")
    chart = gr.Image(label="distribution of the current pixel (first image)", type="pil", format="png")
    with gr.Row():
        png = gr.File(label="final image (PNG)")
        gif = gr.File(label="the whole generation (GIF)")
    return [canvas, prob, entropy, chart, stats, png, gif]


def speed_picker():
    return gr.Dropdown(list(SPEEDS), value=28, label="speed (pixels per frame)")


def build():
    names = argen.available()
    choices = model_choices()
    default = "mlp-v3" if "mlp-v3" in names else (names[0] if names else None)
    with gr.Blocks(title="argen: watch autoregressive models draw", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# argen — watch autoregressive image models draw\nPick a model and a digit, press "
                    "**Generate**, and see each pixel sampled from the model's distribution, with how sure "
                    "it was (probability of the chosen value) and how uncertain (entropy).")
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=1):
                    model = gr.Dropdown(choices, value=default, label="model")
                    digit = digit_picker()
                    temperature = temperature_slider()
                    top_k = gr.Slider(0, 256, value=0, step=1, label="top-k (0 = all levels)")
                    with gr.Row():
                        seed = gr.Number(0, precision=0, label="seed", minimum=0)
                        random_seed = gr.Checkbox(False, label="random seed")
                    count = gr.Radio(list(IMAGE_COUNTS), value=1, label="images (10 = one per digit)")
                    speed = speed_picker()
                    with gr.Row():
                        go = gr.Button("Generate", variant="primary")
                        stop = gr.Button("Stop")
                with gr.Column(scale=2):
                    outputs = stream_outputs("canvas")
            event = go.click(generate, [model, digit, temperature, top_k, seed, random_seed, count, speed],
                             outputs, api_name="generate", show_progress="hidden")
            stop.click(None, cancels=[event])
            model.change(on_model_change, model, [digit, top_k], api_visibility="private")

        with gr.Tab("Complete"):
            with gr.Row():
                with gr.Column(scale=1):
                    c_model = gr.Dropdown(choices, value=default, label="model")
                    c_source, c_index, c_drawing = source_pickers()
                    c_preview = gr.Image(label="the digit", type="pil", height=180)
                    c_digit = gr.Radio(list(range(10)), value=None, label="class (default: the test digit's)")
                    c_rows = gr.Slider(0, 28, value=14, step=1, label="rows to keep")
                    c_count = gr.Slider(1, 8, value=4, step=1, label="completions")
                    c_temperature = temperature_slider()
                    c_seed = gr.Number(0, precision=0, label="seed", minimum=0)
                    c_speed = speed_picker()
                    c_go = gr.Button("Complete", variant="primary")
                    c_stop = gr.Button("Stop")
                with gr.Column(scale=2):
                    c_outputs = stream_outputs("completions")
            for trigger in (c_source.change, c_index.change, c_drawing.change):
                trigger(show_source, [c_source, c_index, c_drawing], c_preview, api_visibility="private")
            c_event = c_go.click(complete, [c_model, c_source, c_index, c_drawing, c_digit, c_rows, c_count,
                                            c_temperature, c_seed, c_speed], c_outputs,
                                 api_name="complete", show_progress="hidden")
            c_stop.click(None, cancels=[c_event])

        with gr.Tab("Likelihood"):
            with gr.Row():
                with gr.Column(scale=1):
                    l_model = gr.Dropdown(choices, value=default, label="model")
                    l_source, l_index, l_drawing = source_pickers()
                    l_digit = gr.Radio(list(range(10)), value=None, label="score as class (default: its label)")
                    l_go = gr.Button("Score", variant="primary")
                with gr.Column(scale=2):
                    l_map = gr.Image(label="surprise: -log2 p of each pixel (bits)", type="pil", format="png")
                    l_summary = gr.Markdown()
                    l_posterior = gr.Label(label="p(class | image), the model as a classifier", num_top_classes=10)
            l_go.click(likelihood, [l_model, l_source, l_index, l_drawing, l_digit],
                       [l_map, l_summary, l_posterior], api_name="likelihood")

        with gr.Tab("Compare"):
            with gr.Row():
                with gr.Column(scale=1):
                    m_models = gr.CheckboxGroup(choices, value=names, label="models")
                    m_digit = digit_picker()
                    m_temperature = temperature_slider()
                    m_seed = gr.Number(0, precision=0, label="seed (shared random numbers)", minimum=0)
                    m_go = gr.Button("Compare", variant="primary")
                with gr.Column(scale=2):
                    m_gallery = gr.Gallery(label="same digit, same random numbers", columns=4)
            m_go.click(compare, [m_models, m_digit, m_temperature, m_seed], m_gallery, api_name="compare")

        with gr.Tab("About"):
            a_model = gr.Dropdown(choices, value=default, label="model")
            a_text = gr.Markdown()
            a_grid = gr.Image(label="samples (one row per digit)", type="filepath")
            a_model.change(about, a_model, [a_text, a_grid], api_name="about")
            demo.load(about, a_model, [a_text, a_grid], api_visibility="private")
        demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


demo = build()

if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("ARGEN_THREADS", "2")))  # CPU-basic Spaces have 2 cores
    demo.launch()
