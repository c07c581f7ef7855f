"""The README's generated blocks and those of the other pages."""

from __future__ import annotations

from semi3lib.study import bridge, headline
from semi3lib.study.rule import verdict_word
from semi3lib.book.generated.blocks import generator
from semi3lib.book.generated.inputs import Records, book_data, study_config
from semi3lib.book.generated.words import PART

@generator("readme-study")
def readme_study(records: Records) -> str:
    """The study's setting in one sentence (the README's Results section)."""
    config, data = study_config(records), book_data(records)
    split = data["split"]
    return (
        f"The reproduction study: every row trains the same EfficientNet-Lite0 (ImageNet weights, "
        f"{config['data']['image_size']} px, {config['train']['epochs']} epochs) on sketchy-mini's "
        f"{split['train']:,} training sketches and ranks all {split['gallery']:,} photos for {split['query']:,} "
        f"query sketches; mean ± std over seeds, best in bold. \"train min\" is the mean training time on 2 cores."
    )


@generator("readme-verdict")
def readme_verdict(records: Records) -> str:
    """The study's answer in one sentence, from the rule."""
    versus = records.compare("semi3net", "two-branch-ce")  # seed pairs on one kind of host only
    branch = records.compare("semi3net", "no-edgemap-branch")
    against = {1: "beats", 0: "is level with", -1: "is behind"}
    return (
        f"So on this data Semi3-Net as described {verdict_word(versus, against)} a plain two-branch network, "
        f"and its edgemap branch {verdict_word(branch, PART)}. The full table ({records.study['run'].nunique()} rows), "
        f"the tuning search on validation sketches, what each ablation says and how the hardware moves a score "
        f"are in the book's [results page](book/results.md) and [evaluation chapter](notebooks/05_evaluation.py); "
        f"[Paper vs. this book](book/paper-vs-book.md) puts each claim beside its measurement."
    )


@generator("readme-headline")
def readme_headline(records: Records) -> str:
    """The study's rows that say most, as a table, then three comparisons by the rule."""
    return headline.readme_headline(records.study)


@generator("readme-bridge-lead")
def readme_bridge_lead(records: Records) -> str:
    """The lead of chapter 9's findings: what is compared, on how many seeds."""
    return (f"**Where the bridge should help** ([chapter 9](notebooks/09_bridge.py); three networks with label "
            f"smoothing, {bridge.seeds_each(records.bridge)} each):")


@generator("bridge-findings")
def bridge_findings(records: Records) -> str:
    """Chapter 9's findings, setting by setting (the README and the results page)."""
    return bridge.findings(records.bridge)


@generator("training-time")
def training_time(records: Records) -> str:
    """How long the book's longest step, training chapter 4's model, takes on 2 cores."""
    runs = records.study[records.study["run"] == "semi3net"]
    minutes = runs["wall_seconds"] / 60
    return (f"Training chapter 4's model is most of `make book`'s time: {minutes.min():.0f} to "
            f"{minutes.max():.0f} minutes on 2 CPU cores in the study's {len(runs)} Semi3-Net runs.")


@generator("book-model")
def book_model(records: Records) -> str:
    """The model the search page runs: chapter 4's checkpoint, from its record."""
    record = records.json("book/cpu/04_training.json")
    config, gallery = record["config"], int(record["final_query_metrics"]["gallery"])
    return (f"The model is chapter 4's checkpoint: {config['model']['backbone']} at "
            f"{config['data']['image_size']} px, a {config['model']['embed_dim']}-d embedding, "
            f"{gallery:,} gallery photos.")


@generator("readme-doodles")
def readme_doodles(records: Records) -> str:
    """Chapter 5's doodle section in two sentences: the targets against the doodle records."""
    from semi3lib.study.doodles import doodle_findings, findings_text, load_doodle_records

    found = doodle_findings(load_doodle_records(records.root / "results" / "doodles"), records.seeds("semi3net"))
    held = found.before.metrics["doodles-held-out"]
    per_class = int(held["queries"]) // len(found.held_out_classes.split(","))
    return (f"**A doodle, not a sketch** ([chapter 5](notebooks/05_evaluation.py); real Quick, Draw! doodles, "
            f"{per_class:,} test doodles a class, against all {int(held['gallery']):,} photos): {findings_text(found)}")


@generator("readme-fine-grained")
def readme_fine_grained(records: Records) -> str:
    """Chapter 10 in a few sentences: the best network against the target, the rule's verdicts."""
    from semi3lib.study.fine_grained import fine_grained_findings, load_fine_grained, query_scope

    folder = records.root / "results" / "fine-grained"
    scope = query_scope(folder)
    where = (f"sketchy-fg10's {scope[0]:,} test sketches, each against the {scope[1]:,} test photos, its own among them"
             if scope else "sketchy-fg10")
    return (f"**Find this photo** ([chapter 10](notebooks/10_fine_grained.py); the paper's future work, {where}): "
            f"{fine_grained_findings(load_fine_grained(folder))}")


@generator("readme-why-edgemap")
def readme_why_edgemap(records: Records) -> str:
    """Chapter 11 in a few sentences: which mechanism of the edgemap branch carries its cost."""
    from semi3lib.study.why_edgemap import PLAN, PLAN_SEEDS, carried_in_short, load_why, missing_runs, why_findings

    folder = records.root / "results" / "why-edgemap"
    return (f"**The edgemap branch, taken apart** ([chapter 11](notebooks/11_why_edgemap.py); one mechanism out at a "
            f"time, {PLAN_SEEDS} paired seeds a row, one kind of host): "
            f"{why_findings(load_why(folder), missing_runs(folder, records.root / PLAN))} "
            f"{carried_in_short(records.root)}")
