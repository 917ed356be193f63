"""``python -m train.readme``: copy the shipped models' metrics.json figures into README.md's
summary table and docs/results.md's full tables (between their markers), and redraw
``weights/report.png`` from them. The library measures; this repo tool writes the pages."""
from pathlib import Path

from argen.evaluate import comparison_plot, headline_table, markdown_table
from argen.hub import available, read_metrics, weights_dir

ROOT = Path(__file__).resolve().parent.parent
README, RESULTS = ROOT / "README.md", ROOT / "docs" / "results.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


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
