import pytest
import torch

from argen.models import MODEL_TYPES, PixelMLP

# A tiny configuration of every registered model family (fast on CPU). Every family must have one.
TINY_MODELS = {
    "mlp-v1": lambda: PixelMLP(variant="v1", levels=4, hidden_dim=16, context_length=5, image_shape=(1, 6, 5)),
    "mlp-v2": lambda: PixelMLP(variant="v2", levels=4, hidden_dim=16, context_length=5, image_shape=(1, 6, 5)),
    "mlp-v3": lambda: PixelMLP(variant="v3", levels=4, hidden_dim=16, embed_dim=4, context_length=5,
                               image_shape=(1, 6, 5)),
}


def make_tiny(name):
    torch.manual_seed(0)
    return TINY_MODELS[name]().eval()


@pytest.fixture(params=sorted(TINY_MODELS))
def tiny(request):
    return make_tiny(request.param)


def random_batch(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.levels, (batch, *model.image_shape), generator=g)
    y = torch.randint(0, model.num_classes, (batch,), generator=g) if model.num_classes else None
    return x, y


def labels_kwargs(model, batch):
    """Sampler arguments for a batch: labels for a conditional model, num_images otherwise."""
    if model.num_classes:
        return {"labels": list(range(batch))}
    return {"num_images": batch}


def test_every_family_has_a_tiny_config():
    covered = {factory().model_type for factory in TINY_MODELS.values()}
    assert covered == set(MODEL_TYPES)
