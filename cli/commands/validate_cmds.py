"""``aicap validate`` (error table against measurements) and ``aicap calibrate`` (fit factors)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aicap.cli.render import Format, FormatOpt, Table, View, emit, progress
from aicap.cli.state import STATE, catalogue, guarded, info

if TYPE_CHECKING:
    from aicap.sizing.core.catalogue import CatalogueLike


def _summary_rows(summary: dict[str, dict[str, float]]) -> list[list[Any]]:
    return [[g, int(s["n"]), round(s["median"], 1), round(s["p90"], 1), round(s["max"], 1)] for g, s in summary.items()]


def _warn_near_miss_fields(path: Path, loaded: list[dict[str, Any]]) -> None:
    """Warn of a case field that is not read but is one letter or so from one that is (``tpp`` for ``tp``).

    Fields aicap does not read are kept (sources, notes), so a misspelt one would be silently ignored.
    """
    import difflib

    from aicap.sizing.calibrate.case import Case

    known = set(Case.model_fields)
    for case in loaded:
        for key in case:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.8) if key not in known else []
            if near:
                info(f"aicap: warning: {path}: case '{case.get('id')}': field '{key}' is not read; did you mean '{near[0]}'?")
                return


def _validate_training(write_factors: Path | None, fmt: Format) -> None:
    """Score the training model in-sample and leave-one-source-out; optionally refit and write its factors."""
    import datetime as dt

    from aicap.sizing.calibrate.training import factors_document, fit_factors, leave_one_source_out, measured_families, score_all, summarise
    from aicap.sizing.calibrate.training_cases import load_cases
    from aicap.sizing.train.factors import load_factors

    cat = catalogue()
    cases = load_cases(cat)
    shipped = load_factors()
    scores, unscored = score_all(cases, cat, shipped)
    loso = leave_one_source_out(cases, cat, shipped)
    ins, out = summarise(scores), summarise(loso)
    rows = [[s.case, s.source, s.metric, round(s.measured, 4), round(s.predicted, 4), round(100 * s.error, 1)] for s in scores]
    summary_rows = [[k, "in-sample", v.n, round(v.median_pct, 1), round(v.p90_pct, 1), round(v.max_pct, 1)] for k, v in ins.items()]
    summary_rows += [
        [k, "leave-one-source-out", v.n, round(v.median_pct, 1), round(v.p90_pct, 1), round(v.max_pct, 1)] for k, v in out.items()
    ]
    doc = {
        "schema_version": 1,
        "cases_file": "hardware_db/validation/training_cases.yaml (built in)",
        "factors": shipped.model_dump(mode="json", exclude={"source", "accuracy"}),
        "rows": [dict(zip(["case", "source", "metric", "measured", "predicted", "abs_error_pct"], r, strict=True)) for r in rows],
        "summary": {"in_sample": {k: vars(v) for k, v in ins.items()}, "leave_one_source_out": {k: vars(v) for k, v in out.items()}},
        "unscored": [{"case": u.case, "reason": u.reason} for u in unscored],
    }
    tables = [
        Table("Training model: predicted vs measured (absolute % error; fits: 0 right, 100 wrong)",
              ["case", "source", "metric", "measured", "predicted", "error_%"], rows),
        Table("Training model error", ["metric class", "fit", "n", "median_%", "p90_%", "max_%"], summary_rows,
              "leave-one-source-out: the factors are refitted without each source and that source is predicted"),
        Table("Cases not scored", ["case", "reason"], [[u.case, u.reason] for u in unscored]),
    ]  # fmt: skip
    emit(View(doc, tables), fmt)
    if write_factors is not None:
        from aicap.cli.files import write_atomic

        fitted = fit_factors(cases, cat, shipped)
        fitted_scores = score_all(cases, cat, fitted)[0]
        text = factors_document(fitted, fitted_scores, loso, dt.date.today().isoformat(), measured_families(cases, fitted_scores))
        write_atomic(write_factors, text)
        info(f"aicap: wrote training factors to {write_factors}")


def _engine_factor_table(cases: list[dict[str, Any]], cat: CatalogueLike, doc: dict[str, Any]) -> Table:
    """Fit the engines' memory multipliers on ``cases`` (progress on stderr), record them in ``doc`` and tabulate them."""
    import datetime as dt

    from aicap.sizing.calibrate.engine_factors import fit_engine_factors

    fits = fit_engine_factors(cases, cat, progress=lambda m: info(f"aicap: fitting {m}"))
    today = dt.date.today().isoformat()
    doc["engine_factors"] = [{"engine": f.engine, "family": f.family, "runs": f.cases, "metrics": f.metrics, "optimum": f.fitted,
                              "memory": f.multiplier, "median_error_before_pct": round(f.median_before_pct, 1),
                              "median_error_after_pct": round(f.median_after_pct, 1), "optimum_by_source": f.by_source,
                              "source_note": f"{f.source_note()}; {today}"} for f in fits]  # fmt: skip
    return Table("Engine multipliers on memory efficiency (median over sources, shrunk by S/(S + 2) toward 1; put them in the engine's `factors`)",
                 ["engine", "family", "runs", "metrics", "median optimum", "memory", "median % at x1", "median % fitted", "optimum by source"],
                 [[f.engine, f.family, f.cases, f.metrics, f.fitted, f.multiplier, round(f.median_before_pct, 1),
                   round(f.median_after_pct, 1), ", ".join(f"{s} x{m:g}" for s, m in sorted(f.by_source.items()))] for f in fits])  # fmt: skip


def _check_case_ids(cases: list[dict[str, Any]], cat: CatalogueLike, path: Path) -> None:
    """Refuse a case whose device or model id the catalogue lacks, at its line with the ids it may have meant.

    Calibration skips a case it cannot predict; a misspelt id (``l40x``) then left nothing to fit, and the error said only
    "unknown device or model ids" for the whole file.
    """
    from aicap.sizing.core.doc_errors import located
    from aicap.sizing.core.errors import InputError, UnknownIdError

    for c in cases:
        for look, value in ((cat.device, c.get("hardware")), (cat.model, c.get("model"))):
            try:
                look(str(value))
            except UnknownIdError as exc:
                raise InputError(f"{_row_of(path, str(value)) or located(path, str(exc))}: {exc}") from None


def _row_of(path: Path, value: str) -> str | None:
    """``path:line`` of the first CSV row holding ``value`` as a whole field (``None`` for other files, or none)."""
    if path.suffix.lower() != ".csv":
        return None
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return next((f"{path}:{k}" for k, line in enumerate(lines, start=1) if value in (f.strip() for f in line.split(","))), None)


def register(app: typer.Typer) -> None:
    """Add ``validate`` and ``calibrate`` to the root app."""

    @app.command("validate")
    @guarded
    def validate_cmd(
        cases: Annotated[Path | None, typer.Argument(help="Cases file: a YAML list of cases, or a CSV with one row per measured metric (`aicap schema cases`, `aicap calibrate --help`); default: the public cases shipped with aicap.")] = None,
        case_set: Annotated[str, typer.Option("--set", help="Shipped cases to score without a file: published (no load), server (under load: simulated), all, or training (training and fine-tuning runs).")] = "published",
        write_bands: Annotated[Path | None, typer.Option("--write-bands", help="Write the error bands (p90 per metric class, of the shipped cases without load and under load) to this YAML file.")] = None,
        write_factors: Annotated[Path | None, typer.Option("--write-factors", help="With --set training: refit the training factors and write the factors file here.")] = None,
        fit_overheads: Annotated[bool, typer.Option("--fit-overheads", help="With --set server or all: fit each engine's per-request overhead on its cases under load (median TTFT residual) and check it leave-one-source-out.")] = False,
        fit_engine_factors: Annotated[bool, typer.Option("--fit-engine-factors", help="With --set server or all: fit each engine's multiplier on its device families' memory efficiency on its runs under load (simulated; a minute or two).")] = False,
        fmt: FormatOpt = Format.table,
    ) -> None:  # fmt: skip
        """Score the performance model against measured cases: per-case error, then median/p90/max per kind and hardware."""
        from aicap.cli.files import check_writable
        from aicap.sizing.calibrate.accuracy import bands_document
        from aicap.sizing.calibrate.validation import CASE_SETS, load_cases, score
        from aicap.sizing.core.errors import InputError

        for flag, target in (("--write-bands", write_bands), ("--write-factors", write_factors)):
            if target is not None:  # before the minutes of scoring, not after
                check_writable(target, flag)
        if case_set == "training":
            if cases is not None or write_bands is not None:
                raise InputError("--set training scores the shipped training cases; it takes no cases file or --write-bands")
            for flag, on in (("--fit-overheads", fit_overheads), ("--fit-engine-factors", fit_engine_factors)):
                if on:  # it printed the training table and fitted nothing
                    raise InputError(f"{flag} fits on the shipped cases under load: use it with --set server or --set all, "
                                     "not --set training (its factors: --write-factors)")  # fmt: skip
            _validate_training(write_factors, fmt)
            return
        if write_factors is not None:
            raise InputError("--write-factors needs --set training")
        for flag, on in (("--fit-overheads", fit_overheads), ("--fit-engine-factors", fit_engine_factors)):
            if on and (cases is not None or case_set not in ("server", "all")):
                raise InputError(f"{flag} fits on the shipped cases under load: use it with --set server or --set all")
        if case_set not in (*CASE_SETS, "all"):
            raise InputError(f"--set {case_set!r}: valid: {', '.join(CASE_SETS)}, all, training")
        if cases is not None and case_set != "published":
            raise InputError("give a cases file or --set, not both")
        if cases is not None and write_bands is not None:
            raise InputError("--write-bands scores the shipped cases, with and without load; it takes no cases file")
        cat = catalogue()
        which = list(CASE_SETS) if case_set == "all" else [case_set]
        loaded = load_cases(cases) if cases is not None else [c for w in which for c in load_cases(which=w)]
        if cases is not None and not loaded:
            raise InputError(f"{cases}: no cases in the file (a YAML list of cases, or CSV rows of id, fields, metric, value)")
        with progress(len(loaded), "scoring cases", enabled=not STATE.quiet) as tick:
            report = score(loaded, cat, advance=tick)
        skipped = {r.case_id: r.note for r in report.rows if r.predicted is None and r.note.startswith("skipped")}
        if cases is not None and skipped:  # unscored cases stay in the table (and exit 0, for held-out sets naming other models)
            first, why = next(iter(skipped.items()))
            info(f"aicap: warning: {len(skipped)} of {len({c['id'] for c in loaded})} cases in {cases} not scored; first, "
                 f"'{first}': {why.removeprefix('skipped: ').split('; valid ')[0].split(' valid ')[0]}")  # fmt: skip
        if cases is not None:
            _warn_near_miss_fields(cases, loaded)
        rows = [[r.case_id, r.kind, r.metric, r.measured, None if r.predicted is None else round(r.predicted, 4),
                 None if r.error_pct is None else round(r.error_pct, 1), r.note] for r in report.rows]  # fmt: skip
        by_kind, by_hw, by_class = report.summary("kind"), report.summary("hardware"), report.summary("class")
        doc = {
            "schema_version": 1,
            "cases_file": str(cases) if cases else ", ".join(f"{CASE_SETS[w]} (built in)" for w in which),
            "catalogue_version": cat.version,
            "rows": [dict(zip(["case", "kind", "metric", "measured", "predicted", "abs_error_pct", "note"], r, strict=True)) for r in rows],
            "summary": {"by_kind": by_kind, "by_hardware": by_hw, "by_metric_class": by_class},
        }
        cols = ["group", "n", "median_%", "p90_%", "max_%"]
        tables = [
            Table("Predicted vs measured (absolute % error)", ["case", "kind", "metric", "measured", "predicted", "error_%", "note"], rows),
            Table("Error by kind", cols, _summary_rows(by_kind)),
            Table("Error by hardware", cols, _summary_rows(by_hw)),
            Table("Error by metric class", cols, _summary_rows(by_class)),
        ]
        from aicap.sizing.calibrate.under_load import KNEE_FACTOR, knees

        predicted = {(r.case_id, r.metric): r.predicted for r in report.rows if r.predicted is not None}
        found = knees(loaded, predicted)
        if found:
            doc["knees"] = [{"sweep": k.sweep, "rates": list(k.rates), "measured_knee": k.measured, "predicted_knee": k.predicted,
                             "within_one_step": k.within_one_step} for k in found]  # fmt: skip
            tables.append(Table(f"Knee of each rate sweep (first rate whose TTFT exceeds {KNEE_FACTOR:g}x its lowest-rate TTFT)",
                                ["sweep", "rates (req/s)", "measured", "predicted", "within one step"],
                                [[k.sweep, ", ".join(f"{r:g}" for r in k.rates), k.measured, k.predicted,
                                  "yes" if k.within_one_step else "NO"] for k in found]))  # fmt: skip
        if fit_overheads:
            from aicap.sizing.calibrate.overheads import fit_overheads as fit

            fits = fit(loaded, report, cat)
            doc["request_overheads"] = [{"engine": f.engine, "overhead_ms": round(f.overhead_ms, 1), "cases": f.cases, "metrics": len(f.residuals),
                                         "sources": list(f.sources), "source_note": f.source_note(),
                                         "leave_one_source_out": {s: {"overhead_ms": round(o, 1), "in_sample_error_pct": round(a, 1),
                                                                      "out_of_sample_error_pct": round(b, 1)} for s, (o, a, b) in f.loso.items()}}
                                        for f in fits]  # fmt: skip
            tables.append(Table("Per-request overhead by engine (median TTFT residual; leave-one-source-out)",
                                ["engine", "overhead_ms", "cases", "metrics", "source", "without it (ms)", "TTFT error in / out of sample (%)"],
                                [[f.engine, round(f.overhead_ms, 1), f.cases, len(f.residuals), s, round(o, 1), f"{a:.1f} / {b:.1f}"]
                                 for f in fits for s, (o, a, b) in f.loso.items()]))  # fmt: skip
        if fit_engine_factors:
            tables.append(_engine_factor_table(loaded, cat, doc))
        if cases is not None and not report.scored:  # a gate must not read "0 cases" as a pass; exit 2 prints its one line only
            from aicap.sizing.core.doc_errors import located
            from aicap.sizing.core.errors import InputError

            reasons: dict[str, str] = {}  # each distinct reason once, with the first case it stopped
            for r in report.rows:
                reasons.setdefault(r.note.removeprefix("skipped: "), r.case_id)
            (reason, case_id), *others = reasons.items()
            more = f" (and {len(others)} other reason{'s' if len(others) > 1 else ''})" if others else ""
            n = len({r.case_id for r in report.rows})
            every = "its one case was skipped" if n == 1 else f"all {n:,} cases were skipped"
            raise InputError(f"{located(cases, repr(case_id))}: no case could be scored: {every}; case '{case_id}': {reason}{more}")
        emit(View(doc, tables), fmt)
        if write_bands is not None:
            from aicap.cli.files import write_atomic

            def bands(kind: str) -> tuple[dict[str, float], dict[str, float], int]:  # each set scored on its own
                rep = report if which == [kind] else score(load_cases(which=kind), cat)
                cls = rep.summary("class")
                return ({k: v["p90"] for k, v in cls.items() if k != "all"}, {k: v["median"] for k, v in cls.items() if k != "all"},
                        len(rep.scored))  # fmt: skip

            write_atomic(write_bands, bands_document(bands("published"), bands("server"), cat.version))
            info(f"aicap: wrote error bands (without load, and under load) to {write_bands}")

    @app.command("calibrate")
    @guarded
    def calibrate_cmd(
        measurements: Annotated[Path, typer.Argument(help="Your benchmark results: a YAML list of cases, or a CSV with one row per measured metric (columns id, model, hardware, kind, metric, value and the setup: devices, tp, weights_dtype, input_tokens, output_tokens, batch, ...; `aicap schema cases`).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Overlay file to write (use it with --catalog).")] = Path("aicap-efficiency.yaml"),
        fmt: FormatOpt = Format.table,
    ) -> None:  # fmt: skip
        """Fit efficiency factors per device family to measurements and write a catalogue overlay."""
        from aicap.cli.files import check_writable
        from aicap.sizing.calibrate.calibration import calibrate, overlay_yaml
        from aicap.sizing.calibrate.validation import load_cases
        from aicap.sizing.core.errors import InputError

        if output.suffix.lower() not in (".yaml", ".yml"):  # it wrote YAML into cal.csv (size -o refuses a format it does not write)
            raise InputError(f"--output {output}: the overlay is a YAML catalogue file (--catalog reads it): give a .yaml name")
        check_writable(output, "--output", [measurements, *STATE.catalogs])
        cat = catalogue()
        cases = load_cases(measurements)
        _check_case_ids(cases, cat, measurements)
        fits = calibrate(cases, cat, measurements.name, refine=True)
        if not fits:
            raise InputError(
                f"{measurements}: no case can be predicted (unknown device or model ids, or layouts that do not fit; "
                f"`aicap validate {measurements}` says why for each); nothing to fit"
            )
        from aicap.cli.files import write_atomic

        write_atomic(output, overlay_yaml(fits))
        info(f"aicap: wrote {output}; use it with --catalog {output}")
        for f in fits:
            if f.at_bound:
                info(f"aicap: warning: {f.family}: {', '.join(f.at_bound)} fitted to the end of its range: the measurements disagree "
                     f"with the model by more than a factor can absorb (check them with `aicap validate {measurements}`)")  # fmt: skip
        cols = ["family", "metrics", "compute", "compute_fp8", "memory", "step_overhead_ms", "kernel_latency_us", "exposed_share",
                "median_err_before_%", "median_err_after_%"]  # fmt: skip
        rows = [[f.family, f.metrics, f.after.compute, f.after.compute_fp8, f.after.memory, f.after.step_overhead_ms, f.after.kernel_latency_us,
                 f.after.exposed_share, round(f.median_error_before_pct, 1), round(f.median_error_after_pct, 1)] for f in fits]  # fmt: skip
        emit(View([dict(zip(cols, r, strict=True)) for r in rows], [Table("Fitted efficiency factors", cols, rows)]), fmt)
