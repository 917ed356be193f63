"""``python -m train.readme``: copy the shipped models' metrics.json figures into README.md's
results table (between its markers) and redraw ``weights/report.png`` from them. The library
measures; this repo tool writes the front page."""
from pathlib import Path

from argen.evaluate import comparison_plot, markdown_table
from argen.hub import available, read_metrics, weights_dir

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(names, readme=README):
    """Replace the table between the results markers of ``readme``."""
    text = Path(readme).read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    Path(readme).write_text(text[:start] + "\n" + markdown_table(names) + "\n" + text[end:])


if __name__ == "__main__":
    update_readme(available())
    comparison_plot([(name, read_metrics(name)) for name in available()], weights_dir() / "report.png")
    print(f"updated {README.name}'s results table and {weights_dir().name}/report.png")
