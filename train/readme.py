"""``python -m train.readme``: copy the shipped models' metrics.json figures into README.md's
summary table and docs/results.md's full tables (between their markers), and redraw
``weights/report.png`` from them. The library measures; this repo tool writes the pages."""
from pathlib import Path

from argen.data import get_dataset
from argen.evaluate import fmt
from argen.hub import available, model_dir, read_metrics, weights_dir

ROOT = Path(__file__).resolve().parent.parent
README, RESULTS = ROOT / "README.md", ROOT / "docs" / "results.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def markdown_table(names):
    """The results tables of the front page, one per dataset, from each model's metrics.json."""
    from argen.configs import read_config

    by_dataset = {}
    for name in names:
        by_dataset.setdefault(read_config(model_dir(name)).get("dataset", "mnist"), []).append(name)
    tables = [f"**{dataset}** — {get_dataset(dataset).about}\n\n" + dataset_table(group)
              for dataset, group in by_dataset.items()]
    measured = [name for name in names if "fidelity" in read_metrics(name)]
    if measured:
        tables.append(fidelity_table(measured))
    return "\n\n".join(tables)


def headline_table(names):
    """The front page's one table: a row per model with its likelihood in the unit its data is
    measured in, how its samples read, and its speed (the full tables: :func:`markdown_table`)."""
    from argen.configs import read_config

    rows = ["| model | data | test likelihood | samples | s/image |", "|---|---|---|---|---|"]
    for name in names:
        m = read_metrics(name)
        t, q, s, f = m.get("test", {}), m.get("quality", {}), m.get("speed", {}), m.get("fidelity")
        if not t:
            continue
        if t.get("bits_per_dim_8bit") is not None:
            likelihood = f"{t['bits_per_dim_8bit']:.3f} bits/dim"
        elif m["data"]["levels"] == 2:
            likelihood = f"{t['nats_per_image']:.2f} nats (binarized)"
        elif "bits_per_dim" in t:
            likelihood = f"{t['bits_per_dim']:.3f} bits/token"
        else:
            likelihood = "— (none: MaskGIT)"
        if f:
            samples = f"C2ST {f['c2st']:.2f}, recall {f['recall']:.2f}"
        else:
            samples = "—" if q.get("accuracy") is None else f"{q['accuracy']:.1%} read as asked"
        rows.append(f"| `{name}` | {read_config(model_dir(name)).get('dataset', 'mnist')} | {likelihood} | {samples} "
                    f"| {fmt(s.get('seconds_per_image'), '.2f')} |")
    return "\n".join(rows)


def fidelity_table(names):
    """What the colour models' samples hold (``python -m argen.fidelity``): a row per model, after
    the real frames' own row (training frames against test frames)."""
    first = read_metrics(names[0])["fidelity"]
    rows = ["**game frames: what the samples contain** (`python -m argen.fidelity --write`, at 32 x 32; C2ST 0.5 = "
            "indistinguishable from test frames; blobs: the worst game's relative error in moving objects per "
            "frame)", "",
            "| model | samples | C2ST ± spread | precision | recall | coverage | blobs off by | nearest training frame "
            "(sample / test distance; copies) |", "|---|---|---|---|---|---|---|---|"]

    def cells(f):
        return (f"{f['c2st']:.3f} ± {f['c2st_std']:.3f} | {f['precision']:.3f} | {f['recall']:.3f} | "
                f"{f['coverage']:.3f} | {f['blob_error']:.0%}")

    rows.append(f"| real training frames (control) | {first['samples']} | {cells(first['control'])} | — |")
    rows.append(f"| `games-tokenizer` reconstructions (a token prior's ceiling) | {first['samples']} | "
                f"{cells(first['tokenizer_ceiling'])} | — |")
    for name in names:
        f = read_metrics(name)["fidelity"]
        rows.append(f"| `{name}` | {f['samples']} | {cells(f)} | {f['memorisation']['ratio']:.2f}; "
                    f"{f['memorisation']['copies']:.0%} |")
    return "\n".join(rows)


def dataset_table(names):
    """One results table: a row per model."""
    rows = ["| model | K | parameters | test nats/image | test bits/dim | 8-bit-equiv. bits/dim | sample accuracy "
            "| FID (real floor) | s/image fast (naive) | s/10 images | training | hardware |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        m = read_metrics(name)
        t, q, s, tr = m.get("test", {}), m.get("quality", {}), m.get("speed", {}), m.get("train", {})
        if not t:
            continue
        fid = f"{q['fid']:.2f} ({q['fid_floor']:.2f})" if q else "—"
        naive = f" ({s['naive_seconds_per_image']:.2f})" if "naive_seconds_per_image" in s else ""
        per_image = f"{s['seconds_per_image']:.2f}{naive}" if s else "—"
        if "guided_seconds_per_image" in s:
            per_image += f"; {s['guided_seconds_per_image']:.2f} at guidance {s['guidance']:g}"
            per_image += f", top-k {s['top_k']}" if s.get("top_k") else ""
        if "bits_per_dim" in t:
            bpd = f"{t['bits_per_dim']:.4f}" + (" per token" if "tokenizer" in m else "")
        else:
            bpd = f"— ({t['masked_bits_per_token']:.3f} bits per masked token: not a likelihood)"
        if "tokenizer" in m:
            bpd += f" (tokenizer PSNR {m['tokenizer']['psnr_db']:.1f} dB)"
        accuracy = fmt(q.get("accuracy"), ".1%") + (f" of {q['samples']}" if q.get("accuracy") is not None
                                                     and q.get("samples") != 1000 else "")
        if q.get("guidance", 1.0) != 1.0:
            accuracy += f" at guidance {q['guidance']:g}"
        if q.get("top_k"):
            accuracy += f", top-k {q['top_k']}"
        minutes = (f"{tr['total_wall_minutes']} min in {len(tr['chain'])} runs" if "chain" in tr
                   else f"{tr.get('wall_minutes', '?')} min")
        epochs = tr.get("epochs", "?")
        if tr.get("stopped_early") and tr.get("held_out_curve"):  # stopped by its time budget
            epochs = f"{tr['held_out_curve'][-1][0]:.2f} of {epochs}"
        epochs = f"the last {epochs} epochs" if "chain" in tr else f"{epochs} epochs"
        rows.append(f"| `{name}` | {m['data']['levels']} | {m['parameters']:,} | {fmt(t.get('nats_per_image'), '.2f')} "
                    f"| {bpd} | {fmt(t.get('bits_per_dim_8bit'), '.4f')} "
                    f"| {accuracy} | {fid} | {per_image} "
                    f"| {fmt(s.get('seconds_per_10'), '.2f')} | {minutes}, "
                    f"{epochs} | {tr.get('hardware', '?')} |")
    return "\n".join(rows)


def comparison_plot(rows, path):
    """Bits/dim (8-bit equivalent) and sample accuracy per model, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name if m["data"].get("dataset", "mnist") == "mnist" else f"{name} ({m['data']['dataset']})"
             for name, m in rows]
    bpd = [m["test"].get("bits_per_dim_8bit") or 0 for _, m in rows]
    accuracy = [100 * (m.get("quality", {}).get("accuracy") or 0) for _, m in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.5), sharey=True)
    left.barh(names, bpd, color="tab:blue")
    left.set(xlabel="test bits/dim, 8-bit equivalent (lower is better)")
    right.barh(names, accuracy, color="tab:green")
    right.set(xlabel="classifier accuracy on samples, % (higher is better)", xlim=(0, 100))
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    left.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def update_tables(path, table):
    """Replace the table between the results markers of the page at ``path``."""
    text = Path(path).read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    Path(path).write_text(text[:start] + "\n" + table + "\n" + text[end:])


def update_readme(names, readme=README, results=RESULTS):
    """README's summary table and the results page's full tables, of the models ``names``."""
    update_tables(readme, headline_table(names))
    update_tables(results, markdown_table(names))


if __name__ == "__main__":
    update_readme(available())
    comparison_plot([(name, read_metrics(name)) for name in available()], weights_dir() / "report.png")
    print(f"updated {README.name}'s and {RESULTS.name}'s results tables and {weights_dir().name}/report.png")
