"""The report card of the shipped models: likelihood, sample quality and speed, measured here.

    python -m argen.evaluate [names...] [--data-dir DIR]          # exact test-set likelihood
    python -m argen.evaluate --all [--seed 0] [--data-dir DIR]     # + sample quality and speed
    python -m argen.evaluate --all --quick                         # a fast look, writes nothing
    python -m argen.evaluate pixelcnnpp --speed                    # only the speed (after a fast-path change)
    python -m argen.evaluate games-gpt --quality                   # only the sample quality (just published)
    python -m argen.evaluate --floors                              # only the real-data FID floors, again

Likelihood: the exact NLL on the full 10,000-image test set, as bits/dim at the model's K and the
8-bit-equivalent bits/dim (bits/dim + log2(256 / K), so models with different K compare on one
scale; nats/image for binarized models). Sample quality (``--all``): the project's MNIST
classifier labels 100 samples per digit drawn at temperature 1 (does a requested 7 look like a
7?) and a Fréchet distance between its penultimate features of the samples and of the test set,
beside the real-data floor (as many training images vs the test set). Speed: seconds per image
and per batch of ten on this machine, fast and naive paths (the fast path's the best of
three runs), on ``$ARGEN_THREADS`` torch threads (default: torch's own). The figures go into each
metrics.json; ``python -m train.readme`` copies them into the README's summary table and
docs/results.md's full tables, and draws ``weights/report.png``.
"""
import argparse
import math
import os

import torch

from .data import get_dataset
from .hub import (available, load, model_dir, read_metrics, recommended_guidance, recommended_top_k,
                  write_report)
from .likelihood import bits_per_dim, dataset_nll
from .models import BSQTokenizer, GenerativeModel
from .models.bsq_tokenizer import tokenizer_metrics

FIXTURE_IMAGES = 100  # "fixture" figures: the first test images (tests/fixtures holds the first 1,000)
SAMPLES_PER_CLASS = 100


def likelihood_metrics(model, images, labels, progress=False):
    """NLL of uint8 ``images`` under ``model``: nats/image, bits/dim (per value: per token for a
    token model) and the 8-bit-equivalent bits/dim where the codec has one."""
    nats = dataset_nll(model, model.codec.encode(images), labels if model.num_classes else None, progress=progress)
    bpd = bits_per_dim(nats, model.num_values)
    eight_bit = model.codec.bits_8bit(bpd)
    return {"num_images": int(images.shape[0]), "nats_per_image": round(nats, 4), "bits_per_dim": round(bpd, 5),
            "bits_per_dim_8bit": None if eight_bit is None else round(eight_bit, 5)}


def masked_metrics(model, images, labels):
    """A model without an exact likelihood (MaskGIT): bits per masked token at seeded cosine masks."""
    from .models.maskgit import masked_token_bits

    bits = masked_token_bits(model, model.codec.encode(images), labels if model.num_classes else None)
    return {"num_images": int(images.shape[0]), "masked_bits_per_token": round(bits, 5)}


def classifier_accuracy(classifier, images, labels):
    from .classifier import predict

    return round((predict(classifier, images)[0] == labels).float().mean().item(), 5)


def final_metrics(module, images, labels):
    """What a finished module's metrics.json records about it on the test set (and on its first
    FIXTURE_IMAGES, which the tests re-measure): likelihood for a generative model, fidelity for
    the tokenizer, accuracy for the classifier."""
    fixture = images[:FIXTURE_IMAGES], labels[:FIXTURE_IMAGES]
    metrics = {"parameters": module.num_parameters}
    if isinstance(module, GenerativeModel):
        measure = likelihood_metrics if module.exact_likelihood else masked_metrics
        return {**metrics, "data": {"dataset": module.config.dataset, "levels": module.levels,
                                    "codec": module.codec.kind},
                "test": measure(module, images, labels), "fixture": measure(module, *fixture),
                **module.codec.report(images)}
    if isinstance(module, BSQTokenizer):
        return {**metrics, "test": tokenizer_metrics(module, images), "fixture": tokenizer_metrics(module, fixture[0])}
    return {**metrics, "test": {"accuracy": classifier_accuracy(module, images, labels), "num_images": int(images.shape[0])},
            "fixture": {"accuracy": classifier_accuracy(module, *fixture)}}


def draw_samples(model, per_class, seed, batch_size=100, guidance=None, schedule=None, top_k=None, temperature=1.0):
    """``per_class`` samples of each class (or 10 * per_class unconditional ones): (values [N, c, h, w],
    requested labels [N] or None)."""
    from .sampling import requests, sample

    wanted = torch.arange(len(model.config.class_names)).repeat_interleave(per_class)
    images = [sample(model, temperature=temperature, seed=seed + i, guidance=guidance, schedule=schedule, top_k=top_k,
                     **requests(model, wanted[i:i + batch_size]))
              for i in range(0, len(wanted), batch_size)]
    return torch.cat(images), wanted if model.num_classes else None


def samples_picture(model, values, per_class=10):
    """The sample grid of a model folder: one row per class (``per_class`` pictures each)."""
    from .render import grid

    small = max(model.codec.picture_shape[1:]) <= 32  # doubled; 96 x 128 frames are large enough as they are
    return grid(model.codec.decode(values), nrow=per_class, scale=2 if small else 1)


def judged_picture(model, samples, per_class):
    """The sample grid of judged samples (``per_class`` of each class, in class order): at most ten a class."""
    return samples_picture(model, samples[::max(per_class // 10, 1)], min(per_class, 10))


def quality_metrics(model, classifier, reference, per_class, seed, guidance=None, schedule=None, top_k=None):
    """Classifier accuracy on class-conditional samples and the classifier-feature Fréchet distance
    (``top_k`` None: drawn from all values)."""
    from .classifier import frechet_distance, predict

    images, labels = draw_samples(model, per_class, seed, guidance=guidance, schedule=schedule, top_k=top_k)
    predicted, features = predict(classifier, model.codec.decode(images))
    accuracy = None if labels is None else round((predicted == labels).float().mean().item(), 4)
    by_class = None if labels is None else {
        name: round((predicted[labels == c] == c).float().mean().item(), 4)
        for c, name in enumerate(model.config.class_names)}
    return {"samples": int(images.shape[0]), "temperature": 1.0, "seed": seed, "guidance": guidance or 1.0,
            "top_k": top_k, "accuracy": accuracy,
            "accuracy_by_class": by_class,
            "fid": round(frechet_distance(features, reference["test_features"]), 3),
            "fid_floor": reference["fid_floor"]}, images


def guidance_curve(model, classifier, reference, per_class, seed, scales, known=(), judged=None):
    """Sample quality against the guidance scale, and the recommended scale: the most accurate
    whose FID is no worse than the unguided samples' (scale 1 is always in the curve), of equally
    accurate ones the lowest FID (:func:`best_point`). ``known``:
    points measured before with the same samples and seed, kept rather than measured again.
    ``judged`` (a dict): gets each measured scale's (quality, samples)."""
    known = {point["scale"]: point for point in known}
    curve = []
    for scale in sorted({1.0, *map(float, scales), *known}):
        point = known.get(scale)
        if point is None:
            quality, samples = quality_metrics(model, classifier, reference, per_class, seed, guidance=scale)
            if judged is not None:
                judged[scale] = quality, samples
            point = {"scale": scale, "accuracy": quality["accuracy"], "fid": quality["fid"]}
        curve.append(point)
        print(f"guidance {scale}: accuracy {point['accuracy']:.1%}, FID {point['fid']:.2f}"
              + (" (recorded)" if scale in known else ""))
    unguided = next(point for point in curve if point["scale"] == 1.0)
    return {"samples": len(model.config.class_names) * per_class, "seed": seed, "curve": curve,
            "recommended": best_point(curve, unguided)["scale"]}


def best_point(curve, baseline):
    """The point of ``curve`` to recommend: the most accurate whose FID is no worse than the
    ``baseline``'s (the model without the setting); of equally accurate ones the lowest FID, since
    at the same accuracy the samples nearer the real images are the better ones (the earliest
    point of the curve where FIDs tie too)."""
    fair = [point for point in curve if point["fid"] <= baseline["fid"]]
    return max(fair, key=lambda point: (point["accuracy"], -point["fid"]))


def top_k_curve(model, classifier, reference, per_class, seed, ks, guidance, judged=None, known=None):
    """Sample quality against top-k at the model's ``guidance``, and the recommended k: the most
    accurate whose FID is no worse than drawing from all values (None, always in the curve), of
    equally accurate ones the lowest FID (:func:`best_point`).
    Cutting the tail off each distribution keeps a guided model's extrapolated logits from
    drawing the rare far-off values that break a stroke. ``known``: the recorded quality of the
    same samples from all values, kept rather than drawn again. ``judged`` (a dict): gets each
    measured k's (quality, samples)."""
    curve = []
    for k in [None, *sorted({int(k) for k in ks if 0 < k < model.levels}, reverse=True)]:
        if k is None and known is not None:
            quality = known
        else:
            quality, samples = quality_metrics(model, classifier, reference, per_class, seed, guidance=guidance,
                                               top_k=k)
            if judged is not None:
                judged[k] = quality, samples
        curve.append({"top_k": k, "accuracy": quality["accuracy"], "fid": quality["fid"]})
        print(f"top-k {k or 'all'} at guidance {guidance:g}: accuracy {quality['accuracy']:.1%}, FID {quality['fid']:.2f}"
              + (" (recorded)" if quality is known else ""))
    return {"samples": len(model.config.class_names) * per_class, "seed": seed, "guidance": guidance, "curve": curve,
            "recommended": best_point(curve, curve[0])["top_k"]}


def decoding_curve(model, classifier, reference, per_class, seed, steps):
    """A parallel decoder's quality and speed against its number of decoding steps T."""
    from .benchmark import time_stream
    from .schedules import Confidence

    curve = []
    for t in steps:
        schedule = Confidence(t, model.config.choice_temperature)
        quality = quality_metrics(model, classifier, reference, per_class, seed, schedule=schedule)[0]
        time_stream(model, 1, True, None, schedule)  # warm-up
        seconds = time_stream(model, 1, True, None, schedule)[1]
        curve.append({"steps": t, "accuracy": quality["accuracy"], "fid": quality["fid"],
                      "seconds_per_image": round(seconds, 4)})
        print(f"{t} steps: accuracy {quality['accuracy']:.1%}, FID {quality['fid']:.2f}, {seconds:.3f} s/image")
    return {"samples": len(model.config.class_names) * per_class, "seed": seed, "curve": curve}


SPEED_REPEATS = 3  # the fast path's figures are the best of this many runs; the naive path's, one run


def speed_metrics(model, guidance=None, top_k=None):
    """Seconds per image and per batch of ten (one per class), fast and naive paths, and with the
    fast path at ``guidance`` and ``top_k`` (the model's defaults) when they are not plain sampling
    (guidance 1, all values): ``guided_seconds_per_image``, which a model that recommends a top-k
    without guidance records at guidance 1."""
    from .benchmark import time_stream
    from .sampling import run_threads

    whole, r = model.num_values, SPEED_REPEATS
    time_stream(model, 1, True, whole)  # warm-up
    one_image = run_threads(model, 1, guidance)
    speed = {"threads": torch.get_num_threads(), "one_image_threads": one_image, "fast_path": model.has_fast_path, "best_of": r,
             "seconds_per_image": round(time_stream(model, 1, True, whole, repeats=r)[1], 3),
             "seconds_per_10": round(time_stream(model, 10, True, whole, repeats=r)[1], 3)}
    if model.has_fast_path:
        speed["naive_seconds_per_image"] = round(time_stream(model, 1, False, whole)[1], 3)
    if guidance not in (None, 1.0) or top_k:
        speed["guidance"], speed["top_k"] = 1.0 if guidance is None else guidance, top_k
        speed["guided_seconds_per_image"] = round(
            time_stream(model, 1, True, whole, guidance=guidance, repeats=r, top_k=top_k)[1], 3)
    return speed


def dataset_of(module):
    """The :class:`~argen.data.Dataset` a module learns from or judges (MNIST for the tokenizer)."""
    return get_dataset(getattr(module.config, "dataset", "mnist"))


class TestSets:
    """Each dataset's test split (or its first FIXTURE_IMAGES with ``quick``), and for the sample
    quality its classifier, the classifier's features of the test set and the real-data floor of
    the Fréchet distance (as many training images as samples, against the test set); each loaded
    once, when a model first asks for it."""

    def __init__(self, data_dir, quick=False):
        self.data_dir, self.quick, self.loaded, self.references = data_dir, quick, {}, {}

    def test(self, dataset):
        if dataset.name not in self.loaded:
            images, labels = dataset.load("test", self.data_dir)
            self.loaded[dataset.name] = (images[:FIXTURE_IMAGES], labels[:FIXTURE_IMAGES]) if self.quick else (images, labels)
        return self.loaded[dataset.name]

    def reference(self, dataset, samples):
        """(the judging classifier, {"test_features", "fid_floor"}) for ``samples`` samples."""
        from .classifier import frechet_distance, predict

        key = (dataset.name, samples)
        if dataset.classifier is None:
            raise ValueError(f"no classifier judges {dataset.name} samples, so their quality cannot be measured")
        if key not in self.references:
            classifier = load(dataset.classifier)
            test_features = predict(classifier, self.test(dataset)[0])[1]
            images, labels = dataset.load("train", self.data_dir)
            real = predict(classifier, images[floor_images(labels, samples)])[1]
            self.references[key] = classifier, {"test_features": test_features,
                                                "fid_floor": round(frechet_distance(real, test_features), 3)}
        return self.references[key]


def floor_images(labels, samples, seed=0):
    """Indices of ``samples`` training images for the real-data floor: as many of each class as the
    samples hold (all classes alike, when ``samples`` divides evenly), drawn at random with a fixed
    seed. Not the last ones: a game's training frames come in episodes, and consecutive frames are
    so alike that their distance to the test set was ten times the random subset's."""
    generator = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    if samples % len(classes):
        return torch.randperm(len(labels), generator=generator)[:samples]
    return torch.cat([members[torch.randperm(len(members), generator=generator)[:samples // len(classes)]]
                      for members in (torch.nonzero(labels == c).flatten() for c in classes)])


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def format_table(rows):
    header = (f"{'model':<22} {'K':>5} {'params':>10} {'nats/image':>11} {'bits/value':>10} {'8-bit bpd':>10} "
              f"{'accuracy':>9} {'FID':>8} {'s/image':>8}")
    lines = [header, "-" * len(header)]
    for name, m in rows:
        t, q, s = m["test"], m.get("quality", {}), m.get("speed", {})
        lines.append(f"{name:<22} {m['data']['levels']:>5} {m['parameters']:>10,} "
                     f"{fmt(t.get('nats_per_image'), '.2f'):>11} {fmt(t.get('bits_per_dim'), '.4f'):>10} "
                     f"{fmt(t.get('bits_per_dim_8bit'), '.4f'):>10} "
                     f"{fmt(q.get('accuracy'), '.1%'):>9} {fmt(q.get('fid'), '.2f'):>8} "
                     f"{fmt(s.get('seconds_per_image'), '.2f'):>8}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.evaluate",
                                     description="The report card of the shipped models.")
    parser.add_argument("names", nargs="*", help=f"models (default: all shipped: {available()})")
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $ARGEN_DATA or ./data)")
    parser.add_argument("--all", action="store_true", help="also sample quality and speed")
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {FIXTURE_IMAGES:,} test images and 10 samples per class; prints, writes nothing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    parser.add_argument("--guidance", type=float, nargs="+", default=None, metavar="SCALE",
                        help="only measure sample quality against these guidance scales (and 1) for the "
                             "class-conditional models, with --per-class samples of each class; with --quality, "
                             "the samples at the recommended scale are also recorded as the sample quality")
    parser.add_argument("--top-k", type=int, nargs="+", default=None, metavar="K",
                        help="only measure sample quality against these top-k (and all values) at each "
                             "class-conditional model's recommended guidance; with --quality, the samples at the "
                             "recommended k are also recorded as the sample quality")
    parser.add_argument("--decoding-steps", type=int, nargs="+", default=None, metavar="T",
                        help="only measure sample quality and speed against the number of parallel decoding "
                             "steps, for the models without an exact likelihood (MaskGIT)")
    parser.add_argument("--speed", action="store_true",
                        help="only measure the speed, keeping the other figures (after a change to a fast path)")
    parser.add_argument("--quality", action="store_true",
                        help="only measure the sample quality, keeping the other figures (a model whose test "
                             "figures were just measured by its training command)")
    parser.add_argument("--floors", action="store_true",
                        help="only measure the real-data FID floor again, beside each model's recorded samples")
    parser.add_argument("--null-gap", action="store_true",
                        help=f"only print how far each guided model's null class is behind the images' own class "
                             f"on the first {FIXTURE_IMAGES} test images (writes nothing)")
    parser.add_argument("--per-class", type=int, default=None, help="samples per class (default 100; 10 with --quick)")
    args = parser.parse_args(argv)
    if os.environ.get("ARGEN_THREADS"):  # as the app reads it
        torch.set_num_threads(int(os.environ["ARGEN_THREADS"]))
    names = args.names or available()
    for name in names:
        model_dir(name)  # fail early on an unknown name
    if args.speed:
        return speed_main(names, args.quick)
    data = TestSets(args.data_dir, args.quick)
    if args.floors:
        return floors_main(names, data, args.quick)
    if args.null_gap:
        return null_gap_main(names, data)
    per_class = args.per_class or (10 if args.quick else SAMPLES_PER_CLASS)
    if args.guidance or args.decoding_steps or args.top_k:
        return curves_main(names, args, data, per_class)
    rows, floors, judged = [], {}, args.all or args.quality
    for name in names:
        model = load(name)
        dataset = dataset_of(model)
        measured = {} if args.quality else final_metrics(model, *data.test(dataset))
        metrics = {**read_metrics(name), **measured}  # read after the measuring: another run may have written
        samples = None
        if judged and dataset.classifier is None:
            print(f"{name}: no classifier judges {dataset.name} samples, so their quality is not measured")
        elif judged:
            classifier, reference = data.reference(dataset, len(model.config.class_names) * per_class)
            floors[dataset.name] = reference["fid_floor"]
            guidance = recommended_guidance(name)  # the model's defaults (1: a model that does not guide)
            top_k = recommended_top_k(name)  # (None: all values)
            if guidance != 1.0 or top_k:
                print(f"samples of {name} at guidance {guidance:g}" + (f", top-k {top_k}" if top_k else "")
                      + ", its recommended settings")
            metrics["quality"], samples = quality_metrics(model, classifier, reference, per_class, args.seed,
                                                          guidance=guidance, top_k=top_k)
            samples = judged_picture(model, samples, per_class)
        if args.all:
            metrics["speed"] = speed_metrics(model, recommended_guidance(name), recommended_top_k(name))
        if not args.quick:
            write_report(model_dir(name), metrics, samples)
        rows.append((name, metrics))
    print(format_table(rows))
    for dataset, floor in floors.items():
        print(f"FID floor of {dataset} (real images vs its test set, as many as the samples): {floor}")
    if not args.quick:
        print("wrote each model's metrics.json (the pages' tables and weights/report.png: python -m train.readme)")


def speed_main(names, quick):
    """``--speed``: each model's speed figures, measured again, into its metrics.json."""
    for name in names:
        model = load(name)
        if not isinstance(model, GenerativeModel):
            print(f"{name}: draws nothing, so it has no speed to measure")
            continue
        speed = speed_metrics(model, recommended_guidance(name), recommended_top_k(name))
        print(f"{name}: {speed}")
        if not quick:
            write_report(model_dir(name), {**read_metrics(name), "speed": speed})


def floors_main(names, data, quick):
    """``--floors``: the real-data floor beside each model's recorded sample quality, measured again
    (as many training images as it has samples) into its metrics.json."""
    for name in names:
        metrics = read_metrics(name)
        quality = metrics.get("quality")
        if not quality or quality.get("fid") is None:
            print(f"{name}: no recorded sample quality, so no floor")
            continue
        reference = data.reference(dataset_of(load(name)), quality["samples"])[1]
        print(f"{name}: FID {quality['fid']}, floor {quality['fid_floor']} -> {reference['fid_floor']}")
        if not quick:
            write_report(model_dir(name), {**metrics, "quality": {**quality, "fid_floor": reference["fid_floor"]}})


def null_gap(model, images, labels):
    """Nats per image of ``images`` under their own class and under the null class: a null class
    that had learnt the unconditional distribution would be at most ln(classes) behind, since
    p(x) >= p(x | y) p(y). Classifier-free guidance moves the logits along (own - null), so a
    null class far behind that bound mostly amplifies what the null class has not learnt."""
    x = model.codec.encode(images)
    own = dataset_nll(model, x, labels)
    null = dataset_nll(model, x, torch.full_like(labels, model.null_class))
    return {"own_class": round(own, 2), "null_class": round(null, 2), "gap": round(null - own, 2),
            "bound": round(math.log(model.num_classes), 2)}


def null_gap_main(names, data):
    """``--null-gap``: :func:`null_gap` on the first FIXTURE_IMAGES test images of each model with a null class."""
    for name in names:
        model = load(name)
        if not isinstance(model, GenerativeModel) or model.null_class is None or not model.exact_likelihood:
            print(f"{name}: no null class with a likelihood")
            continue
        images, labels = data.test(dataset_of(model))
        gap = null_gap(model, images[:FIXTURE_IMAGES], labels[:FIXTURE_IMAGES])
        print(f"{name}: nats per image with the own class {gap['own_class']}, with the null class "
              f"{gap['null_class']}: {gap['gap']} behind (a learnt null class: at most {gap['bound']})")


def same_samples_quality(metrics, count, seed):
    """The recorded sample quality if it judged the samples that ``count`` samples and ``seed`` draw
    (at its own scale), else None."""
    quality = metrics.get("quality", {})
    same = (quality.get("samples"), quality.get("seed"), quality.get("temperature")) == (count, seed, 1.0)
    return quality if same and quality.get("accuracy") is not None else None


def measured_points(name, count, seed):
    """The guidance points already measured on the samples that a curve of ``count`` samples and
    ``seed`` draws: those of a recorded curve of the same samples, and the recorded sample quality
    when it was judged on them."""
    metrics = read_metrics(name)
    recorded, quality = metrics.get("guidance", {}), same_samples_quality(metrics, count, seed)
    points = list(recorded.get("curve", [])) if (recorded.get("samples"), recorded.get("seed")) == (count, seed) else []
    if quality is not None and quality.get("top_k") is None:  # a guidance curve draws from all values
        scale = quality.get("guidance", 1.0)  # (records without a scale are unguided)
        if all(point["scale"] != scale for point in points):
            points.append({"scale": scale, "accuracy": quality["accuracy"], "fid": quality["fid"]})
    return points


def curves_main(names, args, data, per_class):
    """``--guidance`` / ``--decoding-steps``: quality curves into each model's metrics.json."""
    for name in names:
        model = load(name)
        classifier, reference = data.reference(dataset_of(model), len(model.config.class_names) * per_class)
        print(f"{name} (FID floor {reference['fid_floor']}):")
        judged, quality = {}, None
        if args.guidance and model.can_guide:
            key, curve = "guidance", guidance_curve(model, classifier, reference, per_class, args.seed, args.guidance,
                                                    known=() if args.quick else measured_points(
                                                        name, len(model.config.class_names) * per_class, args.seed),
                                                    judged=judged)
            print(f"{name}: recommended guidance {curve['recommended']}")
            top = read_metrics(name).get("top_k")
            stale_top = top is not None and top.get("guidance") != curve["recommended"]
            top_k = None if top is None or stale_top else top["recommended"]  # the model's defaults: both
            recorded = same_samples_quality(read_metrics(name), curve["samples"], args.seed)
            if args.quality and not (recorded and recorded.get("guidance", 1.0) == curve["recommended"]
                                     and recorded.get("top_k") == top_k):
                # the samples at the recommended scale are the model's sample quality (unless already recorded)
                quality = (judged.get(curve["recommended"]) if top_k is None else None) or quality_metrics(
                    model, classifier, reference, per_class, args.seed, guidance=curve["recommended"], top_k=top_k)
        elif args.top_k and model.num_classes:
            guidance = recommended_guidance(name)
            recorded = same_samples_quality(read_metrics(name), len(model.config.class_names) * per_class, args.seed)
            known = None if args.quick or not recorded or recorded.get("top_k") is not None \
                or recorded.get("guidance", 1.0) != guidance else recorded  # these samples from all values
            key, curve = "top_k", top_k_curve(model, classifier, reference, per_class, args.seed, args.top_k,
                                              guidance, judged, known)
            print(f"{name}: recommended top-k {curve['recommended'] or 'all'} at guidance {guidance:g}")
            if args.quality:  # the samples at the recommended k are the model's sample quality (unless recorded)
                quality = judged.get(curve["recommended"])
        elif args.decoding_steps and not model.exact_likelihood:
            key, curve = "decoding", decoding_curve(model, classifier, reference, per_class, args.seed,
                                                    args.decoding_steps)
        else:
            print(f"{name}: not measured (guidance needs a class-conditional model with an exact likelihood "
                  f"or a null class; top-k, a class-conditional model; decoding steps, a parallel decoder)")
            continue
        if not args.quick:
            metrics, samples = {**read_metrics(name), key: curve}, None
            if key == "guidance" and stale_top:  # measured at another scale: no longer the model's default
                print(f"{name}: its top-k curve was measured at guidance {metrics.pop('top_k')['guidance']:g}; "
                      f"measure it again (--top-k)")
            if quality is not None:
                metrics["quality"] = quality[0]
                samples = judged_picture(model, quality[1], per_class)
            write_report(model_dir(name), metrics, samples)


if __name__ == "__main__":
    main()
