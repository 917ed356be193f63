"""What the one loop optimises and watches, per kind of module: ``batch`` turns uint8 images and
labels into the module's inputs, ``loss`` is minimised, ``held_out`` is watched after every epoch
(in ``unit``). Final test figures are not the loop's business: publishing measures them."""
import math

import torch
import torch.nn.functional as F

from argen.likelihood import bits_per_dim, dataset_nll, nll
from argen.models.maskgit import cosine_mask, masked_token_bits, masked_token_loss
from argen.models.bsq_tokenizer import tokenizer_metrics


def training_labels(model, labels, generator):
    """The labels a generative model learns from: none when it is unconditional; with a null class,
    a ``class_dropout`` fraction of them (drawn with the loop's generator) hidden behind it, so that
    one network learns p(x | class) and p(x) for classifier-free guidance."""
    if not model.num_classes:
        return None
    if model.null_class is None:
        return labels
    hidden = torch.rand(labels.shape, generator=generator) < model.config.class_dropout
    return labels.masked_fill(hidden.to(labels.device), model.null_class)


class Likelihood:
    """Maximum likelihood for a generative model: loss in nats per value, watched in bits/dim."""

    unit = "bits/dim"

    def batch(self, model, images, labels, generator):
        return model.codec.encode_for_training(images, generator), training_labels(model, labels, generator)

    def loss(self, model, x, y):
        return nll(model, x, y).mean() / model.num_values

    def to_unit(self, loss):
        return loss / math.log(2)

    def held_out(self, model, images, labels):
        nats = dataset_nll(model, model.codec.encode(images), labels if model.num_classes else None, desc="held-out")
        return bits_per_dim(nats, model.num_values)


class MaskedTokens:
    """MaskGIT's objective: the cross-entropy of the tokens hidden by a cosine-schedule mask,
    watched in bits per masked token at seeded masks."""

    unit = "bits/masked token"

    def batch(self, model, images, labels, generator):
        return model.codec.encode_for_training(images, generator), training_labels(model, labels, generator)

    def loss(self, model, x, y):
        return masked_token_loss(model, x, y, cosine_mask((x.shape[0], model.num_values), device=x.device))

    def to_unit(self, loss):
        return loss / math.log(2)

    def held_out(self, model, images, labels):
        return masked_token_bits(model, model.codec.encode(images), labels if model.num_classes else None)


class Classification:
    """Cross-entropy for the evaluation classifier, with random shifts of up to 2 pixels."""

    unit = "error %"
    shift = 2

    def batch(self, model, images, labels, generator):
        s, (h, w) = self.shift, images.shape[2:]
        padded = F.pad(images, (s, s, s, s))
        dy, dx = torch.randint(0, 2 * s + 1, (2,), generator=generator).tolist()
        return padded[:, :, dy:dy + h, dx:dx + w], labels

    def loss(self, model, x, y):
        return F.cross_entropy(model(x), y)

    def to_unit(self, loss):
        return loss

    def held_out(self, model, images, labels):
        from argen.classifier import predict

        return 100 * (predict(model, images)[0] != labels).float().mean().item()


class Reconstruction:
    """The tokenizer: mean squared reconstruction error of images in [0, 1] plus BSQ's commitment
    and entropy losses; watched as PSNR. With ``foreground_weight`` w and each class's
    ``background`` (uint8 ``[G, C, H, W]``, :func:`argen.fidelity.backgrounds`), the error of a
    pixel that differs from its game's background (a sprite: a paddle, a ball, an alien) counts
    1 + w times: a handful of sprite pixels would otherwise weigh nothing against the scenery."""

    unit = "PSNR dB"

    def __init__(self, foreground_weight=0.0, background=None):
        if foreground_weight and background is None:
            raise ValueError("a foreground weight needs each class's background")
        self.foreground_weight, self.background = foreground_weight, background

    def batch(self, model, images, labels, generator):
        if not self.foreground_weight:
            return images.float() / 255, None
        from argen.fidelity import foreground

        sprites = foreground(images.cpu(), labels.cpu(), self.background).to(images.device)  # (b, h, w)
        return images.float() / 255, 1 + self.foreground_weight * sprites[:, None].float()

    def loss(self, model, x, y):
        reconstructions, _, aux_loss = model(x)
        if y is None:
            return F.mse_loss(reconstructions, x) + aux_loss
        return (y * (reconstructions - x).pow(2)).mean() / y.mean() + aux_loss

    def to_unit(self, loss):
        return loss

    def held_out(self, model, images, labels):
        return tokenizer_metrics(model, images)["psnr_db"]
