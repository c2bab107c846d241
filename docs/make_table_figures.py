"""Remake docs/figures/table_*.png: the three appendix tables, compiled by pdflatex from the real output.

    python docs/make_table_figures.py          (needs pdflatex and pdftoppm; about a minute)

Each table is ``limitproc table ...`` as an author would run it, ``\\input`` into a plain article
with the packages its header names; the first page is rendered at 110 dpi and cropped to the text.
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"
TABLES = {
    "jumps": [["generate", "--n", "64", "--m", "12", "--seed", "7", "-o", "demo.json"], ["table", "jumps", "demo.json"]],
    "prob": [["table", "prob", "--n", "16", "64", "256", "1024", "--m", "4", "8", "12", "16", "32"]],
    "norms": [["sweep", "sweep.toml", "-o", "sweep.parquet"], ["table", "norms", "sweep.parquet"]],
}
SWEEP = '[sweep]\nn = [16, 64, 256]\nm = [8, 16]\nlabels = ["pm1", "gauss"]\nnorms = "unit"\nseeds = 4\n'


def limitproc(args, cwd) -> str:
    out = subprocess.run([sys.executable, "-m", "limitproc", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    for kind, steps in TABLES.items():
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "sweep.toml").write_text(SWEEP)
            for step in steps:
                tex = limitproc(step, tmp)
            packages = re.search(r"^% needs (\\usepackage\{[a-z, ]+\})", tex, re.M).group(1)
            Path(tmp, "table.tex").write_text(tex)
            doc = "\\documentclass{article}\n" + packages + "\n\\pagestyle{empty}\n\\begin{document}\n\\input{table}\n\\end{document}\n"
            Path(tmp, "doc.tex").write_text(doc)
            for _ in range(2):  # twice, for the references to the table
                subprocess.run(
                    ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp, check=True, capture_output=True
                )
            # the first page, cropped to the text block of the article class (a 1-inch margin plus its offsets)
            crop = ["-x", "150", "-y", "120", "-W", "640", "-H", "900"]
            subprocess.run(
                ["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile", *crop, "doc.pdf", "page"], cwd=tmp, check=True
            )
            shutil.copy(Path(tmp, "page.png"), FIGURES / f"table_{kind}.png")
            print(FIGURES / f"table_{kind}.png")


if __name__ == "__main__":
    main()
