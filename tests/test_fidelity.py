"""The yardstick of game frames that sees objects: each measure is shown to fail on samples that
are bad in the way it looks for (no objects, speckle, copies), and to pass real frames."""
import pytest
import torch

from argen import fidelity
from argen.data import GAME_NAMES
from conftest import load_fixture

GAMES = 10


@pytest.fixture(scope="module")
def frames():
    images, labels = load_fixture("games")  # ten frames of each game, 32 x 32
    return images, labels, fidelity.backgrounds(images, labels, GAMES)


def background_frames(background, labels):
    """What a model that draws only the scenery draws: each frame its game's background."""
    return background[labels]


def test_blobs_are_counted_with_eight_neighbours():
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, 1:3, 1:3] = masks[0, 5:7, 5:7] = True  # two squares apart
    masks[1, 2, 2] = masks[1, 3, 3] = True  # touching at a corner: one blob
    assert fidelity.blob_counts(masks).tolist() == [2, 1, 0]


def test_object_statistics_see_the_objects_the_scenery_lacks(frames):
    images, labels, background = frames
    real = fidelity.object_statistics(images, labels, background, GAMES)
    scenery = fidelity.object_statistics(background_frames(background, labels), labels, background, GAMES)
    assert all(s["blobs"] == 0 and s["foreground"] == 0 for s in scenery)
    invaders = GAME_NAMES.index("Space Invaders")
    assert real[invaders]["blobs"] > 10  # the rows of aliens
    assert fidelity.blob_error(real, real) == 0 and fidelity.blob_error(scenery, real) == 1


def test_precision_and_recall_pass_real_frames_and_fail_scenery_alone(frames):
    images, labels, background = frames
    assert fidelity.precision_recall(images, labels, images, labels, background, GAMES) == (1.0, 1.0, 1.0)
    precision, recall, coverage = fidelity.precision_recall(background_frames(background, labels), labels, images,
                                                            labels, background, GAMES)
    assert recall < 0.2  # nothing of the real frames' variety is covered
    generator = torch.Generator().manual_seed(0)
    speckled = (images.float() + 90 * torch.randn(images.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
    precision, recall, coverage = fidelity.precision_recall(speckled, labels, images, labels, background, GAMES)
    assert precision < 0.2 and coverage < 0.2  # far from every real frame (recall: their large balls hold them)
    with pytest.raises(ValueError, match="more than 3 frames of each game"):
        fidelity.precision_recall(images[:30], labels[:30], images, labels, background, GAMES)


def test_the_critic_sees_missing_objects_and_speckle_but_not_real_from_real(frames):
    images, labels, background = frames
    erased = torch.where(fidelity.foreground(images, labels, background)[:, None], background[labels], images)
    accuracy, spread = fidelity.c2st(erased, labels, images, labels, background, splits=2)
    assert accuracy >= 0.85 and spread >= 0  # the same frames with their moving objects painted over
    generator = torch.Generator().manual_seed(0)
    speckled = (images.float() + 40 * torch.randn(images.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
    assert fidelity.c2st(speckled, labels, images, labels, background, splits=1)[0] >= 0.85
    same, _ = fidelity.c2st(images, labels, images.clone(), labels, background, splits=1)
    assert same <= 0.7


def test_memorisation_finds_copies_of_training_frames(frames):
    images, labels, _ = frames
    half = torch.arange(len(images)) < len(images) // 2  # the games take turns: five frames of each
    train, train_labels = images[half], labels[half]  # stand for the training set
    test, test_labels = images[~half], labels[~half]
    copies = fidelity.memorisation(train, train_labels, test, test_labels, train, train_labels, GAMES)
    assert copies["ratio"] == 0 and copies["copies"] == 1
    fresh = fidelity.memorisation(test, test_labels, test, test_labels, train, train_labels, GAMES)
    assert fresh["ratio"] == 1 and fresh["copies"] <= 0.05  # a few real frames repeat one of the others


def test_large_frames_are_measured_at_32_by_32(frames):
    images, labels, background = frames
    large = images.repeat_interleave(3, 2).repeat_interleave(4, 3)  # 96 x 128
    assert torch.equal(fidelity.shrink(large), images)
    assert fidelity.object_statistics(large, labels, background, GAMES) == \
        fidelity.object_statistics(images, labels, background, GAMES)


def test_backgrounds_and_foreground_at_the_frames_own_size(frames):
    """A tokenizer's training weighs sprites at 96 x 128: the background at full size marks the same
    pixels as at 32 x 32, each spread over the block it came from."""
    images, labels, background = frames
    large = images.repeat_interleave(3, 2).repeat_interleave(4, 3)  # 96 x 128
    full = fidelity.backgrounds(large, labels, GAMES, full_size=True)
    assert full.shape == (GAMES, 3, 96, 128) and torch.equal(fidelity.shrink(full), background)
    marks = fidelity.foreground(large, labels, full)
    assert marks.shape == (len(large), 96, 128)
    assert torch.equal(marks, fidelity.foreground(images, labels, background).repeat_interleave(3, 1)
                       .repeat_interleave(4, 2))
