"""The tokenizer's parts: Binary Spherical Quantization and the patch auto-encoder."""
import json
import math

import pytest
import torch

import argen
from argen.models.bsq import BSQ
from argen.models.patch_ae import PatchAutoEncoder
from argen.hub import read_metrics
from argen.classifier import predict
from argen.data import GAME_NAMES, load_games
from conftest import fake_games, fake_mnist, load_fixture
from train.__main__ import main as train_main


@pytest.mark.parametrize("bits", [1, 4, 10])
def test_bsq_round_trip_index_code_index(bits):
    bsq = BSQ(dim=8, bits=bits)
    indices = torch.arange(2 ** bits)
    codes = bsq.indices_to_codes(indices)
    assert codes.shape == (2 ** bits, bits)
    assert torch.allclose(codes.norm(dim=-1), torch.ones(2 ** bits))  # on the unit sphere
    assert torch.equal(bsq.codes_to_indices(codes), indices)
    assert len({tuple(c.tolist()) for c in codes}) == 2 ** bits  # every index its own code


def test_bsq_quantizes_to_the_code_of_its_index():
    torch.manual_seed(0)
    bsq = BSQ(dim=16, bits=6)
    z = torch.randn(3, 5, 16)
    quantized, indices, aux_loss = bsq(z)
    assert quantized.shape == z.shape and indices.shape == (3, 5) and aux_loss.dim() == 0
    assert ((indices >= 0) & (indices < 64)).all()
    assert torch.allclose(quantized, bsq.decode_indices(indices), atol=1e-6)


def test_bsq_passes_gradients_straight_through():
    torch.manual_seed(0)
    bsq = BSQ(dim=4, bits=3, entropy_weight=0)
    z = torch.randn(10, 4, requires_grad=True)
    bsq(z).quantized.sum().backward()
    assert z.grad.abs().sum() > 0


def test_bsq_entropy_loss_prefers_confident_spread_codes():
    bsq = BSQ(dim=2, bits=2, commitment_weight=0, entropy_weight=1.0)
    with torch.no_grad():
        bsq.project_in.weight.copy_(torch.eye(2) * 100)
        bsq.project_in.bias.zero_()
    spread = torch.tensor([[1.0, 1], [1, -1], [-1, 1], [-1, -1]])  # all four codes, far from the boundaries
    collapsed = torch.tensor([[1.0, 1]] * 4)  # one code
    assert bsq(spread).aux_loss < bsq(collapsed).aux_loss
    p = torch.sigmoid(torch.tensor(4.0))  # each bit's confidence: |u_d| sqrt(L) = 1
    per_sample = 2 * -(p * p.log() + (1 - p) * (1 - p).log())
    assert bsq(spread).aux_loss.item() == pytest.approx(per_sample.item() - 2 * math.log(2), abs=1e-4)


def test_codebook_entropy_is_exact_for_correlated_bits():
    """A batch split between codes 0 and 2^L - 1 has balanced bits, so the paper's bound (the sum of
    the mean bits' entropies) says L ln 2; the exact entropy over the codes is ln 2."""
    bsq = BSQ(dim=3, bits=3)
    p = torch.tensor([[1e-6] * 3, [1 - 1e-6] * 3])
    assert bsq.codebook_entropy(p).item() == pytest.approx(math.log(2), abs=1e-3)
    big = BSQ(dim=3, bits=13)
    assert big.codebook_entropy(torch.tensor([[1e-6] * 13, [1 - 1e-6] * 13])).item() == pytest.approx(13 * math.log(2), abs=1e-3)


@pytest.mark.parametrize("bad", [torch.tensor([-1]), torch.tensor([16]), torch.tensor([0.5])])
def test_bsq_rejects_bad_indices(bad):
    with pytest.raises(ValueError, match=r"integers in \[0, 16\)"):
        BSQ(dim=4, bits=4).indices_to_codes(bad)


def test_patch_auto_encoder_shapes_and_locality():
    torch.manual_seed(0)
    ae = PatchAutoEncoder(patch_size=4, hidden_channels=8, latent_dim=6, num_convs=1).eval()
    images = torch.rand(2, 1, 28, 28)
    latents = ae.encode(images)
    assert latents.shape == (2, 6, 7, 7) and ae.grid == (7, 7)
    decoded = ae.decode(latents)
    assert decoded.shape == images.shape and ((decoded >= 0) & (decoded <= 1)).all()
    changed = images.clone()
    changed[:, :, :4, :4] = 1 - changed[:, :, :4, :4]  # the top-left patch
    moved = (ae.encode(changed) - latents).abs().amax((0, 1)) > 0
    assert moved[:2, :2].all() and not moved[3:].any() and not moved[:, 3:].any()  # its 3x3 neighbourhood


def test_patch_size_must_divide_the_image():
    with pytest.raises(ValueError, match="patch_size 5 must divide"):
        PatchAutoEncoder(patch_size=5)


def test_train_command_publishes_a_tokenizer(tmp_path, monkeypatch):
    data = fake_mnist(tmp_path)
    train_main(["tokenizer", "--hidden-channels", "8", "--latent-dim", "8", "--bits", "4", "--epochs", "1",
                "--batch-size", "32", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                "--checkpoint", str(tmp_path / "run.pt")])
    folder = tmp_path / "weights" / "bsq-tokenizer"
    metrics = json.loads((folder / "metrics.json").read_text())
    test = metrics["test"]
    assert test["num_images"] == 64 and test["codebook_size"] == 16 and 1 <= test["codes_used"] <= 16
    assert test["bits_per_image"] == 49 * 4 and test["compression"] == 32.0 and test["psnr_db"] > 0
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path / "weights"))
    assert argen.available() == []  # a tokenizer is not a generator: the app does not list it
    tokenizer = argen.load(folder)
    images = load_fixture()[0][:3]
    tokens = tokenizer.encode(images)
    assert tokens.shape == (3, 7, 7) and tokenizer.decode(tokens).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match=r"tokens must have shape \[B, 7, 7\]"):
        tokenizer.decode(tokens[:, :3])


def test_a_tokenizer_of_game_scenes(tmp_path):
    """The games recipe reads 96 x 128 colour frames: its shape comes with the dataset, and it
    turns a frame into 24 x 32 tokens and back."""
    data = fake_games(tmp_path, train=32, test=16, size=(96, 128))
    train_main(["games-tokenizer", "--hidden-channels", "8", "--latent-dim", "8", "--bits", "4", "--epochs", "1",
                "--batch-size", "16", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                "--checkpoint", str(tmp_path / "run.pt")])
    tokenizer = argen.load(tmp_path / "weights" / "games-tokenizer")
    assert tokenizer.config.dataset == "games-96x128" and tokenizer.image_shape == (3, 96, 128)
    metrics = json.loads((tmp_path / "weights" / "games-tokenizer" / "metrics.json").read_text())
    assert metrics["test"]["num_images"] == 16 and metrics["test"]["bits_per_image"] == 24 * 32 * 4
    frames = load_games("test", data, (96, 128))[0][:2]
    tokens = tokenizer.encode(frames)
    assert tokens.shape == (2, 24, 32) and tokenizer.decode(tokens).shape == (2, 3, 96, 128)
    with pytest.raises(ValueError, match="96, 128"):
        tokenizer.encode(load_fixture("games")[0][:2])  # 32 x 32 frames are not its pictures
    # the prior and MaskGIT over its tokens: the recipes read the same frames through it
    common = ["--dim", "16", "--num-heads", "2", "--num-layers", "1", "--mlp-dim", "32", "--epochs", "1",
              "--batch-size", "16", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
              "--tokenizer", str(tmp_path / "weights" / "games-tokenizer")]
    train_main(["games-gpt", "--no-positions", *common, "--checkpoint", str(tmp_path / "gpt.pt")])
    train_main(["games-maskgit", "--steps", "3", *common, "--checkpoint", str(tmp_path / "maskgit.pt")])
    gpt, maskgit = argen.load(tmp_path / "weights" / "games-gpt"), argen.load(tmp_path / "weights" / "games-maskgit")
    assert gpt.gpt.position_embedding is None and not gpt.config.positions
    for model in (gpt, maskgit):
        assert model.config.dataset == "games-96x128" and model.config.class_names == list(GAME_NAMES)
        assert model.value_shape == (1, 24, 32) and model.codec.picture_shape == (3, 96, 128)
        pictures = model.codec.decode(argen.sample(model, labels=[0, 9], seed=0))
        assert pictures.shape == (2, 3, 96, 128) and pictures.dtype == torch.uint8
        assert predict(argen.load("games-classifier"), pictures)[0].shape == (2,)  # judged at 32 x 32


def test_token_prior_trains_on_a_shipped_tokenizer_and_draws_pictures(tmp_path):
    data, weights = fake_mnist(tmp_path), tmp_path / "weights"
    common = ["--epochs", "1", "--batch-size", "32", "--data-dir", str(data), "--out", str(weights)]
    train_main(["tokenizer", "--hidden-channels", "8", "--latent-dim", "8", "--bits", "4", *common,
                "--checkpoint", str(tmp_path / "tokenizer.pt")])
    train_main(["bsq-gpt", "--tokenizer", str(weights / "bsq-tokenizer"), "--dim", "16", "--num-heads", "2",
                "--num-layers", "1", "--mlp-dim", "32", *common, "--checkpoint", str(tmp_path / "gpt.pt")])
    model = argen.load(weights / "bsq-gpt")
    tokenizer = argen.load(weights / "bsq-tokenizer")
    assert torch.equal(model.codec.tokenizer.quantizer.project_out.weight, tokenizer.quantizer.project_out.weight)
    assert model.levels == 16 and model.value_shape == (1, 7, 7) and model.codec.units == "tokens"
    assert model.codec.pixels_per_value == 16 and model.codec.picture_shape == (1, 28, 28)
    metrics = json.loads((weights / "bsq-gpt" / "metrics.json").read_text())
    assert metrics["test"]["bits_per_dim_8bit"] is None  # tokens are not pixels
    frames = list(argen.sample_stream(model, labels=[3, 5], seed=0, every=10))
    drawn = ~frames[0].prob.isnan()  # the first 10 tokens
    pictures = model.codec.decode(frames[0].image, drawn)
    assert pictures.shape == (2, 1, 28, 28) and pictures.dtype == torch.uint8
    assert (pictures[:, :, 12:] == 0).all()  # patches not drawn yet are blank
    images = load_fixture()[0][:2]
    assert torch.equal(model.codec.encode(images), tokenizer.encode(images)[:, None])


def test_shipped_tokenizer_is_faithful():
    recorded = read_metrics("bsq-tokenizer")
    assert recorded["test"]["psnr_db"] >= 20 and recorded["test"]["codes_used"] > 1024 // 2
    assert read_metrics("bsq-gpt")["tokenizer"] == pytest.approx(recorded["test"])


def test_entropy_loss_is_finite_under_bf16_autocast():
    """A confident bit in bfloat16 (p rounds to 1) has entropy 0, not 0 * log 0."""
    from argen.models.bsq import binary_entropy

    assert torch.equal(binary_entropy(torch.tensor([1.0, 0.0], dtype=torch.bfloat16)).isfinite(), torch.tensor([True, True]))
    quantizer = BSQ(8, bits=4, entropy_weight=0.1)
    with torch.autocast("cpu", torch.bfloat16):
        loss = quantizer(torch.randn(16, 8) * 100).aux_loss
    assert loss.isfinite()


def test_multiscale_bsq_decodes_its_own_tokens():
    """The pyramid's latents, rebuilt from its tokens, are the quantizer's own sum; each scale's
    contribution is its own, and the first scale is one token."""
    from argen.models.multiscale_bsq import MultiScaleBSQ

    torch.manual_seed(0)
    quantizer = MultiScaleBSQ(dim=8, grid=(4, 6), scales=[(1, 1), (2, 3), (4, 6)], bits=5)
    f_hat, tokens, _ = quantizer(torch.randn(2, 4, 6, 8))
    assert tokens.shape == (2, 1 + 6 + 24) and quantizer.num_tokens == 31
    assert torch.allclose(quantizer.decode_indices(tokens), f_hat, atol=1e-5)
    first = torch.zeros_like(tokens, dtype=torch.bool)
    first[:, 0] = True
    coarse = quantizer.decode_indices(tokens, first)  # the 1 x 1 scale alone: one latent everywhere
    assert torch.allclose(coarse, coarse[:, :1, :1].expand_as(coarse), atol=1e-5)
    assert quantizer.scale_inputs(tokens).shape == (2, 30, 8)
    assert quantizer.token_scale().tolist() == [0] + [1] * 6 + [2] * 24


@pytest.mark.parametrize("scales", [[(1, 1)], [(2, 2), (4, 6)], [(1, 1), (4, 6), (2, 3)], [(1, 1), (3, 3)]])
def test_multiscale_bsq_rejects_bad_scales(scales):
    from argen.models.multiscale_bsq import MultiScaleBSQ

    with pytest.raises(ValueError, match=r"scales must grow from \(1, 1\) to the token grid \(4, 6\)"):
        MultiScaleBSQ(dim=8, grid=(4, 6), scales=scales)


def test_pyramid_codec_draws_coarse_to_fine_and_lays_values_on_the_grid():
    """decode with every scale drawn is the tokenizer's picture; fewer scales give another picture;
    a map keeps each cell's finest drawn value, a shared map sums to the values' sum, and a
    completion keeps whole coarse scales."""
    from conftest import TINY_PYRAMID
    from argen.models import Pyramid

    torch.manual_seed(0)
    codec = Pyramid(TINY_PYRAMID)
    pictures = torch.randint(0, 256, (2, 1, 16, 12), dtype=torch.uint8)
    values = codec.encode(pictures)
    assert values.shape == (2, 1, 1, 17) and codec.grid_shape == (1, 4, 3) and codec.cell == 4
    whole = (codec.tokenizer.decode(values[:, 0, 0]) * 255).round().to(torch.uint8)
    assert torch.equal(codec.decode(values), whole)
    first = torch.zeros_like(values, dtype=torch.bool)
    first[..., 0] = True
    assert not torch.equal(codec.decode(values, first), whole)
    prob = torch.full(values.shape, float("nan"))
    prob[..., :5] = 0.5  # the 1 x 1 and 2 x 2 scales drawn
    prob[..., 0] = 0.1
    assert torch.equal(codec.to_grid(prob), torch.full((2, 1, 4, 3), 0.5))
    bits = torch.rand(values.shape)
    assert torch.allclose(codec.to_grid(bits, "share").sum((1, 2, 3)), bits.sum((1, 2, 3)))
    assert [codec.kept_values(rows) for rows in (0, 3, 4, 8, 15, 16)] == [0, 0, 1, 5, 5, 17]
    assert codec.kept_words(8) == "the 2 coarsest of 3 scales (up to 2 × 2 tokens), for 8 of 16 rows"
    assert codec.grid_position((0, 1, 2)) == (0, 0, 5 + 1 * 3 + 2)
    with pytest.raises(ValueError, match="rows to keep must be an integer in 0..16, got 17"):
        codec.kept_values(17)
    with pytest.raises(ValueError, match="a pyramid codec needs a tokenizer with scales"):
        Pyramid({k: v for k, v in TINY_PYRAMID.items() if k != "scales"})


def test_a_one_scale_tokenizer_grows_into_a_pyramid():
    """train.grow.multiscale keeps the encoder and decoder and starts every scale's quantizer at the one-scale quantizer."""
    from conftest import TINY_TOKENIZER
    from train.grow import multiscale

    torch.manual_seed(0)
    one = argen.models.BSQTokenizer(**TINY_TOKENIZER)
    grown = multiscale(one, [[1, 1], [2, 2], [4, 3]])
    assert grown.token_shape == (17,) and grown.bits_per_image == 17 * 3
    assert torch.equal(grown.autoencoder.encoder[0].weight, one.autoencoder.encoder[0].weight)
    for quantizer in grown.quantizer.quantizers:
        assert torch.equal(quantizer.project_out.weight, one.quantizer.project_out.weight)
    with pytest.raises(ValueError, match="multiscale starts from a one-scale BSQ tokenizer"):
        multiscale(grown, [[1, 1], [4, 3]])
