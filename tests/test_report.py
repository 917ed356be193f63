"""The report card: the evaluation classifier, the Fréchet distance and the report command."""
import pytest
import torch

from argen.classifier import frechet_distance, load_classifier, predict
from argen.evaluate import load_fixture, main, markdown_table
from argen.hub import available, read_metrics


def test_classifier_is_accurate_and_reproduces_its_metrics():
    images, labels = load_fixture()
    accuracy = (predict(load_classifier(), images)[0] == labels).float().mean().item()
    assert accuracy == pytest.approx(read_metrics("mnist-classifier")["fixture"]["accuracy"], abs=1e-4)
    assert read_metrics("mnist-classifier")["test"]["accuracy"] >= 0.99


def test_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 8, generator=g)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + torch.tensor([3.0] + [0.0] * 7)
    assert frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-4)
    assert frechet_distance(a, 2 * a) == pytest.approx(a.var(0).sum().item(), rel=1e-3)  # (2σ - σ)² per dim


def test_quick_report_runs_offline(capsys):
    main(["mlp-v3", "--all", "--quick"])
    out = capsys.readouterr().out
    assert "mlp-v3" in out and "FID floor" in out


def test_readme_table_lists_every_shipped_model():
    table = markdown_table(available())
    for name in available():
        assert f"`{name}`" in table
