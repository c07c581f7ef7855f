"""Tables for a reader of the book, and the one Markdown writer: a study's rows grouped by what
they are, summarised over seeds (mean ± std, best in bold, the reference marked), each run on its
own line, the rule's verdicts against a reference row, a run's training history.

Every table the book shows goes through one builder, :func:`reader_table` (a
:class:`ReaderTable`: HTML for the site, Markdown for the README); every Markdown table, the
README's, the CLI's and Paper vs. this book's, through :func:`markdown_table`."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from semi3lib.study.records import (
    INSTANCE_METRICS,
    LOWER_IS_BETTER,
    STUDY_METRICS,
    compare_rows,
    ordered_runs,
    study_statistics,
)
from semi3lib.study.rule import SEED_BY_SEED, Outcome, hosts_text, score_parts, score_text, verdict_word

# The metrics of the book's tables: P@100 is left out (capped at 0.25 on sketchy-mini, it says
# little that P@25 does not); every record and summary.csv keep it.
READER_METRICS = ("mAP@all", "mAP@200", "P@10", "P@25", "P@200")
# An instance-level study's (configs/fine-grained.yaml): the own-photo metrics, then the category
# mAP@all of the same embeddings beside them.
INSTANCE_READER_METRICS = (*INSTANCE_METRICS, "mAP@all")


def reader_metrics_for(runs: pd.DataFrame) -> tuple[str, ...]:
    """The reader metrics of a study's runs: the instance ones when its records carry acc@1."""
    return INSTANCE_READER_METRICS if "acc@1" in runs.columns and runs["acc@1"].notna().any() else READER_METRICS


def _best(metrics: Sequence[str]) -> dict[str, str]:
    """Which value of each metric is best: the lowest rank, the highest of everything else."""
    return {m: "min" if m in LOWER_IS_BETTER else "max" for m in metrics}


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
BOOK_GROUP = "This book's run (chapter 4) and the ImageNet floor"


def groups_for(rows: Sequence[str]) -> Mapping[str, Sequence[str]] | None:
    """The reader groups of a plan's ``rows``: the study's or the tuning search's, whichever
    names more of them, if it names most; None (one plain list) otherwise."""
    def named(groups: Mapping[str, Sequence[str]]) -> int:
        return len(set(rows) & {row for names in groups.values() for row in names})

    best = max((STUDY_GROUPS, TUNING_GROUPS), key=named)
    return best if named(best) > len(rows) / 2 else None


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


def markdown_table(table: pd.DataFrame, index: bool = True) -> str:
    """A table of text as GitHub Markdown, its index first (``index=False``: left out); a
    missing value is an empty cell and a ``|`` inside a cell is escaped. The book's one Markdown
    writer (:meth:`ReaderTable.to_markdown`, ``semi3 study --per-run``, Paper vs. this book)."""
    header = [table.index.name or ""] * index + [str(c) for c in table.columns]
    rows = ([label] * index + list(values) for label, values in zip(table.index, table.itertuples(index=False)))
    lines = [_markdown_line(header), "|" + "---|" * len(header)]
    return "\n".join(lines + [_markdown_line("" if _missing(v) else str(v) for v in row) for row in rows])


def _markdown_line(cells: Iterable[str]) -> str:
    # An empty cell is "| |", not "|  |", so a group's title row reads "| *title* | | |".
    return "|" + "|".join(f" {c.replace('|', chr(92) + '|')} " if c else " " for c in cells) + "|"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


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
        # A plain 0..n-1 index labels nothing: the table then has no row-label column. A named
        # one (a training history's "epoch", 1..n) is a column a reader needs.
        index = values.index
        self.show_index = not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.name is None)

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
            std = np.nan
            if self.std is not None and column in self.std.columns and row in self.std.index:
                std = np.nan if pd.isna(self.std.at[row, column]) else float(self.std.at[row, column])
            return score_parts(float(value), std, self._digits(column))
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
        """GitHub Markdown (:func:`markdown_table`): the group titles as rows in italics, best
        values in bold, the reference row marked."""
        bold = self.bold_cells()
        header = [self.values.index.name or ""] * self.show_index + [str(c) for c in self.values.columns]
        lines = []
        for title, names in self.groups:
            if title and len(self.groups) > 1:
                lines.append([f"*{title}*"] + [""] * (len(header) - 1))
            for row in names:
                cells = []
                for column in self.values.columns:
                    text = " ".join(t for t in self.cell_text(row, column) if t)
                    cells.append(f"**{text}**" if text and (row, column) in bold else text)
                lines.append([self._label(row)] * self.show_index + cells)
        return markdown_table(pd.DataFrame(lines, columns=range(len(header))).set_axis(header, axis=1), index=False)

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
    """A study (:func:`~semi3lib.study.records.load_study`) for a reader: one row per study row in ``groups`` order,
    its seeds, mean training minutes, then ``mean ± std`` of each metric (best in bold)."""
    stats = study_statistics(runs)
    metrics = [m for m in metrics if f"{m} mean" in stats]
    values = pd.DataFrame({"seeds": stats["seeds"]}, index=stats.index)
    if minutes and "wall_seconds mean" in stats:
        values["train min"] = (stats["wall_seconds mean"] / 60).round(1)
    for m in metrics:
        values[m] = stats[f"{m} mean"]
    std = pd.DataFrame({m: stats[f"{m} std"] for m in metrics}, index=stats.index)
    return reader_table(values, std, groups=groups, integers=("seeds",), best=_best(metrics),
                        reference=reference, digits={"train min": 1})


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


def study_runs_table(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """Every run of a study on its own line, in :func:`ordered_runs` order: the seed, training
    minutes, mAP@all and the hardware it ran on (``semi3 study --per-run``)."""
    runs = ordered_runs(runs, order).set_index("run")
    return pd.DataFrame({"seed": runs["seed"],
                         "train min": (runs["wall_seconds"].astype(float) / 60).map(lambda m: f"{m:.1f}"),
                         "mAP@all": runs["mAP@all"].map(lambda v: f"{v:.3f}"),
                         "hardware": runs["hardware"]}, index=runs.index)


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


def summarise_study(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`study_statistics` as text: ``"0.512 ± 0.010"`` for a metric measured on several
    seeds, the plain value for one, nothing for none."""
    stats = study_statistics(runs)
    table = stats[["seeds"]].copy()
    for m in (m for m in STUDY_METRICS if f"{m} mean" in stats):
        table[m] = [None if pd.isna(mean) else score_text(mean, std)
                    for mean, std in zip(stats[f"{m} mean"], stats[f"{m} std"])]
    return table


def against_reference(runs: pd.DataFrame, reference: str, rows: Sequence[str] | None = None,
                      metric: str = "mAP@all") -> dict[str, Outcome]:
    """Each of ``rows`` against ``reference`` by the book's rule (:func:`~semi3lib.study.rule.compare`,
    seed pairs run on one kind of host only where the runs name their host), ``{row: outcome}``;
    the rows default to every other row with several seeds (one seed has no spread, so no
    verdict). The tuning search's table in chapter 5."""
    stats = study_statistics(runs)
    if rows is None:
        rows = [r for r in stats.index[stats["seeds"] > 1] if r != reference]
    missing = [r for r in (reference, *rows) if r not in stats.index]
    if missing:
        raise KeyError(f"no runs of {', '.join(missing)}; rows present: {', '.join(stats.index)}")
    return {row: compare_rows(runs, row, reference, metric) for row in rows}


def outcomes_table(outcomes: Mapping[str, Outcome], reference: str) -> pd.DataFrame:
    """:func:`against_reference`'s outcomes, one line per row: the seeds both rows ran, each
    mean, the gap and the seed spread, where the row stands seed by seed, the verdict and, for
    outcomes with hosts, the hosts it rests on and the seeds it left out (:func:`~semi3lib.study.rule.hosts_text`)."""
    lines = []
    with_hosts = any(hosts_text(out) for out in outcomes.values())
    for row, out in outcomes.items():
        lines.append({"row": row, "seeds": len(out.paired), out.metric: out.mean_std_a[0],
                      f"{reference} {out.metric}": out.mean_std_b[0], "gap": out.gap, "spread": out.spread,
                      "seed by seed": SEED_BY_SEED[out.ahead] if out.paired else "", "verdict": verdict_word(out),
                      **({"hosts": hosts_text(out)} if with_hosts else {})})
    columns = ["row", "seeds", "gap", "spread", "seed by seed", "verdict"]
    return pd.DataFrame(lines, columns=columns if not lines else None).set_index("row")


def history_table(history: Sequence[Mapping[str, Any]],
                  metrics: Sequence[str] = ("mAP@all", "P@25", "P@200")) -> pd.DataFrame:
    """One row per epoch: the loss terms that were used (a term that is 0 throughout was
    switched off), the learning rate, wall time and the query metrics where evaluated."""
    table = pd.json_normalize(list(history), sep=" ").set_index("epoch")
    losses = [c for c in table.columns if c.startswith("loss_") and (table[c] != 0).any()]
    queried = [f"query {m}" for m in metrics if f"query {m}" in table.columns]
    return table[losses + ["lr", "wall_seconds"] + queried].round(4)
