"""Growing a trained model: a PixelCNN made deeper without changing what it predicts
(``python -m train pixelcnn --init-from NAME --add-blocks N``), and a one-scale tokenizer made a
multi-scale one (``python -m train var-tokenizer --init-from bsq-tokenizer``)."""
from dataclasses import replace

import torch

from argen.models import BSQTokenizer, PixelCNN


def deepened(model, extra_blocks):
    """A copy of PixelCNN ``model`` with ``extra_blocks`` more residual blocks after the last, which start as the
    identity: their 1 x 1 mix and their part of the class embedding are zero, so the copy gives
    the same logits and training grows the receptive field from where this model is."""
    if isinstance(extra_blocks, bool) or not isinstance(extra_blocks, int) or extra_blocks < 1:
        raise ValueError(f"extra_blocks must be a positive integer, got {extra_blocks!r}")
    config = replace(model.config, num_blocks=model.config.num_blocks + extra_blocks)
    grown = type(model)(config).to(model.input.weight.device, model.input.weight.dtype)
    state = grown.state_dict()
    for name, value in model.state_dict().items():
        if name == "class_embedding.weight":  # chunks: the input layer's, then each block's in order
            value = torch.cat([value, value.new_zeros(value.shape[0], state[name].shape[1] - value.shape[1])], 1)
        state[name] = value
    for i in range(model.config.num_blocks, config.num_blocks):  # each new block's mix: blocks.i.1
        for name in (f"blocks.{i}.1.weight", f"blocks.{i}.1.bias"):
            state[name] = torch.zeros_like(state[name])
    grown.load_state_dict(state)
    return grown.train(model.training)


GROWERS = {PixelCNN: deepened}  # the families that can grow, and how


def multiscale(tokenizer, scales):
    """A multi-scale BSQ tokenizer over ``scales`` that starts from one-scale ``tokenizer``: its
    encoder and decoder, and its quantizer's projections at every scale (the finest scale then
    quantizes what the coarser ones leave, and fine-tuning teaches each scale its share)."""
    if not isinstance(tokenizer, BSQTokenizer) or tokenizer.config.scales is not None:
        raise ValueError(f"multiscale starts from a one-scale BSQ tokenizer, got {type(tokenizer).__name__} "
                         f"with scales {getattr(tokenizer.config, 'scales', None)}")
    grown = BSQTokenizer(replace(tokenizer.config, scales=scales))
    grown.autoencoder.load_state_dict(tokenizer.autoencoder.state_dict())
    for quantizer in grown.quantizer.quantizers:
        quantizer.load_state_dict(tokenizer.quantizer.state_dict())
    return grown.train(tokenizer.training)
