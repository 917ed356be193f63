"""``python -m train.adversarial <model> [flags]``: the diagnosis note's second stage, an adversarial
fine-tune of a colour LSTM trained by maximum likelihood, published as a model of its own.

Example: ``python -m train.adversarial lstm-games --name lstm-games-gan --data-dir data --max-minutes 20``

The diagnosis' recipe: a small convolutional discriminator on generated against real frames (class-
conditional by a projection, Miyato & Koyama 2018), the non-saturating GAN loss, an R1 penalty on
real frames (gamma = 1, applied every 16 steps and scaled by 16: lazy regularisation), Adam with
beta1 = 0 and lr 2e-4 for the generator against 1e-4 for the discriminator, and an exponential
moving average of the generator's weights (0.999, warmed up from 0.1 over the first steps, so that
a run of a few hundred steps is not mostly its starting point), which is what is published.

Gradients reach the LSTM through its own samples by :func:`sample_relaxed`:
a straight-through Gumbel-softmax choice of the mixture component per pixel, a reparameterised
logistic draw per channel and a straight-through rounding to a level, so the discriminator sees
frames exactly as the sampler draws them. The likelihood of real frames stays in the generator's
loss (``--nll-weight``), which keeps the model a density: its test bits/dim are measured like any
other model's, so what the adversarial signal costs in likelihood is on record beside what it
buys in sample quality. ``--adversarial-weight 0`` is the control: the same steps, batches,
optimizer and average with the likelihood alone (no samples, no discriminator), so that what
the adversarial signal does is told apart from what more likelihood training at this stage's
learning rate does. One generator step samples whole frames one pixel at a time, so steps
are few on a CPU: ``--max-minutes`` bounds the run, and the state (both networks, the average,
both optimizers, the step) is checkpointed atomically for ``--resume``.

This is its own small loop, not :mod:`train.loop`: a GAN steps two optimizers in turn.
"""
import argparse
import copy
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from argen.data import get_dataset
from argen.hub import load, read_metrics
from argen.models import PixelLSTM
from argen.models.layers import scale_levels

from .loop import TrainState
from .objectives import Likelihood, training_labels
from .weights_folder import hardware, publish

R1_EVERY, R1_GAMMA = 16, 1.0


class Discriminator(nn.Module):
    """Real or generated? Strided convolutions with leaky ReLUs down to 4 x 4, then a linear score
    plus the projection of the features on the class's embedding."""

    def __init__(self, picture_shape=(3, 32, 32), width=32, num_classes=10):
        super().__init__()
        c_in, layers = picture_shape[0], []
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.Flatten())
        features = self.body(torch.zeros(1, *picture_shape)).shape[1]
        self.score = nn.Linear(features, 1)
        self.project = nn.Linear(features, max(num_classes, 1), bias=False)  # a row per class

    def forward(self, pictures, y=None):
        """Scores ``[B]`` of pictures on [-1, 1] ``[B, C, H, W]``."""
        features = self.body(pictures)
        score = self.score(features)[:, 0]
        if y is not None:
            score = score + self.project(features).gather(1, y[:, None])[:, 0]
        return score



def sample_relaxed(model, y, batch, temperature=1.0):
    """A differentiable sample of a colour :class:`~argen.models.PixelLSTM` ``model`` for adversarial training: pictures ``[B, C, H, W]`` on [-1, 1].

    Each pixel picks its mixture component by a Gumbel-softmax of the component weights (relaxed
    at ``temperature``), draws each channel from the logistic by reparameterisation (mean moved
    by the pixel's earlier channels, as when sampling), and rounds it to a level with a
    straight-through estimator: the forward pass sees a level exactly as :func:`argen.sample`
    would draw it (in distribution), the backward pass the continuous value. The next step reads
    the drawn level as the sampler does, without a gradient: gradients reach earlier pixels
    through the LSTM's state only (a path through 1,024 drawn values explodes). Needs
    ``output="logistic-mixture"``."""
    if not model.scores_values:
        raise ValueError("sample_relaxed needs the logistic-mixture output (a softmax head has no reparameterisation)")
    c, height, width = model.value_shape
    m, step = model.config.num_mixtures, 2 / (model.levels - 1)
    device = model.head.weight.device
    y = None if y is None else torch.as_tensor(y).long().to(device)
    previous = torch.full((batch, 1, c), model.levels, dtype=torch.long, device=device)  # the start token
    state, pixels = None, []
    for pixel in range(height * width):
        parts = [model.value_embedding(previous).flatten(2), model.positions[pixel:pixel + 1].expand(batch, 1, -1)]
        if y is not None:
            parts.append(model.class_embedding(y)[:, None])
        out, state = model.lstm(torch.cat(parts, -1), state)
        params = model.head(out[:, 0]).float()  # (b, P)
        weights, rest = params[:, :m], params[:, m:].view(batch, -1, m).transpose(1, 2)  # (b, M, P')
        means, log_scales = rest[:, :, :c], rest[:, :, c:2 * c].clamp(min=-7)
        coupling = torch.tanh(rest[:, :, 2 * c:])
        choice = F.gumbel_softmax(weights, tau=temperature, hard=True)  # (b, M), straight-through
        values, pair = [], 0
        for i in range(c):
            mean = means[:, :, i]
            for j in range(i):
                mean = mean + coupling[:, :, pair] * values[j][:, None]
                pair += 1
            u = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
            draw = mean + log_scales[:, :, i].exp() * (u.log() - (-u).log1p())  # logistic, per component
            soft = (choice * draw).sum(1).clamp(-1, 1)
            hard = (torch.round((soft + 1) / step) * step - 1).clamp(-1, 1)
            values.append(soft + (hard - soft).detach())
        pixels.append(torch.stack(values, 1))  # (b, C)
        previous = torch.round((pixels[-1].detach() + 1) / step).long()[:, None]
    return torch.stack(pixels, 2).view(batch, c, height, width)

def r1_penalty(discriminator, real, y):
    """Half the squared gradient norm of the discriminator's score at the real frames."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(real, y).sum(), real, create_graph=True)
    return 0.5 * grad.square().flatten(1).sum(1).mean()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m train.adversarial", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="the shipped colour LSTM (or its folder) to fine-tune")
    parser.add_argument("--name", default=None, help="weights folder name (default: <model>-gan)")
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $ARGEN_DATA or ./data)")
    parser.add_argument("--out", default="weights", help="where weights/<name>/ is written")
    parser.add_argument("--steps", type=int, default=2000, help="generator steps (the budget may stop it first)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr-g", type=float, default=2e-4)
    parser.add_argument("--lr-d", type=float, default=1e-4)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--nll-weight", type=float, default=1.0,
                        help="weight of the real frames' NLL (nats per value) in the generator's loss")
    parser.add_argument("--adversarial-weight", type=float, default=1.0,
                        help="weight of the adversarial loss; 0 = the likelihood-only control of the same stage")
    parser.add_argument("--gumbel-temperature", type=float, default=1.0)
    parser.add_argument("--disc-width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: runs/<name>.pt)")
    parser.add_argument("--resume", action="store_true")
    return parser.parse_args(argv)


def save(path, parts):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(parts, tmp)
    tmp.replace(path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.name or f"{Path(args.model).name}-gan"
    generator = load(args.model).train()
    if not isinstance(generator, PixelLSTM) or not generator.scores_values:
        raise SystemExit(f"{args.model} is not an LSTM with the logistic-mixture output: the adversarial stage "
                         f"samples through its mixture (train one with python -m train lstm-games)")
    torch.manual_seed(args.seed)
    dataset = get_dataset(generator.config.dataset)
    images, labels = dataset.load("train", args.data_dir)
    test_data = dataset.load("test", args.data_dir)
    average = copy.deepcopy(generator).eval().requires_grad_(False)
    discriminator = Discriminator(generator.value_shape, args.disc_width, generator.num_classes)
    opt_g = torch.optim.Adam(generator.parameters(), args.lr_g, betas=(0.0, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), args.lr_d, betas=(0.0, 0.999))
    checkpoint = Path(args.checkpoint or f"runs/{name}.pt")
    state = TrainState()
    if args.resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        for module, key in ((generator, "generator"), (average, "average"), (discriminator, "discriminator"),
                            (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(saved[key])
        state = TrainState(**saved["state"])
        torch.set_rng_state(saved["rng"])
        print(f"resumed from {checkpoint} at step {state.step}")
    order = torch.Generator().manual_seed(args.seed)  # the batches of step s: a function of (seed, s)

    def everything():
        """What a resumed run needs."""
        return {"generator": generator.state_dict(), "average": average.state_dict(),
                "discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(), "state": vars(state), "rng": torch.get_rng_state()}
    objective, started, last_save = Likelihood(), time.time() - state.elapsed, time.time()
    print(f"{name}: adversarial fine-tune of {args.model} ({generator.num_parameters:,} parameters) against a "
          f"{sum(p.numel() for p in discriminator.parameters()):,}-parameter discriminator")
    while state.step < args.steps:
        order.manual_seed(args.seed * 1_000_003 + state.step)  # so that a resumed run draws what it would have
        index = torch.randint(0, images.shape[0], (args.batch_size,), generator=order)
        x = generator.codec.encode(images[index])
        y = labels[index] if generator.num_classes else None
        d_loss = adversarial = torch.zeros(())
        if args.adversarial_weight:
            real = scale_levels(x, generator.levels)
            fake = sample_relaxed(generator, y, args.batch_size, args.gumbel_temperature)
            # the discriminator: real frames up, generated ones down (+ the lazy R1 penalty)
            d_loss = F.softplus(discriminator(fake.detach(), y)).mean() + F.softplus(-discriminator(real, y)).mean()
            if state.step % R1_EVERY == 0:
                d_loss = d_loss + R1_GAMMA * R1_EVERY * r1_penalty(discriminator, real, y)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            adversarial = F.softplus(-discriminator(fake, y)).mean()  # the generator's: fool the discriminator
        # ... and keep the real frames likely (a model with a null class also learns p(x) there, as in
        # its first training, so that classifier-free guidance still has its class-free model)
        likelihood = objective.loss(generator, x, training_labels(generator, y, order))
        opt_g.zero_grad(set_to_none=True)
        (args.adversarial_weight * adversarial + args.nll_weight * likelihood).backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 1.0)
        opt_g.step()
        decay = min(args.ema, (1 + state.step) / (10 + state.step))  # warmed up: a short run's average moves too
        with torch.no_grad():
            for a, g in zip(average.parameters(), generator.parameters()):
                a.lerp_(g, 1 - decay)
        state.step += 1
        state.elapsed = time.time() - started
        if state.step % args.log_every == 0:
            bits = objective.to_unit(likelihood.item())
            state.train_curve.append((state.step * args.batch_size / images.shape[0], bits))
            print(f"step {state.step}: D {d_loss.item():.3f} · G adversarial {adversarial.item():.3f} · "
                  f"NLL {bits:.4f} bits/dim · {state.elapsed / state.step:.1f} s/step", flush=True)
        if state.elapsed > args.max_minutes * 60:
            state.stopped_early = True
            print(f"stopping: the {args.max_minutes}-minute budget is spent at step {state.step}")
            break
        if time.time() - last_save > args.checkpoint_minutes * 60:
            save(checkpoint, everything())
            last_save = time.time()
    save(checkpoint, everything())
    state.val_curve = []
    stage = ("adversarial fine-tune" if args.adversarial_weight else "likelihood-only control of the adversarial stage")
    stage += " (EMA weights)"
    info = {"command": "python -m train.adversarial " + shlex.join(argv), "seed": args.seed,
            "epochs": round(state.step * args.batch_size / images.shape[0], 4), "hardware": hardware("cpu"),
            "precision": "float32", "processes": 1, "backend": None, "effective_batch_size": args.batch_size,
            "session_minutes": round(state.elapsed / 60, 2), "stage": stage,
            "init_from": {"model": str(args.model), "train": read_metrics(args.model).get("train", {})}}
    metrics = publish(average, name, args.out, objective, state, info, test_data)
    print(f"{name}: test {metrics['test']} -> {args.out}/{name}")


if __name__ == "__main__":
    main()
