"""``semi3 study``: the reproduction study (rows x seeds, each trained once; see semi3lib.study.runner)."""

from __future__ import annotations

import argparse

from semi3lib.cli import int_at_least


def cmd_study(args: argparse.Namespace) -> int:
    from semi3lib.study.runner import load_plan, run_study, write_summary

    plan = load_plan(args.plan)
    if args.list:
        width = max(len(row.name) for row in plan.rows)
        for row in plan.rows:
            done = sum(plan.record_path(row, s).is_file() for s in plan.seeds_of(row))
            print(f"{row.name:<{width}}  {done}/{len(plan.seeds_of(row))} seeds done  {row.what}")
        return 0
    if args.host_effect:
        from semi3lib.study.hosts import host_effect_summary, host_effect_table
        from semi3lib.study.tables import markdown_table

        table = host_effect_table(plan.out_dir)
        print(markdown_table(table.round(4), index=False))
        print(host_effect_summary(table))
        return 0
    if args.markdown or args.per_run:
        from semi3lib.study.records import load_study, ordered_runs
        from semi3lib.study.tables import groups_for, markdown_table, reader_metrics_for, study_runs_table, study_table

        runs, note = load_study(plan.out_dir, plan.split)
        if runs is None:
            print(note)
            return 1
        order = [row.name for row in plan.rows]
        runs = ordered_runs(runs, order)
        reference = "semi3net" if "semi3net" in set(runs["run"]) else None
        print(markdown_table(study_runs_table(runs)) if args.per_run
              else study_table(runs, groups=groups_for(order), reference=reference,
                               metrics=reader_metrics_for(runs)).to_markdown())
        return 0
    if args.refresh_scores:
        from semi3lib.study.runner import check_seeds, refresh_scores

        rows = [plan.row(name) for name in args.only] if args.only else plan.rows
        if args.seeds:
            check_seeds(plan, rows, set(args.seeds))
        for row in rows:
            for seed in plan.seeds_of(row):
                if (args.seeds and seed not in args.seeds) or not plan.record_path(row, seed).is_file():
                    continue
                refresh_scores(plan, row, seed, args.overrides, progress=not args.quiet)
                print(f"{row.name} seed {seed}: scored again, every recorded score unchanged", flush=True)
        return 0
    if args.summary_only:
        table = write_summary(plan.out_dir, order=[row.name for row in plan.rows], split=plan.split)
    else:
        table = run_study(plan, only=args.only, seeds=args.seeds, extra=args.overrides, progress=not args.quiet)
    if table is None:
        print(f"no records in {plan.out_dir} yet")
    else:
        print(f"scored on the {plan.split} split")
        print(table.round(4).to_string())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="run the reproduction study: every row of a plan for every seed")
    p.add_argument("--plan", default="configs/study-sketchy-mini.yaml", help="study plan (YAML)")
    p.add_argument("--only", nargs="+", metavar="ROW", help="run only these rows")
    p.add_argument("--seeds", nargs="+", type=int_at_least(0), metavar="SEED",
                   help="run only these of a row's seeds (the plan's, or the row's own); other seeds are refused")
    p.add_argument("--list", action="store_true", help="list the rows and how many seeds are done, run nothing")
    p.add_argument("--summary-only", action="store_true", help="rewrite summary.csv from the records, run nothing")
    p.add_argument("--markdown", action="store_true",
                   help="print the records as a Markdown table (mean ± std over seeds), run nothing")
    p.add_argument("--per-run", action="store_true",
                   help="print one line per run (seed, minutes, mAP@all, hardware) as Markdown, run nothing")
    p.add_argument("--host-effect", action="store_true",
                   help="set the plan's records beside the committed runs of chapter 4's config and seed, one line "
                        "per kind of host, with the host effect and the seed spread (configs/host-check.yaml); run nothing")
    p.add_argument("--refresh-scores", action="store_true",
                   help="score the recorded runs again from their saved models (a baseline or rescore row: run "
                        "again) and keep what today's scoring adds, e.g. an instance run's per-query ranks; "
                        "refused if any recorded score changes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="applied to every row after its own overrides (e.g. train.device=cuda)")
    p.set_defaults(func=cmd_study)
