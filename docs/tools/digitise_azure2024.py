"""Digitise the hourly request-rate profiles of the Azure LLM inference 2024 week from the saved plot.

The week's CSVs (17M and 27M rows) live in Azure blob storage and are not fetched; the analysis
notebook of Azure/AzurePublicDataset@b469a113 (``analysis/AzureLLMInferenceDataset2024.ipynb``, cell
"Analysis over time") saves a plot of invocations per minute over the week for each service. This
script reads those two PNGs out of the notebook, finds the axes frame and the y gridlines
(0, 1000, 2000, ... invocations per minute), takes for every pixel column the mean height of the
plotted line's pixels (matplotlib's default blue), and averages the columns of each hour. The result is
approximate: one pixel column spans about 7 minutes and the line's thickness blurs the minute-to-minute
noise; the check is the weekly mean against the mean derived from the stated row counts (27.8 and
45.1 requests/s).

Run (needs Pillow and numpy): python docs/tools/digitise_azure2024.py NOTEBOOK.ipynb
It prints the YAML profile entries that hardware_db/traffic/profiles.yaml holds.
"""

from __future__ import annotations

import base64
import io
import json
import sys

import numpy as np
from PIL import Image

BLUE = np.array([31, 119, 180])
#: Stated row counts / week, from the notebook's saved output (traces.md): requests per second.
STATED_MEAN = {"Coding": 16_803_695 / (7 * 86400), "Conversation": 27_303_999 / (7 * 86400)}
GRID_STEP = 1000.0  # invocations per minute between gridlines (both plots)


def hourly(png: bytes) -> list[float]:
    """168 hourly mean rates (requests/s) from one plot."""
    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    h, w, _ = im.shape
    black = im.sum(axis=2) < 100
    rows = np.flatnonzero(black.sum(axis=1) > 0.5 * w)
    cols = np.flatnonzero(black.sum(axis=0) > 0.5 * h)
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    grey = (np.abs(im[:, :, 0] - im[:, :, 1]) < 8) & (np.abs(im[:, :, 1] - im[:, :, 2]) < 8) & (im[:, :, 0] > 150) & (im[:, :, 0] < 200)
    grid = [r for r in np.flatnonzero(grey.sum(axis=1) > 0.3 * w) if top < r < bottom]
    px_per_unit = abs(float(np.mean(np.diff([bottom, *sorted(grid, reverse=True)])))) / GRID_STEP
    blue = np.linalg.norm(im - BLUE, axis=2) < 60
    per_col = []
    for x in range(left + 1, right):
        ys = np.flatnonzero(blue[top:bottom, x]) + top
        per_col.append(np.nan if ys.size == 0 else (bottom - ys.mean()) / px_per_unit)
    cols_per_hour = (right - left - 1) / 168.0
    values = np.asarray(per_col)
    out = []
    for k in range(168):
        seg = values[round(k * cols_per_hour) : round((k + 1) * cols_per_hour)]
        out.append(float(np.nanmean(seg)) / 60.0)  # per minute -> per second
    return out


def main(path: str) -> None:
    """Print the two profiles read from the notebook at ``path``, each with its volume check."""
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    cell = next(c for c in nb["cells"] if "plt_invocations_time(df_trace)" in "".join(c.get("source", "")))
    pngs = [base64.b64decode(o["data"]["image/png"]) for o in cell["outputs"] if "image/png" in o.get("data", {})]
    for name, png in zip(("Coding", "Conversation"), pngs, strict=True):
        rates = hourly(png)
        mean = sum(rates) / len(rates)
        print(
            f"# {name}: digitised weekly mean {mean:.2f} req/s against {STATED_MEAN[name]:.2f} stated ({mean / STATED_MEAN[name] - 1:+.1%})"
        )
        print("[" + ", ".join(f"{r:.2f}" for r in rates) + "]")


if __name__ == "__main__":
    main(sys.argv[1])
