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
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import torch

import argen
from argen import compression, pipelines, render
from argen.data import DATASETS, IMAGE_SHAPE, MAX_LEVELS, from_drawing
from argen.hub import model_dir, read_metrics, recommended_guidance, recommended_temperature, recommended_top_k
from argen.sampling import entropy, set_threads

FPS = 12  # frames per second sent to the browser; more is wasted
IMAGE_COUNTS = (1, 4, 10)  # 10 = one per class
AUTO_FRAMES = 60  # speed "auto": the whole picture in about this many frames (5 s at FPS), whatever its size
SPEEDS = (0, 1, 4, 14, 28, 56, 112, 784)  # picture pixels per frame; 0: auto
MAX_SEED = 2**63 - 1
TEMPERATURE_RANGE = (0.05, 2.0)
MAX_COMPLETIONS = 8
MAX_GUIDANCE = 5.0
EXPORT_DIR = Path(tempfile.gettempdir()) / "argen-exports"
EXPORT_MAX_AGE_S = 3600
GIF_FRAMES = 200
TEST_COUNT = 100  # the library's test pictures of a dataset: ten per class, in class order
MAX_ROWS = max(dataset.image_shape[1] for dataset in DATASETS.values())


@functools.cache
def get_model(name):
    if name not in argen.available():
        raise gr.Error(f"unknown model {name!r}; choose one of {argen.available()}")
    return argen.load(name)


PICKER_INFO = ("bits/dim: the test pictures' negative log-likelihood in bits per 8-bit value, one scale for "
               "every model with one (lower is better). Models over binarized digits or tokens have likelihoods "
               "in other units, and MaskGIT none: About shows each model's own figures.")


def model_choices():
    """(label, name) pairs for the model picker: name, one-line description and one figure
    comparable across models, the test bits per 8-bit value (:data:`PICKER_INFO`), where it has one."""
    choices = []
    for name in argen.available():
        bits = read_metrics(name).get("test", {}).get("bits_per_dim_8bit")
        score = "" if bits is None else f" · {bits:.3f} bits/dim"
        choices.append((f"{name} — {get_model(name).summary}{score}", name))
    return choices


THREADS = int(os.environ.get("ARGEN_THREADS", "2"))  # torch's CPU threads (CPU-basic Spaces have 2 cores)


WORKER = threading.local()


def worker_threads():
    """Set torch's CPU threads to ``THREADS`` once in each worker thread that runs a request (the
    app's thread policy: the library sets none). Gradio may run each step of a streamed request on
    another worker of its pool, so every step asks."""
    if not getattr(WORKER, "threads_set", False):
        set_threads(THREADS)
        WORKER.threads_set = True


def library_errors(fn):
    """Turn the library's ValueErrors into ``gr.Error`` so the user sees them and the app keeps
    serving, on the app's threads (:func:`worker_threads`)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream_wrapper(*args, **kwargs):
            worker_threads()
            try:
                for outputs in fn(*args, **kwargs):
                    yield outputs
                    worker_threads()
            except gr.Error:  # already the user's message (a gr.Error is a ValueError: do not wrap it again)
                raise
            except ValueError as error:
                raise gr.Error(str(error)) from error
        return stream_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        worker_threads()
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as error:
            raise gr.Error(str(error)) from error
    return wrapper


def whole(value, what, low, high):
    """A widget's number as an int in ``low..high``, else a clear error."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or int(value) != value or not low <= value <= high:
        raise gr.Error(f"{what} must be a whole number in {low}..{high}, got {value!r}")
    return int(value)


def number(value, what, low, high):
    """A widget's number as a float in ``low..high``, else a clear error."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise gr.Error(f"{what} must be a number in {low:g}..{high:g}, got {value!r}")
    return float(value)


def checked(component):
    """``component`` handing its value to the handler as sent, for the handler to check and name
    in a clear error (Gradio's own check would round 1.5 to 2, or fail on text with a generic message)."""
    component.preprocess = lambda payload: payload
    return component


class ExplainedModel:
    """A component's data model whose validation failure is the user's ``message`` (a ``gr.Error``)."""

    def __init__(self, model, message):
        self.model, self.message = model, message

    def model_validate(self, payload, **kwargs):
        try:
            return self.model.model_validate(payload, **kwargs)
        except Exception as error:
            raise gr.Error(f"{self.message}; got {str(payload)[:80]!r}") from error

    def __getattr__(self, name):
        return getattr(self.model, name)


def explained(component, message):
    """``component`` whose input Gradio cannot read raises ``message`` (naming what is allowed)
    instead of Gradio's generic error, whether its payload fails the data model or the preprocessing."""
    preprocess = component.preprocess
    component.data_model = ExplainedModel(component.data_model, message)

    def checked_preprocess(payload):
        try:
            return preprocess(payload)
        except Exception as error:
            raise gr.Error(f"{message}; got {str(payload)[:80]!r}") from error
    component.preprocess = checked_preprocess
    return component


def dataset_of(model):
    return DATASETS[model.config.dataset]


def class_word(model):
    """What a class is called for a model's dataset: a digit, a game."""
    return dataset_of(model).class_word


def class_names(model):
    return model.config.class_names


def as_class(model, c):
    """A class for a sentence: "a 7" for a digit, the game's name for a game."""
    return dataset_of(model).a_class(c)


def classes(model, digit, count=1):
    """The class of each of ``count`` images: ``digit`` for a class-conditional model (one of each
    when ``count`` is the number of classes)."""
    if not model.num_classes:
        return [0] * count
    if count == model.num_classes:
        return list(range(model.num_classes))
    return [whole(digit, class_word(model), 0, model.num_classes - 1)] * count


class Runs:
    """The latest run of each kind (Generate, Complete, race) in each browser session. Starting a
    run, pressing Stop or changing the model supersedes the one before, and a superseded run ends at
    its next frame. Gradio's cancel is sent by the browser, and we saw it miss a run now and then
    (the run then streamed on for up to a minute); this check is made on the server, every frame."""

    def __init__(self):
        self.latest, self.lock = {}, threading.Lock()

    @staticmethod
    def key(request, kind):
        return None if request is None else (request.session_hash, kind)

    def start(self, request, kind):
        """A new run's ticket (a run called without a browser session, as in the library, is never superseded)."""
        key = self.key(request, kind)
        with self.lock:
            self.latest[key] = self.latest.get(key, 0) + 1
            return key, self.latest[key]

    def stop(self, kind, request):
        """Supersede the session's current run of ``kind`` (the Stop button, a model change)."""
        self.start(request, kind)

    def current(self, ticket):
        key, number = ticket
        return key is None or self.latest.get(key) == number


RUNS = Runs()


def stop_generate(request: gr.Request):
    RUNS.stop("generate", request)


def stop_complete(request: gr.Request):
    RUNS.stop("complete", request)


def resolve_seed(seed, random_seed):
    return random.randrange(2**31) if random_seed else whole(seed, "seed", 0, MAX_SEED)


def top_k_arg(top_k, model=None):
    """The sampler's ``top_k`` from the slider's (0: all values)."""
    k = whole(top_k, "top-k", 0, model.levels if model else MAX_LEVELS)
    return k or None


def temperature_arg(temperature):
    return number(temperature, "temperature", *TEMPERATURE_RANGE)


def speed_arg(speed):
    if speed not in SPEEDS:
        raise gr.Error(f"speed must be one of {SPEEDS} pixels per frame (0: auto), got {speed!r}")
    return speed


def steps_per_frame(model, speed):
    """The sampler's ``every`` for a speed in picture pixels per frame (0, auto: about
    :data:`AUTO_FRAMES` frames for the whole picture)."""
    if speed_arg(speed) == 0:
        return pipelines.steps_for_frames(model, AUTO_FRAMES)
    return pipelines.steps_for_pixels(model, speed)


def export_path(suffix):
    """A fresh file in the export folder; files older than an hour are removed first."""
    EXPORT_DIR.mkdir(exist_ok=True)
    for old in EXPORT_DIR.iterdir():
        if time.time() - old.stat().st_mtime > EXPORT_MAX_AGE_S:
            old.unlink(missing_ok=True)
    handle, path = tempfile.mkstemp(suffix=suffix, dir=EXPORT_DIR)
    os.close(handle)
    return path


def frame_outputs(model, frame, shown=None, **canvas_options):
    """The panels of one frame: canvas (with ``canvas_options``: captions, kept rows), probability
    map, entropy map, distribution chart (of ``shown`` = (distribution, value) where given, else of
    the frame's most uncertain value), figures."""
    pictures = pipelines.pictures(model, frame)
    marks = None if frame.done else model.codec.to_grid(frame.committed, "any").any(1)
    cell = pipelines.cell(model)
    canvas = render.canvas(pictures, marks, cell, **canvas_options)
    prob = render.map_panel(pipelines.value_map(model, frame.prob), 0, 1, "viridis", "p", cell=cell)
    entropy = render.map_panel(pipelines.value_map(model, frame.entropy), 0, math.log(model.levels), "magma", "nats",
                               cell=cell)
    dist, value = shown or (frame.dist[0], int(frame.dist_value[0]))
    chart = render.distribution_chart(dist.numpy(), value)
    nll = "NLL" if frame.values_done == model.num_values else "NLL so far"
    stats = (f"**{model.codec.units}** {frame.values_done}/{model.num_values} · **{nll}** "
             f"{frame.nll_bits.mean():.1f} bits/image · **mean entropy** {np.nanmean(frame.entropy.numpy()):.3f} nats")
    return canvas, prob, entropy, chart, stats


def stream(model, frames, seed, note="", finished=None, ticket=(None, 0), **canvas_options):
    """Pace the sampler's frames at about FPS per second, then export the final PNG and a GIF
    (of at most GIF_FRAMES canvases: every other one is dropped whenever there are more). The last
    output is what Inspect needs of the finished images (``finished`` + their values), else None.
    A run whose ``ticket`` (:class:`Runs`) has been superseded ends here, without exporting."""
    pictures, last, outputs, stride, peak = [], 0.0, None, 1, (-1.0, None)
    for i, frame in enumerate(frames):
        if not RUNS.current(ticket):
            return
        uncertainty = float(entropy(frame.dist[:1])[0])  # the first image's most uncertain value so far
        if uncertainty > peak[0]:
            peak = (uncertainty, (frame.dist[0], int(frame.dist_value[0])))
        outputs = frame_outputs(model, frame, peak[1] if frame.done else None, **canvas_options)
        if i % stride == 0:
            pictures.append(outputs[0])
        if len(pictures) > GIF_FRAMES:
            pictures, stride = pictures[::2], 2 * stride
        wait = 1 / FPS - (time.monotonic() - last)
        if wait > 0 and not frame.done:
            time.sleep(wait)
        last = time.monotonic()
        stats = outputs[4] + f" · **seed** {seed}" + note
        if not frame.done:
            yield *outputs[:4], stats, None, None, None
    png, gif = export_path(".png"), export_path(".gif")
    outputs[0].save(png)
    pictures[0].save(gif, save_all=True, append_images=pictures[1:] + [outputs[0]] * FPS,
                     duration=round(1000 / FPS * stride), loop=0)
    yield *outputs[:4], stats, png, gif, {**(finished or {}), "values": frame.image}


@library_errors
def generate(name, digit, temperature, top_k, seed, random_seed, count, speed, guidance=1.0,
             request: gr.Request = None):
    """Sample ``count`` images (10 = one per class) and stream them value by value."""
    ticket = RUNS.start(request, "generate")
    model = get_model(name)
    if count not in IMAGE_COUNTS:
        raise gr.Error(f"number of images must be one of {IMAGE_COUNTS}, got {count!r}")
    temperature, top_k, seed = temperature_arg(temperature), top_k_arg(top_k, model), resolve_seed(seed, random_seed)
    guidance = number(guidance, "guidance", 0, MAX_GUIDANCE) if model.can_guide else None
    frames = pipelines.generate(model, classes(model, digit, count), temperature=temperature, top_k=top_k,
                                seed=seed, every=steps_per_frame(model, speed), guidance=guidance)
    labels = classes(model, digit, count) if model.num_classes else None
    settings = f" · **{name}** · **temperature** {temperature:g}" + (f" · **top-k** {top_k}" if top_k else "")
    short = all(len(name) <= 2 for name in class_names(model))  # a digit fits a picture's corner; a game's name not
    captions = labels if model.num_classes and count == model.num_classes and short else None
    yield from stream(model, frames, seed, settings + (f" · **guidance** {guidance:g}" if guidance else ""),
                      {"name": name, "labels": labels}, ticket, captions=captions)


def source_image(source, index, drawing, dataset="mnist"):
    """The 8-bit image ``[1, C, H, W]`` and its label (None for a drawing) from the chosen source:
    one of the test images of the model's dataset, or (a model of 28 x 28 grey digits) the drawing."""
    if source == "my drawing":
        if DATASETS[dataset].image_shape != IMAGE_SHAPE:
            raise gr.Error(f"drawings are for the digit models; a {dataset} model scores and completes its "
                           f"test images")
        if drawing is None or drawing.get("composite") is None:
            raise gr.Error("the drawing is empty: draw a digit first")
        return from_drawing(drawing["composite"]), None
    samples = test_samples(dataset)
    if samples is None:
        raise gr.Error(f"no test images of {dataset} come with the app; its models generate here, but do not "
                       f"complete or score")
    images, labels = samples
    index = whole(index, "test image index", 0, len(labels) - 1)
    return images[index:index + 1], int(labels[index])


@functools.cache
def test_samples(dataset):
    return DATASETS[dataset].test_samples()


def show_source(name, source, index, drawing):
    try:
        image, label = source_image(source, index, drawing, get_model(name).config.dataset)
    except (gr.Error, ValueError):
        return None
    return render.grid(image, nrow=1, scale=6)


@library_errors
def complete(name, source, index, drawing, digit, rows, count, temperature, seed, speed, request: gr.Request = None):
    """Keep the top ``rows`` rows of a digit and stream ``count`` completions side by side."""
    ticket = RUNS.start(request, "complete")
    model = get_model(name)
    image, label = source_image(source, index, drawing, model.config.dataset)
    count, rows = whole(count, "number of completions", 1, MAX_COMPLETIONS), whole(rows, "rows to keep", 0,
                                                                                       image.shape[2])
    temperature = temperature_arg(temperature)
    if digit is None:  # a test image's own label; for a drawing, the class the model finds most probable
        digit = label if label is not None or not model.num_classes else int(pipelines.score(model, image).label[0])
    seed = resolve_seed(seed, False)
    wanted = classes(model, digit, count)
    frames = pipelines.complete(model, image, wanted, rows, temperature=temperature, seed=seed,
                                every=steps_per_frame(model, speed))
    kept_rows = pipelines.kept_rows(model, rows)
    note = f" · **kept** {model.codec.kept_words(rows)}"
    yield from stream(model, frames, seed, f" · **{name}**" + (f" as {as_class(model, digit)}" if model.num_classes
                                                                else "")
                      + f" · **temperature** {temperature:g}" + note,
                      {"name": name, "labels": wanted if model.num_classes else None}, ticket, kept_rows=kept_rows)


@library_errors
def inspect_click(finished, evt: gr.SelectData):
    """A click on a finished image: the distribution its value there was drawn from, and (for a
    class-conditional model) how that value moved p(class | the values drawn before it)."""
    if not finished:
        raise gr.Error("generate an image first, then click one of its pixels")
    model, values, labels = get_model(finished["name"]), finished["values"], finished["labels"]
    cell = render.cell_at(values.shape[0], model.codec.picture_shape[1:], *evt.index)
    if cell is None:
        raise gr.Error("click inside one of the pictures")
    image, row, col = cell
    label = None if labels is None else labels[image]
    p, channels = pipelines.cell(model), model.codec.grid_shape[0]
    seen = [pipelines.inspect(model, values[image], label, model.codec.grid_position((c, row // p, col // p)))
            for c in range(channels)]
    where = f"**image {image + 1}, {model.codec.unit if channels == 1 else 'pixel'} ({row // p}, {col // p})**"
    if channels == 1:
        text = (f"{where}: value {seen[0].value} had p = {seen[0].prob:.3f} under a distribution of entropy "
                f"{seen[0].entropy:.3f} nats (temperature 1)")
    else:  # a colour pixel: each channel's draw; the chart shows the most uncertain one
        names = "RGB" if channels == 3 else [f"channel {c}" for c in range(channels)]
        text = f"{where}: " + " · ".join(f"{names[c]} {s.value} had p = {s.prob:.3f} (entropy {s.entropy:.3f} nats)"
                                         for c, s in enumerate(seen)) + " (temperature 1)"
    shown = max(seen, key=lambda s: s.entropy)
    if seen[-1].posterior_before is not None:
        first, last = seen[0], seen[-1]
        text += (f" · p({class_names(model)[label]} | the values drawn before it) = {first.posterior_before[label]:.3f} → "
                 f"{last.posterior_after[label]:.3f} with it")
    return render.distribution_chart(shown.dist.numpy(), shown.value), text


@library_errors
def likelihood(name, source, index, drawing, digit):
    """Per-value surprise, bits per value and p(class | image) of one digit under a model."""
    model = get_model(name)
    image, label = source_image(source, index, drawing, model.config.dataset)
    label = label if digit is None else whole(digit, "class", 0, len(class_names(model)) - 1)
    result = pipelines.score(model, image, label if model.num_classes else None)
    surprise = pipelines.value_map(model, result.surprise, "share")
    panel = render.map_panel(surprise.numpy(), 0, max(math.log2(model.levels), float(surprise.max())), "inferno",
                             "bits", cell=pipelines.cell(model))
    names = class_names(model)
    posterior = {} if result.posterior is None else {names[c]: float(p) for c, p in enumerate(result.posterior[0])}
    scored = "" if result.label is None else f" · scored as {as_class(model, int(result.label[0]))}" + (
        " (its most probable class)" if label is None else "")
    summary = (f"**{result.bits[0]:.1f} bits** for this image · **{result.bits_per_value[0]:.4f} bits per "
               f"{model.codec.unit}** (K = {model.levels}){scored}")
    return panel, summary, posterior


def exact_choices(choices):
    """The model picker's entries of the models that can compress (an exact likelihood)."""
    return [(label, name) for label, name in choices if get_model(name).exact_likelihood]


@library_errors
def compress_picture(name, source, index, drawing):
    """Store one picture as an ``.argen`` file with a model: its size next to PNG and WebP, and the
    bits each value cost as the coder walked the model's order (the surprise map, in bytes)."""
    model = get_model(name)
    image, label = source_image(source, index, drawing, model.config.dataset)
    classes = [label] if label is not None and model.num_classes else None
    encoded = compression.encode(model, image, classes, name=name)
    path = export_path(compression.SUFFIX)
    Path(path).write_bytes(encoded.data)
    bits = pipelines.value_map(model, encoded.bits, "share")
    panel = render.map_panel(bits.numpy(), 0, max(math.log2(model.levels), float(bits.max())), "inferno", "bits",
                             cell=pipelines.cell(model))
    classical = {name: sizes[0] for name, sizes in compression.classical_sizes(image).items() if name != "lzma"}
    header = len(encoded.data) - encoded.payload_bytes
    summary = (f"**{len(encoded.data)} bytes** as `.argen` ({encoded.payload_bytes} of coded "
               f"{model.codec.units}, {header} of header) · " + " · ".join(f"{k} {v} bytes" for k, v in classical.items())
               + f" · the model's {float(encoded.bits.sum()) / 8:.1f} bytes (-log2 p of every {model.codec.unit}, "
               f"summed{', and the class' if classes is None and model.num_classes else ''})")
    if encoded.classes is not None:
        summary += f" · coded as {as_class(model, int(encoded.classes[0]))}"
    largest, psnr = compression.picture_error(model, image)
    if largest:
        summary += (f"\n\nLossless over the model's values ({model.levels} per {model.codec.unit}), not over the "
                    f"picture: it comes back within {largest} grey levels (PSNR {psnr:.1f} dB).")
    return panel, summary, path, {"name": name, "values": model.codec.encode(image)}


@library_errors
def decompress_file(path, compressed):
    """Decompress an ``.argen`` file and check it against the values compressed last, if it holds them."""
    if not path:
        raise gr.Error("compress a picture first (or upload an .argen file)")
    data = Path(path).read_bytes()
    name = compression.read_header(data).name
    values, _, model = compression.decode(data, get_model(name))
    picture = render.grid(model.codec.decode(values), nrow=len(values), scale=6)
    verdict = f"Decompressed {len(data)} bytes with **{name}**: {values.numel()} {model.codec.units}"
    if compressed and compressed["name"] == name and values.shape == compressed["values"].shape:
        same = torch.equal(values, compressed["values"])
        verdict += " · **identical** to what was compressed" if same else " · **different** from what was compressed"
    return picture, verdict


RACERS = ("mlp-v3", "lstm", "pixel-gpt", "bsq-gpt", "var", "pixelcnn-games", "games-gpt", "games-maskgit", "games-var")  # the race's start


def race_groups():
    """The models that can race together, by what their classes are ("digits", "games"): the same classes."""
    groups = {}
    for name in argen.available():
        groups.setdefault(class_word(get_model(name)) + "s", []).append(name)
    return groups


def on_race_group_change(group):
    """The race's class picker and model list for a dataset, a few models ticked."""
    names = race_groups()[group]
    model = get_model(names[0])
    ticked = [name for name in names if name in RACERS] or names[:3]
    choices = [(label, name) for label, name in model_choices() if name in names]
    return (gr.Radio(choices=class_choices(model), value=min(7, model.num_classes - 1), label=class_word(model)),
            gr.CheckboxGroup(choices=choices, value=ticked))


def race_table(names, lap):
    rows = [f"| `{name}` | {r.frame.nll_bits[0]:.0f} | {r.seconds:.2f} | {'done' if r.frame.done else '…'} |"
            for name, r in zip(names, lap)]
    return "\n".join(["| model | bits so far | seconds | |", "|---|---|---|---|", *rows])


@library_errors
def compare(names, digit, temperature, seed, speed=max(SPEEDS), own_settings=False, request: gr.Request = None):
    """Race: the same class and random numbers through several models of one dataset, drawn live
    side by side (each at its recommended settings with ``own_settings``, else all at
    ``temperature``): per frame, the gallery (picture, model name) and a table of each model's bits
    and seconds so far."""
    ticket = RUNS.start(request, "race")
    if not names:
        raise gr.Error("pick at least one model to compare")
    models = [get_model(name) for name in names]
    kinds = {name: class_word(model) for name, model in zip(names, models)}
    if len(set(kinds.values())) > 1:
        raise gr.Error("race models that draw the same classes: " + ", ".join(f"{n} draws {k}s" for n, k in kinds.items()))
    wanted = [whole(digit, kinds[names[0]], 0, len(class_names(models[0])) - 1)]
    settings = None
    if own_settings:
        settings = [{"temperature": recommended_temperature(name), "top_k": recommended_top_k(name),
                     "guidance": recommended_guidance(name) if model.can_guide else None}
                    for name, model in zip(names, models)]
    else:
        settings = [{"temperature": temperature_arg(temperature)}] * len(models)
    speed = speed_arg(speed)
    runners = pipelines.race(models, wanted, seed=resolve_seed(seed, False), settings=settings,
                             pixels_per_frame=speed or None, frames=AUTO_FRAMES if speed == 0 else None)
    last = 0.0
    for lap in runners:
        if not RUNS.current(ticket):
            return
        wait = 1 / FPS - (time.monotonic() - last)
        if wait > 0:
            time.sleep(wait)
        last = time.monotonic()
        yield ([(render.canvas(pipelines.pictures(r.model, r.frame)), name) for name, r in zip(names, lap)],
               race_table(names, lap))


def stop_race(request: gr.Request):
    RUNS.stop("race", request)


@functools.cache
def field_of(name):
    """What a model sees when it predicts the centre value: (the picture, values seen, values drawn before)."""
    model = get_model(name)
    _, h, w = model.codec.grid_shape
    centre = (h // 2, w // 2)
    position = model.codec.grid_position((0, *centre))
    seen = pipelines.receptive_field(model, position)
    earlier = pipelines.drawn_before(model, position)
    on_grid = (model.codec.to_grid(mask[None], "any")[0, 0] for mask in (seen, earlier))
    picture = render.field_picture(*on_grid, centre, pipelines.cell(model))
    return picture, int(seen.sum()), int(earlier.sum())


def about(name):
    """What a model is, its measured figures, its sample grid and (with an exact likelihood) what it
    sees when it predicts the centre value."""
    if name not in argen.available():
        raise gr.Error(f"unknown model {name!r}")
    model, metrics = get_model(name), read_metrics(name)
    test, quality, speed, train = (metrics.get(k, {}) for k in ("test", "quality", "speed", "train"))
    tokenizer, unit = metrics.get("tokenizer", {}), model.codec.unit
    rows = [("parameters", f"{model.num_parameters:,}"), (f"values K (one per {unit})", model.levels),
            ("codec", f"`{model.codec.spec['kind']}`"),
            ("test NLL (nats/image)", test.get("nats_per_image")),
            (f"test bits/{unit} (over its {model.levels} values)", test.get("bits_per_dim")),
            ("test bits per masked token (not a likelihood)", test.get("masked_bits_per_token")),
            ("decoding", f"`{model.schedule()}`"),
            ("tokenizer PSNR (dB) on the test set", tokenizer.get("psnr_db")),
            ("8-bit-equivalent bits/dim (the picker's figure: bits per 8-bit value, one scale for all models)",
             test.get("bits_per_dim_8bit")),
            ("classifier accuracy on samples", quality.get("accuracy")),
            ("classifier-feature FID (real-data floor)",
             f"{quality['fid']} ({quality['fid_floor']})" if quality else None),
            ("seconds per image (fast path)", speed.get("seconds_per_image")),
            ("seconds per image (naive path)", speed.get("naive_seconds_per_image")),
            ("seconds per batch of 10", speed.get("seconds_per_10")),
            ("training minutes", train.get("wall_minutes")), ("hardware", train.get("hardware")),
            ("command", f"`{train['command']}`" if "command" in train else None)]
    field = None
    if model.exact_likelihood:
        field, seen, before = field_of(name)
        rows.append((f"receptive field of the centre {model.codec.unit}",
                     f"{seen} of the {before} {model.codec.units} drawn before it: blue in the picture; orange, drawn "
                     f"before but unseen (a blind spot, or out of reach); red, the {model.codec.unit}"))
    lines = [model.about, "", "| measure | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in rows if value is not None]
    grid = model_dir(name) / "samples.png"
    return "\n".join(lines), str(grid) if grid.is_file() else None, field


def class_choices(model):
    """The class picker's (name, index) pairs: digits or game names."""
    return [(label, i) for i, label in enumerate(class_names(model))]


def on_model_change(name):
    """Show the model's classes in the class picker (enabled for class-conditional models), fit
    top-k to the model's K and set the temperature, top-k and guidance to the model's recommended
    settings (temperature 1 and top-k 0, all values, where none was measured better; guidance where
    it applies)."""
    model = get_model(name)
    guided = model.can_guide
    return (gr.Radio(choices=class_choices(model), interactive=bool(model.num_classes),
                     label=class_word(model) if model.num_classes else "class (this model is unconditional)"),
            gr.Slider(maximum=model.levels, value=recommended_top_k(name) or 0, label=f"top-k (0 = all {model.levels} values)"),
            gr.Slider(value=recommended_guidance(name), interactive=guided,
                      label=f"guidance (1 = none; more = more like the {class_word(model)} asked for)"),
            gr.Slider(value=recommended_temperature(name)))


def temperature_slider():
    low, high = TEMPERATURE_RANGE
    return checked(gr.Slider(low, high, value=1.0, step=0.05, label="temperature",
                             info=f"{low:g} to {high:g}: a typed value outside is brought to the nearest end"))


def seed_box(label="seed"):
    return checked(gr.Number(0, precision=0, label=label, minimum=0, info=f"a whole number in 0..{MAX_SEED}"))


def digit_picker(label="digit"):
    return gr.Radio(list(range(10)), value=7, label=label)


def on_source_model_change(name):
    """Complete and Likelihood: the class picker shows the model's classes (kept empty: its test
    image's own class by default)."""
    return gr.Radio(choices=class_choices(get_model(name)), value=None)


DRAWING_ERROR = "the drawing must be an image (PNG, JPEG or WebP) of a digit, dark ink on white"


def source_pickers():
    source = gr.Radio(["test image", "my drawing"], value="test image", label="image")
    index = checked(gr.Slider(0, TEST_COUNT - 1, value=70, step=1,
                              label="test image of the model's dataset (10 of each class, in class order)"))
    drawing = explained(gr.Sketchpad(label="draw a digit (white background, dark ink)", height=280,
                                     canvas_size=(280, 280), type="numpy"), DRAWING_ERROR)
    return source, index, drawing


def stream_outputs(what, elem_id):
    """The panels a streamed generation fills, in the order :func:`stream` yields them."""
    canvas = gr.Image(label=what, type="pil", format="png", elem_id=elem_id)
    stats = gr.Markdown()
    with gr.Row():
        prob = gr.Image(label="probability of the chosen value (colour: mean of R, G, B)", type="pil", format="png")
        entropy = gr.Image(label="entropy in nats (colour: mean of R, G, B)", type="pil", format="png")
    chart = gr.Image(label="the most uncertain value of the last frame (at the end, of the whole run): its "
                           "distribution (first image)", type="pil", format="png")
    inspected = gr.Markdown("When the image is finished, click one of its pixels to inspect it.")
    with gr.Row():
        png = gr.File(label="final image (PNG)")
        gif = gr.File(label="the whole generation (GIF)")
    finished = gr.State()
    canvas.select(inspect_click, finished, [chart, inspected], api_visibility="private")
    return [canvas, prob, entropy, chart, stats, png, gif, finished]


NARROW = 768  # below this width (a phone) the columns stack, and a run scrolls to what it draws


def scroll_to(elem_id):
    """Browser code: on a narrow screen, bring the element ``elem_id`` into view."""
    return (f"() => {{ if (window.innerWidth < {NARROW}) "
            f"document.getElementById('{elem_id}')?.scrollIntoView({{block: 'start'}}); }}")


def cleared(outputs):
    """Empty values for ``outputs``, so that an error never leaves the last run's results up."""
    return lambda: [None] * len(outputs)


def restartable(button, fn, inputs, outputs, shown, **kwargs):
    """The run behind ``button``: pressing it during a run stops that run, clears its outputs and
    starts a new one with the settings now shown (Gradio would otherwise drop the second press); on
    a phone the page moves to ``shown`` (an elem_id). The press bumps a counter whose change starts
    the run, so the stop is done before the new run begins."""
    presses = gr.State(0)
    event = presses.change(fn, inputs, outputs, trigger_mode="multiple", show_progress="minimal", **kwargs)
    button.click(None, cancels=[event], js=scroll_to(shown)).then(
        cleared(outputs), None, outputs, queue=False, api_visibility="private").then(
        lambda n: n + 1, presses, presses, api_visibility="private")
    return event


def speed_picker():
    return gr.Dropdown([(f"auto (about {AUTO_FRAMES // FPS} s)" if s == 0 else str(s), s) for s in SPEEDS], value=0,
                       label="speed (pixels per frame)")


def generate_tab(demo, choices, default):
    """Generate: a model, a class and settings; the canvas, maps and chart stream as it draws."""
    with gr.Tab("Generate"):
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(choices, value=default, label="model", info=PICKER_INFO)
                with gr.Row():  # in the first screenful
                    go = gr.Button("Generate", variant="primary")
                    stop = gr.Button("Stop")
                digit = digit_picker()
                guidance = checked(gr.Slider(0, MAX_GUIDANCE, value=1, step=0.25,
                                             label="guidance (1 = none; more = more like the digit asked for)"))
                temperature = temperature_slider()
                top_k = checked(gr.Slider(0, MAX_LEVELS, value=0, step=1, label="top-k (0 = all values)"))
                with gr.Row():
                    seed = seed_box()
                    random_seed = gr.Checkbox(True, label="random seed")
                count = gr.Radio(list(IMAGE_COUNTS), value=1, label="images (10 = one per class)")
                speed = speed_picker()
            with gr.Column(scale=2):
                outputs = stream_outputs("canvas", "generate-canvas")
        event = restartable(go, generate, [model, digit, temperature, top_k, seed, random_seed, count, speed,
                                           guidance], outputs, "generate-canvas", api_name="generate")
        stop.click(stop_generate, cancels=[event], queue=False, api_visibility="private")
        # a run of the old model stops when the model changes
        model.change(stop_generate, cancels=[event], queue=False, api_visibility="private")
        model.change(on_model_change, model, [digit, top_k, guidance, temperature], api_visibility="private")
        demo.load(on_model_change, model, [digit, top_k, guidance, temperature], api_visibility="private")


def complete_tab(demo, choices, default):
    """Complete: keep the top rows of a test picture or a drawing, and draw the rest."""
    with gr.Tab("Complete"):
        with gr.Row():
            with gr.Column(scale=1):
                c_model = gr.Dropdown(choices, value=default, label="model", info=PICKER_INFO)
                with gr.Row():
                    c_go = gr.Button("Complete", variant="primary")
                    c_stop = gr.Button("Stop")
                c_source, c_index, c_drawing = source_pickers()
                c_preview = gr.Image(label="the image", type="pil", height=180)
                c_digit = gr.Radio(list(range(10)), value=None, label="class (default: the test image's)")
                c_rows = checked(gr.Slider(0, MAX_ROWS, value=14, step=1, label="rows to keep"))
                c_count = checked(gr.Slider(1, MAX_COMPLETIONS, value=4, step=1, label="completions"))
                c_temperature = temperature_slider()
                c_seed = seed_box()
                c_speed = speed_picker()
            with gr.Column(scale=2):
                c_outputs = stream_outputs("completions", "complete-canvas")
        for trigger in (c_model.change, c_source.change, c_index.change, c_drawing.change, demo.load):
            trigger(show_source, [c_model, c_source, c_index, c_drawing], c_preview, api_visibility="private")
        c_model.change(on_source_model_change, c_model, c_digit, api_visibility="private")
        c_event = restartable(c_go, complete, [c_model, c_source, c_index, c_drawing, c_digit, c_rows, c_count,
                                               c_temperature, c_seed, c_speed], c_outputs, "complete-canvas",
                              api_name="complete")
        c_stop.click(stop_complete, cancels=[c_event], queue=False, api_visibility="private")


def likelihood_tab(demo, choices, default):
    """Likelihood: the surprise of each value of a picture, its bits, and p(class | picture)."""
    with gr.Tab("Likelihood"):
        with gr.Row():
            with gr.Column(scale=1):
                l_model = gr.Dropdown(choices, value=default, label="model", info=PICKER_INFO)
                l_go = gr.Button("Score", variant="primary")
                l_source, l_index, l_drawing = source_pickers()
                l_digit = gr.Radio(list(range(10)), value=None,
                                   label="score as class (default: its label; a drawing: the most probable)")
            with gr.Column(scale=2):
                l_map = gr.Image(label="surprise: -log2 p of each pixel (bits)", type="pil", format="png",
                                 elem_id="likelihood-map")
                l_summary = gr.Markdown()
                l_posterior = gr.Label(label="p(class | image), the model as a classifier", num_top_classes=10)
        l_outputs = [l_map, l_summary, l_posterior]
        l_go.click(cleared(l_outputs), None, l_outputs, queue=False, js=scroll_to("likelihood-map"),
                   api_visibility="private").then(
            likelihood, [l_model, l_source, l_index, l_drawing, l_digit], l_outputs, api_name="likelihood")
        l_model.change(on_source_model_change, l_model, l_digit, api_visibility="private")


def compress_tab(demo, choices, default):
    """Compress: a picture stored as an .argen file by an exact model, and decompressed to check it."""
    with gr.Tab("Compress"):
        with gr.Row():
            with gr.Column(scale=1):
                z_choices = exact_choices(choices)
                z_model = gr.Dropdown(z_choices, value=default if any(n == default for _, n in z_choices) else None,
                                      label="model (those with an exact likelihood)")
                z_go = gr.Button("Compress", variant="primary")
                z_source, z_index, z_drawing = source_pickers()
            with gr.Column(scale=2):
                z_summary = gr.Markdown("The likelihood is a file size: a range coder stores each value in "
                                        "-log2 p bits, p the model's probability of it given the values before.")
                z_map = gr.Image(label="bits each value cost the file", type="pil", format="png",
                                 elem_id="compress-map")
                z_file = gr.File(label="the .argen file (download it, or upload one)", file_types=[".argen"])
                z_check = gr.Button("Decompress and check")
                z_back = gr.Image(label="decompressed", type="pil", height=180)
                z_verdict = gr.Markdown()
        z_compressed = gr.State()
        z_outputs = [z_map, z_summary, z_file, z_compressed]
        z_go.click(cleared(z_outputs), None, z_outputs, queue=False, js=scroll_to("compress-map"),
                   api_visibility="private").then(
            compress_picture, [z_model, z_source, z_index, z_drawing], z_outputs, api_name="compress")
        z_check.click(cleared([z_back, z_verdict]), None, [z_back, z_verdict], queue=False,
                      api_visibility="private").then(
            decompress_file, [z_file, z_compressed], [z_back, z_verdict], api_name="decompress")


def race_tab(demo, choices, default):
    """A race: several models of one dataset drawing the same class with the same random numbers."""
    with gr.Tab("Compare: a race"):
        groups = race_groups()
        group = next(iter(groups), None)
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Row():
                    m_go = gr.Button("Race", variant="primary")
                    m_stop = gr.Button("Stop")
                m_group = gr.Radio(list(groups), value=group, label="dataset")
                m_digit = gr.Radio(list(range(10)), value=7, label="class")
                m_own = gr.Checkbox(True, label="each model at its recommended temperature, top-k and guidance "
                                                "(else all at the temperature below)")
                m_temperature = temperature_slider()
                m_seed, m_speed = seed_box("seed (shared random numbers)"), speed_picker()
                with gr.Accordion("models", open=False):
                    m_models = gr.CheckboxGroup(choices, value=[], label="models")
            with gr.Column(scale=2):
                m_gallery = gr.Gallery(label="same class, same random numbers", columns=3, height="auto",
                                       elem_id="race-gallery")
                m_table = gr.Markdown()
        m_event = restartable(m_go, compare, [m_models, m_digit, m_temperature, m_seed, m_speed, m_own],
                              [m_gallery, m_table], "race-gallery", api_name="compare")
        m_stop.click(stop_race, cancels=[m_event], queue=False, api_visibility="private")
        m_group.change(on_race_group_change, m_group, [m_digit, m_models], api_visibility="private")
        demo.load(on_race_group_change, m_group, [m_digit, m_models], api_visibility="private")


def about_tab(demo, choices, default):
    """About: what a model is, its figures, its sample grid and what its prediction sees."""
    with gr.Tab("About"):
        a_model = gr.Dropdown(choices, value=default, label="model", info=PICKER_INFO)
        a_text = gr.Markdown()
        with gr.Row():
            with gr.Column():
                gr.Markdown("**samples** (one row per class)")
                a_grid = gr.Image(show_label=False, type="filepath")
            with gr.Column():
                gr.Markdown("**what the centre pixel's prediction sees**")
                a_field = gr.Image(show_label=False, type="pil")
        a_model.change(about, a_model, [a_text, a_grid, a_field], api_name="about")
        demo.load(about, a_model, [a_text, a_grid, a_field], api_visibility="private")


def build():
    """The app: a tab per thing a user does, each laid out by its own function."""
    names = argen.available()
    choices = model_choices()
    default = "mlp-v3" if "mlp-v3" in names else (names[0] if names else None)
    with gr.Blocks(title="argen: watch autoregressive models draw", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# argen — watch autoregressive image models draw\nPick a model and a class (a digit, or a "
                    "game for the colour models of Atari game scenes), press "
                    "**Generate**, and see each pixel sampled from the model's distribution, with how sure "
                    "it was (probability of the chosen value) and how uncertain (entropy).")
        for tab in (generate_tab, complete_tab, likelihood_tab, compress_tab, race_tab, about_tab):
            tab(demo, choices, default)
        demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def __getattr__(name):
    """``app.demo``, built on first use: importing the module loads no model."""
    if name == "demo":
        globals()["demo"] = build()
        return globals()["demo"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    set_threads(THREADS)
    build().launch()
