"""``riskmon eval nab|skab``: detection quality on the public benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from rules.spec import AnomalyRule


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    ev = sub.add_parser("eval", help="evaluate detection on NAB or SKAB", formatter_class=fmt)
    which = ev.add_subparsers(dest="benchmark", required=True)
    nab = which.add_parser(
        "nab", help="NAB: per-file scores and the three NAB profiles", formatter_class=fmt
    )
    nab.add_argument("--data", type=Path, required=True, help="NAB data folder")
    nab.add_argument("--labels", type=Path, required=True, help="combined_windows.json")
    nab.add_argument("--out", type=Path, required=True, help="folder for per-file scores")
    nab.add_argument(
        "--threshold", type=float, default=None, help="fixed threshold (default: NAB's sweep)"
    )
    nab.add_argument("--rule", type=Path, default=None, help="YAML of an anomaly rule")
    _cv_arguments(nab, "category")
    skab = which.add_parser(
        "skab", help="SKAB: per-row predictions, F1, FAR and MAR", formatter_class=fmt
    )
    skab.add_argument("--data", type=Path, required=True, help="SKAB data folder")
    skab.add_argument("--out", type=Path, required=True, help="folder for per-row predictions")
    skab.add_argument("--rule", type=Path, default=None, help="YAML of an anomaly rule")
    _cv_arguments(skab, "folder")
    scn = which.add_parser(
        "scenarios", help="ground-truth scenarios through the real pipeline", formatter_class=fmt
    )
    scn.add_argument("dir", nargs="?", type=Path, default=None, help="folder or one YAML file")


def _cv_arguments(parser: argparse.ArgumentParser, group: str) -> None:
    parser.add_argument(
        "--cv",
        action="store_true",
        help=f"leave one {group} out: choose among the variants on the others, score the held-out",
    )
    parser.add_argument(
        "--variants", default=None, help="--cv: comma-separated variant names (default: all)"
    )
    parser.add_argument("--workers", type=int, default=2, help="--cv: replays run at a time")


def _variants(chosen: str | None, known: dict[str, AnomalyRule]) -> dict[str, AnomalyRule]:
    if chosen is None:
        return known
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"unknown variant {unknown or chosen!r}; known: {', '.join(known)}")
    return {n: known[n] for n in names}


def _cv(args: argparse.Namespace) -> int:
    from monitor.evaluation import cv, nab, skab

    if args.rule is not None:
        raise SystemExit("--cv chooses among its own variants; --rule does not apply")
    if args.benchmark == "nab":
        variants = _variants(args.variants, nab.NAB_VARIANTS)
        reports = nab.cross_validate(args.data, args.labels, variants, args.workers)
        for profile, (report, pooled) in reports.items():
            print(f"\nNAB {profile}, leave one category out:")
            print(cv.format_report(report))
            print(f"pooled held-out score (every category, its own fold's choice): {pooled:.2f}")
        return 0
    variants = _variants(args.variants, skab.SKAB_VARIANTS)
    report = skab.cross_validate(args.data, variants, args.workers)
    print("\nSKAB F1, leave one folder out (parameter: the rule's threshold):")
    print(cv.format_report(report))
    return 0


def _rule(path: Path | None, default: AnomalyRule) -> AnomalyRule:
    if path is None:
        return default
    return AnomalyRule.model_validate(yaml.safe_load(path.read_text()))


def _scenarios(where: Path | None) -> int:
    import asyncio

    from monitor.evaluation import scenarios

    where = where or scenarios.SCENARIOS_DIR
    paths = sorted(where.glob("*.yaml")) if where.is_dir() else [where]
    if not paths:
        raise SystemExit(f"no scenario files in {where}")
    print(f"{len(paths)} scenarios on an accelerated clock through the pipeline:")
    reports = asyncio.run(scenarios.run_all(paths))
    print(scenarios.format_report(reports))
    return 0 if all(r.ok for r in reports) else 1


def run(args: argparse.Namespace) -> int:
    if args.benchmark == "scenarios":
        return _scenarios(args.dir)
    if getattr(args, "cv", False):
        return _cv(args)
    if args.benchmark == "nab":
        from monitor.evaluation import nab

        results = nab.run(
            args.data, args.labels, args.out, args.threshold, _rule(args.rule, nab.NAB_RULE)
        )
        print(f"NAB scores ({'fixed' if args.threshold is not None else 'swept'} threshold):")
        for profile, (threshold, score) in results.items():
            print(f"  {profile:20s} {score:7.2f}   threshold {threshold:.6f}")
        print(f"per-file scores in {args.out}")
        return 0
    else:
        from monitor.evaluation import skab

        m = skab.run(args.data, args.out, _rule(args.rule, skab.SKAB_RULE))
        print(
            f"SKAB (test rows of every file, pooled): F1 {m.f1:.2f}  FAR {m.far:.2f} %  "
            f"MAR {m.mar:.2f} %   (TP {m.tp}, FP {m.fp}, FN {m.fn}, TN {m.tn})"
        )
        print(f"per-row predictions in {args.out}")
        return 0
