"""Results as tables: a training history, the reproduction study's runs summarised over seeds,
the book's main results table and the paper's reported numbers; choosing example queries.

Every table the book shows goes through one builder, :func:`reader_table` (a
:class:`ReaderTable`: rows grouped by meaning, the best value of each column in bold, counts as
integers, ``mean ± std`` on one line, the reference row marked, HTML for the site and Markdown
for the README). The README's headline (:func:`readme_headline`, ``python -m
semi3lib.study.reporting headline``) is computed here from the study's records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from semi3lib.engine.records import read_records

# Commonly quoted for Semi3-Net (Lei et al. 2020); not checked against the paper here.
PAPER_REPORTED = (
    {"dataset": "Sketchy (full: 6,250 queries, 73,002 photos)", "mAP@all": 0.916, "P@200": 0.930},
    {"dataset": "TU-Berlin Extension (2,500 queries, 204,489 photos)", "mAP@all": 0.800, "P@200": 0.813},
)
TABLE_METRICS = ("mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200")
# The metrics of the book's tables: P@100 is left out (capped at 0.25 on sketchy-mini, it says
# little that P@25 does not); every record and summary.csv keep it.
READER_METRICS = ("mAP@all", "mAP@200", "P@10", "P@25", "P@200")


def history_table(history: Sequence[Mapping[str, Any]],
                  metrics: Sequence[str] = ("mAP@all", "P@25", "P@200")) -> pd.DataFrame:
    """One row per epoch: the loss terms that were used (a term that is 0 throughout was
    switched off), the learning rate, wall time and the query metrics where evaluated."""
    table = pd.json_normalize(list(history), sep=" ").set_index("epoch")
    losses = [c for c in table.columns if c.startswith("loss_") and (table[c] != 0).any()]
    queried = [f"query {m}" for m in metrics if f"query {m}" in table.columns]
    return table[losses + ["lr", "wall_seconds"] + queried].round(4)


def paper_reported_table() -> pd.DataFrame:
    """:data:`PAPER_REPORTED`, one row per dataset, columns labelled ``(paper)``."""
    table = pd.DataFrame(PAPER_REPORTED).set_index("dataset")
    table.columns = [f"{c} (paper)" for c in table.columns]
    return table


def load_study(study_dir: str | Path, split: str = "query") -> tuple[pd.DataFrame | None, str]:
    """The reproduction study's runs (``<study_dir>/*.json``, one
    :class:`~semi3lib.engine.records.RunRecord` per run and seed, read by
    :func:`~semi3lib.engine.records.read_records`) as one row per file, scored on ``split``
    (``query``, or ``val`` for a tuning study), with its wall time and hardware;
    ``(None, reason)`` when there are none. Files without ``metrics`` for that split are
    ignored (other outputs may share the folder)."""
    study_dir = Path(study_dir)
    rows = []
    for path, record in read_records(study_dir):
        metrics = record.metrics.get(split)
        if metrics is None:
            continue
        rows.append({"run": record.run, "seed": record.seed,
                     **{k: metrics.get(k) for k in TABLE_METRICS if k in metrics},
                     "wall_seconds": record.wall_seconds, "hardware": record.hardware, "file": path.name})
    if not rows:
        why = "does not exist" if not study_dir.is_dir() else f"holds no run results (*.json with {split} metrics)"
        return None, f"{study_dir} {why}"
    return pd.DataFrame(rows), f"{len(rows)} run file(s) in {study_dir}"


def study_statistics(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per study row, in the order the runs first appear: the number of seeds, then the
    mean and sample std (ddof 1; NaN with one seed: unknown, not zero) of each metric and of
    the wall time. A seed without a value for a metric is left out of that metric's numbers."""
    columns = [m for m in (*TABLE_METRICS, "wall_seconds") if m in runs.columns]
    grouped = runs[["run", *columns]].astype({c: float for c in columns}).groupby("run", sort=False)
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{column} {stat}" for column, stat in table.columns]
    seeds = runs.groupby("run", sort=False)["seed"].nunique() if "seed" in runs else grouped.size()
    table.insert(0, "seeds", seeds.astype(int))
    table.index.name = "run"
    return table


def summarise_study(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`study_statistics` as text: ``"0.512 ± 0.010"`` for a metric measured on several
    seeds, the plain value for one, nothing for none."""
    return _as_text(study_statistics(runs))


def _as_text(stats: pd.DataFrame) -> pd.DataFrame:
    """The seeds and each metric's ``mean ± std`` text of a :func:`study_statistics` table."""

    def text(mean: float, std: float) -> str | None:
        if pd.isna(mean):
            return None
        return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"

    table = stats[["seeds"]].copy()
    for m in (m for m in TABLE_METRICS if f"{m} mean" in stats):
        table[m] = [text(mean, std) for mean, std in zip(stats[f"{m} mean"], stats[f"{m} std"])]
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """A table as GitHub Markdown, index first (``semi3 study --per-run``)."""
    header = [table.index.name or "", *map(str, table.columns)]
    rows = [[str(i), *("" if pd.isna(v) else str(v) for v in row)] for i, row in zip(table.index, table.to_numpy())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def ordered_runs(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """The runs of :func:`load_study` by row (rows named in ``order`` first, the others in the
    order they appear), then by seed."""
    rank = {name: i for i, name in enumerate(dict.fromkeys([*order, *runs["run"]]))}
    return runs.sort_values(["run", "seed"], key=lambda c: c.map(rank) if c.name == "run" else c, kind="stable")


def study_runs_table(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """Every run of a study on its own line, in :func:`ordered_runs` order: the seed, training
    minutes, mAP@all and the hardware it ran on (``semi3 study --per-run``)."""
    runs = ordered_runs(runs, order).set_index("run")
    return pd.DataFrame({"seed": runs["seed"],
                         "train min": (runs["wall_seconds"].astype(float) / 60).map(lambda m: f"{m:.1f}"),
                         "mAP@all": runs["mAP@all"].map(lambda v: f"{v:.3f}"),
                         "hardware": runs["hardware"]}, index=runs.index)


def results_table(book_metrics: pd.DataFrame, runs: pd.DataFrame | None = None,
                  groups: Mapping[str, Sequence[str]] | None = None, reference: str | None = "semi3net") -> "ReaderTable":
    """The evaluation chapter's main table: the study's rows (from :func:`load_study`'s
    ``runs``) grouped by :data:`STUDY_GROUPS`, mean ± std over seeds, then this book's own
    models (one run each) as the last group."""
    columns = [c for c in READER_METRICS if c in book_metrics.columns]
    ours = book_metrics[columns].astype(float).copy()
    ours.insert(0, "seeds", 1)
    parts, stds, group_rows = [], [], []
    if runs is not None:
        stats = study_statistics(runs)
        mean = stats[["seeds", *[f"{c} mean" for c in columns]]].rename(columns=lambda c: c.removesuffix(" mean"))
        std = stats[[f"{c} std" for c in columns]].rename(columns=lambda c: c.removesuffix(" std"))
        parts.append(mean)
        stds.append(std)
        group_rows = _grouped(list(stats.index), STUDY_GROUPS if groups is None else groups)
    parts.append(ours)
    stds.append(pd.DataFrame(np.nan, index=ours.index, columns=columns))
    group_rows.append((BOOK_GROUP, list(ours.index)))
    values = pd.concat(parts)
    values.index.name = "model"
    return reader_table(values, pd.concat(stds), groups=group_rows, integers=("seeds",),
                        best={c: "max" for c in columns}, reference=reference if runs is not None else None)


def spread_queries(ap: np.ndarray, labels: np.ndarray, n: int) -> list[int]:
    """``n`` query positions from distinct categories at evenly spaced AP ranks (best to
    worst), so a retrieval grid shows successes and failures in their real proportion.
    ``ap`` and ``labels`` are ``(Q,)``."""
    order = np.argsort(-np.asarray(ap), kind="stable")
    picked, seen = [], set()
    for target in np.linspace(0, len(order) - 1, num=n).round().astype(int):
        # The query at that rank, or the nearest one below (then above) of a new category.
        for pos in np.concatenate([order[target:], order[:target][::-1]]):
            if labels[pos] not in seen:
                picked.append(int(pos))
                seen.add(labels[pos])
                break
    return sorted(picked, key=lambda p: -ap[p])


def margin_over(runs: pd.DataFrame, reference: str, challengers: Sequence[str] | None = None,
                metric: str = "mAP@all") -> pd.DataFrame:
    """Whether each challenger row of a study beats ``reference`` by more than the seed spread:
    its mean ``metric`` minus the reference's (``gap``) against the larger of the two sample
    stds (``spread``); ``beats`` is ``gap > spread``. A row with one seed has no known
    spread, so it never beats anything (``beats`` is False, ``spread`` NaN). Challengers
    default to every other row with several seeds. The rule of the tuning search for
    replacing a default (``configs/tuning-sketchy-mini.yaml``)."""
    stats = study_statistics(runs)
    if challengers is None:
        challengers = [r for r in stats.index[stats["seeds"] > 1] if r != reference]
    missing = [r for r in (reference, *challengers) if r not in stats.index]
    if missing:
        raise KeyError(f"no runs of {', '.join(missing)}; rows present: {', '.join(stats.index)}")
    mean, std = stats[f"{metric} mean"], stats[f"{metric} std"]
    rows = []
    for row in challengers:
        gap, spread = mean[row] - mean[reference], std[[row, reference]].max(skipna=False)
        rows.append({"row": row, "seeds": int(stats.at[row, "seeds"]), metric: mean[row],
                     f"{reference} {metric}": mean[reference], "gap": gap, "spread": spread,
                     "beats": bool(gap > spread)})
    return pd.DataFrame(rows).set_index("row").round(4)


# ---- tables a reader can scan ---------------------------------------------------------------
# The study's rows grouped by what they are, in reading order; a row not named here goes last,
# under "Other rows". Shared by the book's tables, the README's headline and the paper-vs-book page.
STUDY_GROUPS: dict[str, tuple[str, ...]] = {
    "Floor and baselines": ("imagenet-features", "frozen-backbone-ce-head", "two-branch-triplet", "two-branch-ce"),
    "The method": ("semi3net",),
    "Ablations of Semi3-Net": ("shared-bottoms", "separate-bottoms", "no-coattention", "no-alignment-loss",
                               "no-contrastive-loss", "no-edgemap-branch", "edgemaps-xdog", "edgemaps-sobel"),
    "Tuned variants (label smoothing)": ("semi3net-label-smoothing", "two-branch-ce-label-smoothing",
                                         "no-edgemap-branch-label-smoothing"),
}
TUNING_GROUPS: dict[str, tuple[str, ...]] = {
    "Untuned Semi3-Net": ("untuned", "untuned-photo+edge"),
    "The tuned base": ("backbone-lr-1.0", "backbone-lr-1.0-photo+edge"),
    "One change to the tuned base": ("backbone-lr-1.0-lr-2e-3", "loss-weights-0.1", "backbone-lr-1.0-label-smoothing-0.1",
                                     "edgemaps-sobel", "edgemaps-xdog"),
}
OTHER_GROUP = "Other rows"


def groups_for(rows: Sequence[str]) -> Mapping[str, Sequence[str]] | None:
    """The reader groups of a plan's ``rows``: the study's or the tuning search's, whichever
    names more of them, if it names most; None (one plain list) otherwise."""
    def named(groups: Mapping[str, Sequence[str]]) -> int:
        return len(set(rows) & {row for names in groups.values() for row in names})

    best = max((STUDY_GROUPS, TUNING_GROUPS), key=named)
    return best if named(best) > len(rows) / 2 else None
BOOK_GROUP = "This book's run (chapter 4) and the ImageNet floor"


def _grouped(rows: Sequence[str], groups: Mapping[str, Sequence[str]] | None) -> list[tuple[str, list[str]]]:
    """``rows`` as ``(group title, rows)`` in the order of ``groups``; rows it does not name
    come last under :data:`OTHER_GROUP`, empty groups are left out. No groups: one untitled group."""
    if not groups:
        return [("", list(rows))]
    present = set(rows)
    out = [(title, [r for r in names if r in present]) for title, names in groups.items()]
    named = {r for _, names in out for r in names}
    out.append((OTHER_GROUP, [r for r in rows if r not in named]))
    return [(title, names) for title, names in out if names]


class ReaderTable:
    """A table laid out for a reader of the book: rows in titled groups, the best value of each
    scored column in bold, counts as integers, ``mean ± std`` on one line (the std smaller),
    the reference row marked. In a notebook it shows as HTML (``_repr_html_``) inside a framed
    box that scrolls sideways on a narrow screen; :meth:`to_markdown` gives the same table
    as GitHub Markdown (the README). ``values`` and ``std`` keep the numbers for code and tests.
    """

    def __init__(self, values: pd.DataFrame, std: pd.DataFrame | None, groups: list[tuple[str, list[str]]],
                 integers: Sequence[str], best: Mapping[str, str], reference: str | None, digits: int,
                 caption: str | None = None, column_digits: Mapping[str, int] | None = None,
                 formats: Mapping[str, str] | None = None):
        self.values, self.std, self.groups = values, std, groups
        self.integers, self.best, self.reference, self.digits = tuple(integers), dict(best), reference, digits
        self.caption, self.column_digits, self.formats = caption, dict(column_digits or {}), dict(formats or {})
        # A plain 0..n-1 index labels nothing: the table then has no row-label column.
        self.show_index = not isinstance(values.index, pd.RangeIndex)

    @property
    def rows(self) -> list[str]:
        """The row labels in display order."""
        return [r for _, names in self.groups for r in names]

    def bold_cells(self) -> set[tuple[str, str]]:
        """``(row, column)`` of each column's best value (ties all bold)."""
        cells = set()
        for column, how in self.best.items():
            numbers = pd.to_numeric(self.values[column], errors="coerce").round(self._digits(column))
            if numbers.notna().sum() < 2:
                continue
            target = numbers.max() if how == "max" else numbers.min()
            cells |= {(row, column) for row in numbers.index[numbers == target]}
        return cells

    def cell_text(self, row: str, column: str) -> tuple[str, str]:
        """The cell as ``(value, spread)`` text; ``spread`` is ``"± 0.007"`` or ``""``."""
        value = self.values.at[row, column]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "", ""
        if isinstance(value, (bool, np.bool_)):
            return ("yes" if value else "no"), ""
        if column in self.formats:
            return self.formats[column].format(value), ""
        if column in self.integers:
            return f"{int(round(float(value))):,}", ""
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}", ""
        if isinstance(value, (float, np.floating)):
            digits, spread = self._digits(column), ""
            if self.std is not None and column in self.std.columns and row in self.std.index:
                s = self.std.at[row, column]
                spread = "" if pd.isna(s) else f"± {s:.{digits}f}"
            return f"{value:.{digits}f}", spread
        return str(value), ""

    def text(self) -> pd.DataFrame:
        """Every cell as plain text (``"0.582 ± 0.007"``), rows in display order."""
        out = pd.DataFrame(index=pd.Index(self.rows, name=self.values.index.name), columns=self.values.columns, dtype=object)
        for row in self.rows:
            for column in self.values.columns:
                value, spread = self.cell_text(row, column)
                out.at[row, column] = f"{value} {spread}".strip()
        return out

    def _digits(self, column: str) -> int:
        return self.column_digits.get(column, self.digits)

    def _label(self, row: str) -> str:
        return f"{row} (reference)" if row == self.reference else str(row)

    def to_markdown(self) -> str:
        """GitHub Markdown: the group titles as bold rows, best values in bold."""
        bold = self.bold_cells()
        header = [self.values.index.name or "", *map(str, self.values.columns)][0 if self.show_index else 1:]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for title, names in self.groups:
            if title and len(self.groups) > 1:
                lines.append(f"| *{title}* |" + " |" * (len(header) - 1))
            for row in names:
                cells = []
                for column in self.values.columns:
                    text = " ".join(t for t in self.cell_text(row, column) if t)
                    cells.append(f"**{text}**" if text and (row, column) in bold else text)
                lines.append("| " + " | ".join([self._label(row)] * self.show_index + cells) + " |")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html as _html

        bold = self.bold_cells()
        esc = _html.escape
        has_spread = self.std is not None and self.std.notna().to_numpy().any()
        head = [f'<th class="row-label">{esc(self.values.index.name or "")}</th>'] if self.show_index else []
        for column in self.values.columns:
            sub = ('<br><span class="col-unit">mean ± std</span>'
                   if has_spread and self.std is not None and column in self.std.columns else "")
            head.append(f"<th>{esc(str(column))}{sub}</th>")
        body = []
        width = len(self.values.columns) + self.show_index
        for title, names in self.groups:
            if title and len(self.groups) > 1:
                body.append(f'<tr class="group-row"><th colspan="{width}" scope="rowgroup">{esc(title)}</th></tr>')
            for row in names:
                is_ref = row == self.reference
                mark = ' <span class="ref-mark">reference</span>' if is_ref else ""
                cells = [f'<th scope="row" class="row-label">{esc(str(row))}{mark}</th>'] if self.show_index else []
                for column in self.values.columns:
                    value, spread = self.cell_text(row, column)
                    inner = esc(value) + (f' <span class="spread">{esc(spread)}</span>' if spread else "")
                    best = (row, column) in bold
                    kind = "text" if isinstance(self.values.at[row, column], str) else ""
                    classes = " ".join(c for c in ("best" if best else "", kind) if c)
                    inner = f"<strong>{inner}</strong>" if best else inner
                    cells.append(f'<td class="{classes}">{inner}</td>' if classes else f"<td>{inner}</td>")
                row_class = ' class="reference-row"' if is_ref else ""
                body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
        caption = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return ('<div class="reader-table-frame"><table class="dataframe reader-table">' + caption
                + f'<thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')

    def __repr__(self) -> str:
        return self.text().to_string()


def reader_table(values: pd.DataFrame, std: pd.DataFrame | None = None, *,
                 groups: Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]] | None = None,
                 integers: Sequence[str] = (), best: Mapping[str, str] | None = None,
                 reference: str | None = None, digits: int | Mapping[str, int] = 3,
                 formats: Mapping[str, str] | None = None, caption: str | None = None) -> ReaderTable:
    """The one table builder of the book (see :class:`ReaderTable`).

    values: one row per labelled item (the index), numbers or text; std: the same shape (or
    fewer columns) with each number's seed std, shown as ``± std``; groups: ``{title: rows}``
    or ``[(title, rows)]``, the display order (rows not named come last); integers: columns
    shown as whole numbers; best: ``{column: "max" | "min"}``, the columns whose best value is
    bold; reference: the row the others are compared with, marked; digits: decimals, for all
    columns or ``{column: decimals}`` (3 for the others); formats: ``{column: "{:.1e}"}`` for
    columns a decimal count does not suit. A plain ``RangeIndex`` is not shown."""
    if groups is None or isinstance(groups, Mapping):
        group_rows = _grouped(list(values.index), groups)
    else:
        group_rows = [(str(t), [r for r in rows if r in values.index]) for t, rows in groups]
        named = {r for _, rows in group_rows for r in rows}
        group_rows += [(OTHER_GROUP, [r for r in values.index if r not in named])]
        group_rows = [(t, rows) for t, rows in group_rows if rows]
    if reference is not None and reference not in values.index:
        reference = None
    per_column = dict(digits) if isinstance(digits, Mapping) else {}
    return ReaderTable(values, std, group_rows, integers, best or {}, reference,
                       3 if isinstance(digits, Mapping) else digits, caption, per_column, formats)


def study_table(runs: pd.DataFrame, groups: Mapping[str, Sequence[str]] | None = STUDY_GROUPS,
                reference: str | None = "semi3net", metrics: Sequence[str] = READER_METRICS,
                minutes: bool = True) -> ReaderTable:
    """A study (:func:`load_study`) for a reader: one row per study row in ``groups`` order,
    its seeds, mean training minutes, then ``mean ± std`` of each metric (best in bold)."""
    stats = study_statistics(runs)
    metrics = [m for m in metrics if f"{m} mean" in stats]
    values = pd.DataFrame({"seeds": stats["seeds"]}, index=stats.index)
    if minutes and "wall_seconds mean" in stats:
        values["train min"] = (stats["wall_seconds mean"] / 60).round(1)
    for m in metrics:
        values[m] = stats[f"{m} mean"]
    std = pd.DataFrame({m: stats[f"{m} std"] for m in metrics}, index=stats.index)
    return reader_table(values, std, groups=groups, integers=("seeds",), best={m: "max" for m in metrics},
                        reference=reference, digits={"train min": 1})


FLOOR_ROW, METHOD_ROW, NO_EDGE_ROW = "imagenet-features", "semi3net", "no-edgemap-branch"
# prefixes of the rows that are not Semi3-Net: the baselines and the network without the edgemap branch
NOT_SEMI3NET = ("imagenet-features", "frozen-backbone-ce-head", "two-branch-", NO_EDGE_ROW)


def _is_semi3net_variant(row: str) -> bool:
    return not row.startswith(NOT_SEMI3NET)


def headline_rows(runs: pd.DataFrame, metric: str = "mAP@all") -> dict[str, str]:
    """The study's rows that say most, chosen from the records by ``metric`` (the mean over
    seeds): ``{what it is: row}`` for the ImageNet floor, the best baseline, Semi3-Net, its best
    variant (an ablation or tuned row that keeps the edgemap branch), the network without the
    edgemap branch, and the best baseline's tuned twin where it exists. Rows absent from the
    records are left out."""
    stats = study_statistics(runs)
    mean = stats[f"{metric} mean"]
    baselines = [r for r in STUDY_GROUPS["Floor and baselines"] if r in stats.index and r != FLOOR_ROW]
    variants = [r for r in stats.index if r != METHOD_ROW and _is_semi3net_variant(r)]
    best_baseline = max(baselines, key=mean.get) if baselines else None
    chosen = {
        "ImageNet features, no training (the floor)": FLOOR_ROW,
        "the best baseline": best_baseline,
        "Semi3-Net as in the paper": METHOD_ROW,
        "Semi3-Net's best variant": max(variants, key=mean.get) if variants else None,
        "Semi3-Net without its edgemap branch": NO_EDGE_ROW,
        "the best baseline with the same tuning": f"{best_baseline}-label-smoothing" if best_baseline else None,
    }
    return {what: row for what, row in chosen.items() if row is not None and row in stats.index}


def headline_table(runs: pd.DataFrame, metrics: Sequence[str] = ("mAP@all", "P@200")) -> ReaderTable:
    """The README's headline: :func:`headline_rows` with seeds, training minutes and ``metrics``
    (mean ± std), Semi3-Net the reference."""
    rows = headline_rows(runs)
    full = study_table(runs, groups=None, metrics=metrics)
    order = list(rows.values())
    values = full.values.loc[order].copy()
    values.insert(0, "what", list(rows))
    return reader_table(values, full.std.loc[order], integers=("seeds",), best={m: "max" for m in metrics},
                        reference=METHOD_ROW, digits={"train min": 1})


def compare_rows(runs: pd.DataFrame, row: str, other: str, metric: str = "mAP@all") -> dict[str, Any]:
    """``row`` against ``other`` by :func:`margin_over`'s rule, both ways: ``outcome`` is
    ``"above"`` when ``row`` beats ``other`` by more than the larger seed std, ``"below"`` when
    ``other`` beats ``row`` so, else ``"level"``; with ``gap`` (row's mean minus other's) and
    ``spread``."""
    forward = margin_over(runs, other, [row], metric).loc[row]
    backward = margin_over(runs, row, [other], metric).loc[other]
    outcome = "above" if forward["beats"] else "below" if backward["beats"] else "level"
    stats = study_statistics(runs)  # unrounded, so the text agrees with the tables' "± std"
    gap = stats.at[row, f"{metric} mean"] - stats.at[other, f"{metric} mean"]
    spread = stats.loc[[row, other], f"{metric} std"].max(skipna=False)
    return {"row": row, "other": other, "outcome": outcome, "gap": float(gap), "spread": float(spread),
            "metric": metric}


def describe_comparison(result: Mapping[str, Any]) -> str:
    """One sentence for :func:`compare_rows`' result, with its numbers."""
    row, other, gap, spread = f"`{result['row']}`", f"`{result['other']}`", result["gap"], result["spread"]
    numbers = f"{result['metric']} {gap:+.3f} on the mean, seed spread {spread:.3f}"
    if result["outcome"] == "above":
        return f"{row} beats {other} by more than the seed spread ({numbers})"
    if result["outcome"] == "below":
        return f"{row} is below {other} by more than the seed spread ({numbers})"
    return f"{row} and {other} are level: the gap is within the seed spread ({numbers})"


def headline_findings(runs: pd.DataFrame) -> list[str]:
    """The comparisons the README states, each computed from the records: Semi3-Net against
    the best baseline, the network without the edgemap branch against Semi3-Net, and the best
    variant against the best baseline tuned alike."""
    rows = headline_rows(runs)
    pairs = [("Semi3-Net as in the paper", "the best baseline"),
             ("Semi3-Net without its edgemap branch", "Semi3-Net as in the paper"),
             ("Semi3-Net's best variant", "the best baseline with the same tuning")]
    return [describe_comparison(compare_rows(runs, rows[a], rows[b])) for a, b in pairs if a in rows and b in rows]


def readme_headline(runs: pd.DataFrame) -> str:
    """The README's generated block: :func:`headline_table` as Markdown, then
    :func:`headline_findings` as a list."""
    return headline_table(runs).to_markdown() + "\n\n" + "\n".join(f"- {line}." for line in headline_findings(runs))


def runs_reader_table(runs: pd.DataFrame, groups: Mapping[str, Sequence[str]] | None = STUDY_GROUPS) -> ReaderTable:
    """Every run of a study on its own line (``row, seed k``), grouped as :func:`study_table`
    groups the rows: training minutes, mAP@all and the hardware it ran on."""
    order = study_table(runs, groups=groups).rows
    table = study_runs_table(runs, order)
    labels = [f"{run}, seed {seed}" for run, seed in zip(table.index, table["seed"])]
    values = pd.DataFrame({"train min": table["train min"].astype(float).to_numpy(),
                           "mAP@all": table["mAP@all"].astype(float).to_numpy(),
                           "hardware": table["hardware"].to_numpy()}, index=pd.Index(labels, name="run"))
    by_run: dict[str, list[str]] = {}
    for run, label in zip(table.index, labels):
        by_run.setdefault(run, []).append(label)
    grouped = [(title, [label for run in rows for label in by_run[run]]) for title, rows in _grouped(order, groups)]
    return reader_table(values, groups=grouped, best={"mAP@all": "max"}, digits={"train min": 1})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m semi3lib.study.reporting headline [STUDY_DIR]``: the README's headline table."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m semi3lib.study.reporting", description=main.__doc__)
    parser.add_argument("table", choices=["headline", "study"])
    parser.add_argument("study_dir", nargs="?", default="results/sketchy-mini")
    args = parser.parse_args(argv)
    runs, note = load_study(args.study_dir)
    if runs is None:
        print(f"reporting: error: {note}")
        return 1
    print(readme_headline(runs) if args.table == "headline" else study_table(runs).to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

