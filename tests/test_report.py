"""The report card: the evaluation classifier, the Fréchet distance, the report command and the README table."""
import pytest
import torch

import argen
from argen.classifier import frechet_distance, predict, shrink_to
from argen.evaluate import main
from argen.hub import available, read_metrics
from conftest import fake_mnist, load_fixture
from train.readme import TABLE_END, TABLE_START, headline_table, markdown_table, update_readme


def test_classifier_is_accurate():
    images, labels = load_fixture()
    accuracy = (predict(argen.load("mnist-classifier"), images)[0] == labels).float().mean().item()
    assert accuracy >= 0.98 and read_metrics("mnist-classifier")["test"]["accuracy"] >= 0.99


def test_the_games_classifier_judges_large_frames_shrunk_by_whole_factors():
    """96 x 128 frames are read as blocks of 3 x 4 pixels averaged: the same 32 x 32 screens (to
    about a grey level), recognised alike; a shape that is no whole multiple is refused by name."""
    classifier = argen.load("games-classifier")
    large, labels = load_fixture("games-96x128")
    small = load_fixture("games")[0][:100]
    shrunk = shrink_to(large, classifier.image_shape, "games")
    assert shrunk.dtype == torch.uint8 and shrunk.shape == small.shape
    assert (shrunk.float() - small.float()).abs().mean() < 2
    assert (predict(classifier, large)[0] == labels).float().mean() >= 0.99
    assert torch.equal(predict(classifier, large)[1], predict(classifier, shrunk)[1])
    with pytest.raises(ValueError, match=r"whole multiples .* got \(3, 40, 40\)"):
        classifier(large[:1, :, :40, :40])
    with pytest.raises(ValueError, match=r"got \(1, 64, 64\)"):
        classifier(large[:1, :1, :64, :64])


def test_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 8, generator=g)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + torch.tensor([3.0] + [0.0] * 7)
    assert frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-4)
    assert frechet_distance(a, 2 * a) == pytest.approx(a.var(0).sum().item(), rel=1e-3)  # (2σ - σ)² per dim


def test_quick_report_runs_offline(tmp_path, capsys):
    """Likelihood, samples and speed of an unconditional model (the quality-only report below
    covers a guided one)."""
    main(["mlp-v1", "--all", "--quick", "--data-dir", str(fake_mnist(tmp_path, train=100, test=100))])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mlp-v1"))
    assert "FID floor" in out and len(row.split()) == 9 and row.split()[1] == "16" and row.split()[6] == "—"


def test_quality_only_report_keeps_the_recorded_likelihood(tmp_path, capsys, monkeypatch):
    import argen.evaluate as evaluate

    monkeypatch.setattr(evaluate, "final_metrics", lambda *args: pytest.fail("the test set was scored again"))
    main(["mlp-v3", "--quality", "--quick", "--data-dir", str(fake_mnist(tmp_path, train=100, test=100))])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mlp-v3")).split()
    assert "FID floor" in out and row[4] == f"{read_metrics('mlp-v3')['test']['bits_per_dim']:.4f}"
    assert row[6].endswith("%") and row[8] == f"{read_metrics('mlp-v3')['speed']['seconds_per_image']:.2f}"  # kept
    scale, top_k = read_metrics("mlp-v3")["guidance"]["recommended"], read_metrics("mlp-v3")["top_k"]["recommended"]
    assert f"samples of mlp-v3 at guidance {scale:g}, top-k {top_k}, its recommended settings" in out  # the defaults


def test_the_fid_floor_takes_a_seeded_class_balanced_random_subset():
    """Not the last training images (consecutive frames of a game's episodes): as many of each
    class as the samples hold, at random, the same every time."""
    from argen.evaluate import floor_images

    labels = torch.arange(10).repeat_interleave(50)  # sorted by class, like episodes
    chosen = floor_images(labels, 100)
    assert torch.equal(chosen, floor_images(labels, 100)) and len(set(chosen.tolist())) == 100
    assert torch.equal(torch.bincount(labels[chosen], minlength=10), torch.full((10,), 10))
    assert not torch.equal(chosen.sort().values, torch.arange(400, 500))
    assert len(floor_images(labels, 55)) == 55  # an uneven count: a plain random subset


def test_floors_only_report_keeps_the_samples_figures(tmp_path, capsys):
    main(["mlp-v3", "mnist-classifier", "--floors", "--quick", "--data-dir", str(fake_mnist(tmp_path, train=900, test=100))])
    out = capsys.readouterr().out
    assert f"mlp-v3: FID {read_metrics('mlp-v3')['quality']['fid']}, floor" in out
    assert "mnist-classifier: no recorded sample quality" in out


def test_null_gap_report(tmp_path, capsys):
    """How far a guided model's null class is behind the images' own class, on the first test
    images: the own-class figure is the fixture likelihood its metrics.json records."""
    from argen.evaluate import null_gap

    images, labels = load_fixture()
    gap = null_gap(argen.load("mlp-v3"), images[:100], labels[:100])
    assert gap["own_class"] == pytest.approx(read_metrics("mlp-v3")["fixture"]["nats_per_image"], abs=0.01)
    assert 0 < gap["gap"] < 50 and gap["bound"] == 2.3 and gap["null_class"] == pytest.approx(gap["own_class"] + gap["gap"])
    main(["mlp-v3", "mlp-v1", "--null-gap", "--data-dir", str(fake_mnist(tmp_path, train=100, test=100))])
    out = capsys.readouterr().out
    assert "mlp-v3: nats per image with the own class" in out and "mlp-v1: no null class with a likelihood" in out


def test_speed_only_report(capsys):
    main(["mlp-v1", "mnist-classifier", "--speed", "--quick"])
    out = capsys.readouterr().out
    assert "mnist-classifier: draws nothing" in out and "'seconds_per_image'" in out.split("mlp-v1: ")[1]


def test_speed_is_timed_at_a_recommended_top_k_without_guidance_too(monkeypatch):
    """A model that recommends a top-k at guidance 1 gets its defaults timed (the timings replaced
    here by a fixed figure: only what is timed is checked)."""
    import argen.evaluate as evaluate

    calls = []
    monkeypatch.setattr("argen.benchmark.time_stream", lambda *args, **kwargs: calls.append(kwargs) or (0.0, 0.5))
    model = argen.load("mlp-v1")
    speed = evaluate.speed_metrics(model, 1.0, 8)
    assert (speed["guidance"], speed["top_k"], speed["guided_seconds_per_image"]) == (1.0, 8, 0.5)
    assert calls[-1] == {"guidance": 1.0, "repeats": evaluate.SPEED_REPEATS, "top_k": 8}
    assert "guided_seconds_per_image" not in evaluate.speed_metrics(model, 1.0, None)  # plain sampling: timed once


def test_readme_table_lists_every_shipped_model(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    for page in readme, results:
        page.write_text(f"# front\n{TABLE_START}\nold\n{TABLE_END}\nafter\n")
    update_readme(available(), readme, results)
    summary, text = readme.read_text(), results.read_text()
    assert "old" not in text and text.endswith("after\n") and "old" not in summary and summary.endswith("after\n")
    for name in available():  # one row each on the front page, its likelihood in its own unit
        row = next(line for line in summary.splitlines() if line.startswith(f"| `{name}`"))
        test = read_metrics(name)["test"]
        assert (f"{test['bits_per_dim_8bit']:.3f} bits/dim" if test.get("bits_per_dim_8bit") is not None
                else "nats (binarized)" if read_metrics(name)["data"]["levels"] == 2
                else "bits/token" if "bits_per_dim" in test else "none: MaskGIT") in row
    for name in available():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        test = read_metrics(name)["test"]
        assert (f"{test['nats_per_image']:.2f}" if "nats_per_image" in test
                else f"{test['masked_bits_per_token']:.3f} bits per masked token: not a likelihood") in row
    assert markdown_table(available()) in open("docs/results.md").read()  # the pages are up to date
    assert headline_table(available()) in open("README.md").read()


def test_a_guidance_curve_gains_points_without_measuring_the_recorded_ones(monkeypatch):
    """``--guidance 1.5`` on a model with a recorded curve (same samples, same seed) measures 1.5
    alone, and recommends from the whole curve: the most accurate scale with FID no worse than 1's."""
    from types import SimpleNamespace

    import argen.evaluate as evaluate

    measured = []

    def fake_quality(model, classifier, reference, per_class, seed, guidance=None, schedule=None, top_k=None):
        measured.append(guidance)
        return {"accuracy": 0.8, "fid": 30.0}, None

    monkeypatch.setattr(evaluate, "quality_metrics", fake_quality)
    model = SimpleNamespace(config=SimpleNamespace(class_names=list("0123456789")))
    known = [{"scale": 1.0, "accuracy": 0.6, "fid": 40.0}, {"scale": 2.0, "accuracy": 0.9, "fid": 50.0}]
    curve = evaluate.guidance_curve(model, None, None, 5, 0, [1.5, 2], known=known)
    assert measured == [1.5]
    assert [point["scale"] for point in curve["curve"]] == [1.0, 1.5, 2.0] and curve["recommended"] == 1.5


def test_the_recommended_point_breaks_accuracy_ties_on_fid():
    """The most accurate point with FID no worse than the baseline's; of equally accurate points
    the lowest FID (pixelcnnpp-games: 100% from all values, at top-k 128 and at 32, FID 992, 720
    and 387 -> 32); where FIDs tie too, the earliest in the curve (the smaller scale, the larger k)."""
    import argen.evaluate as evaluate

    games = [{"top_k": None, "accuracy": 1.0, "fid": 992.061}, {"top_k": 128, "accuracy": 1.0, "fid": 719.757},
             {"top_k": 32, "accuracy": 1.0, "fid": 386.968}]
    assert evaluate.best_point(games, games[0])["top_k"] == 32
    curve = [{"scale": 1.0, "accuracy": 0.6, "fid": 40.0}, {"scale": 1.5, "accuracy": 0.9, "fid": 38.0},
             {"scale": 2.0, "accuracy": 0.9, "fid": 38.0}, {"scale": 3.0, "accuracy": 0.95, "fid": 41.0}]
    assert evaluate.best_point(curve, curve[0])["scale"] == 1.5  # 3 is more accurate, but its FID is worse than 1's
    assert evaluate.best_point(curve[:1], curve[0])["scale"] == 1.0


def test_recorded_points_come_from_a_curve_and_from_the_quality_of_the_same_samples(monkeypatch):
    """A curve of 200 samples, seed 0, reuses the recorded curve of those samples and the recorded
    unguided quality when it judged the same 200 samples (not one of 1,000, nor of another seed)."""
    import argen.evaluate as evaluate

    quality = {"samples": 200, "seed": 0, "temperature": 1.0, "guidance": 1.0, "accuracy": 0.85, "fid": 72.0}
    curve = {"samples": 200, "seed": 0, "curve": [{"scale": 2.0, "accuracy": 0.9, "fid": 80.0}]}
    metrics = {"quality": quality, "guidance": curve}
    monkeypatch.setattr(evaluate, "read_metrics", lambda name: metrics)
    assert evaluate.measured_points("m", 200, 0) == [curve["curve"][0], {"scale": 1.0, "accuracy": 0.85, "fid": 72.0}]
    assert evaluate.measured_points("m", 1000, 0) == []
    assert evaluate.measured_points("m", 200, 1) == []
    metrics["guidance"] = {"samples": 200, "seed": 0, "curve": [{"scale": 1.0, "accuracy": 0.8, "fid": 70.0}]}
    assert evaluate.measured_points("m", 200, 0) == metrics["guidance"]["curve"]  # the curve's own point is kept


def test_a_curve_with_quality_records_its_samples_at_the_recommended_scale(tmp_path, monkeypatch):
    """``--guidance 2 --quality``: the curve's own samples at the recommended scale become the
    model's sample quality (and grid), without drawing them again; already recorded, they are kept."""
    import shutil

    import argen.evaluate as evaluate

    shutil.copytree(argen.hub.model_dir("mlp-v3"), tmp_path / "mlp-v3")
    (tmp_path / "mlp-v3" / "samples.png").unlink()
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    drawn = []

    def fake_quality(model, classifier, reference, per_class, seed, guidance=None, schedule=None, top_k=None):
        drawn.append(guidance)
        accuracy = {1.0: 0.5, 2.0: 0.9, 3.0: 0.8}[guidance]
        return ({"samples": 10 * per_class, "seed": seed, "temperature": 1.0, "guidance": guidance, "accuracy": accuracy,
                 "fid": 100.0 - 10 * guidance},
                torch.zeros(10 * per_class, 1, 28, 28, dtype=torch.long))

    monkeypatch.setattr(evaluate, "quality_metrics", fake_quality)
    monkeypatch.setattr(evaluate.TestSets, "reference", lambda self, dataset, count: (None, {"fid_floor": 1.0}))
    evaluate.main(["mlp-v3", "--guidance", "2", "--quality", "--per-class", "2"])
    metrics = read_metrics(tmp_path / "mlp-v3")
    assert drawn == [1.0, 2.0] and metrics["guidance"]["recommended"] == 2.0
    assert metrics["quality"]["guidance"] == 2.0 and metrics["quality"]["accuracy"] == 0.9
    assert (tmp_path / "mlp-v3" / "samples.png").exists()

    # a later point that does not change the recommendation: the recorded quality stays, not drawn again
    drawn.clear()
    evaluate.main(["mlp-v3", "--guidance", "3", "--quality", "--per-class", "2"])
    again = read_metrics(tmp_path / "mlp-v3")
    assert drawn == [3.0] and again["quality"] == metrics["quality"] and len(again["guidance"]["curve"]) == 3


def test_a_top_k_curve_records_the_most_accurate_k_no_worse_in_fid(tmp_path, monkeypatch, capsys):
    """``--top-k 12 8 4 --quality``: the samples at the model's guidance from all values and from
    each k; the recommended k is the most accurate whose FID is no worse than all values', and
    its samples become the model's sample quality, with the k in the table. A later guidance
    curve that moves the recommended scale drops the top-k record measured at the old one."""
    import shutil

    import argen.evaluate as evaluate

    shutil.copytree(argen.hub.model_dir("mlp-v3"), tmp_path / "mlp-v3")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    scale = argen.hub.recommended_guidance("mlp-v3")
    drawn = []
    judged = {None: (0.80, 100.0), 12: (0.85, 90.0), 8: (0.90, 120.0), 4: (0.84, 95.0)}  # k = 8: more accurate, worse FID

    def fake_quality(model, classifier, reference, per_class, seed, guidance=None, schedule=None, top_k=None):
        drawn.append((guidance, top_k))
        accuracy, fid = judged[top_k] if guidance == scale else ({3.0: 0.99}.get(guidance, 0.5), 50.0)
        return ({"samples": 10 * per_class, "seed": seed, "temperature": 1.0, "guidance": guidance, "top_k": top_k,
                 "accuracy": accuracy, "fid": fid, "fid_floor": 1.0}, torch.zeros(10 * per_class, 1, 28, 28, dtype=torch.long))

    monkeypatch.setattr(evaluate, "quality_metrics", fake_quality)
    monkeypatch.setattr(evaluate.TestSets, "reference", lambda self, dataset, count: (None, {"fid_floor": 1.0}))
    # the same samples' quality from all values, recorded: kept, not drawn again
    recorded = {"samples": 20, "seed": 0, "temperature": 1.0, "guidance": scale, "top_k": None, "accuracy": 0.80,
                "fid": 100.0, "fid_floor": 1.0}
    argen.hub.write_report(tmp_path / "mlp-v3", {**read_metrics(tmp_path / "mlp-v3"), "quality": recorded})
    evaluate.main(["mlp-v3", "--top-k", "12", "8", "4", "99", "--quality", "--per-class", "2"])
    metrics = read_metrics(tmp_path / "mlp-v3")
    assert drawn == [(scale, 12), (scale, 8), (scale, 4)]  # k >= K (99) is all values: skipped
    assert metrics["top_k"]["curve"][0] == {"top_k": None, "accuracy": 0.80, "fid": 100.0}
    assert metrics["top_k"]["recommended"] == 12 and metrics["top_k"]["guidance"] == scale
    assert argen.hub.recommended_top_k(tmp_path / "mlp-v3") == 12
    assert metrics["quality"]["top_k"] == 12 and metrics["quality"]["accuracy"] == 0.85
    assert f"at guidance {scale:g}, top-k 12 |" in markdown_table(["mlp-v3"])

    drawn.clear()  # a guidance curve whose best scale is now 3: the top-k record was at the old scale
    evaluate.main(["mlp-v3", "--guidance", "3", "--per-class", "2"])
    metrics = read_metrics(tmp_path / "mlp-v3")
    assert metrics["guidance"]["recommended"] == 3.0 and "top_k" not in metrics
    assert argen.hub.recommended_top_k(tmp_path / "mlp-v3") is None and "measure it again (--top-k)" in capsys.readouterr().out
