"""Write overhead of ``@publish`` (scenario 5): a decorated model against its undecorated twin.

Two ways of writing N objects, each timed for both models:
- ``save``: ``with transaction.atomic(): obj.save()`` per object, one transaction each (the figure of
  issue 6, ``write.save_ratio``: the decorated save adds one outbox INSERT to that transaction);
- ``bulk``: one ``bulk_create`` of N objects (``write.bulk_ratio``: plus one bulk INSERT of N outbox rows).
(``_write`` also knows ``autocommit``, a bare ``obj.save()``: left out of the run to keep it short.)
The variants alternate, and which model goes first alternates between repeats.
"""

from __future__ import annotations

import time
from typing import Any

from bench.context import Context
from bench.results import Figures

KINDS = ("save", "bulk")

# --- in the worker -----------------------------------------------------------------------------------


def _write(model: Any, kind: str, rows: int) -> float:
    from django.db import transaction

    objs = [model(field_one=f"one {i}", field_two=f"two {i}") for i in range(rows)]
    started = time.perf_counter()
    if kind == "bulk":
        model.objects.bulk_create(objs)
    elif kind == "save":
        for obj in objs:
            with transaction.atomic():
                obj.save()
    else:
        for obj in objs:
            obj.save()
    return time.perf_counter() - started


def measure(rows: int, decorated_first: bool) -> dict[str, float]:
    from bench import db
    from bench.benchapp.models import Decorated, Plain
    from django_outbox_pattern.models import Published

    order = (Decorated, Plain) if decorated_first else (Plain, Decorated)
    out: dict[str, float] = {}
    for kind in KINDS:
        for model in order:
            db.truncate()
            out[f"{model.__name__.lower()}_{kind}_s"] = _write(model, kind, rows)
            if model is Decorated:
                out[f"outbox_rows_{kind}"] = Published.objects.count()
    db.truncate()
    return out


# --- in the orchestrator -----------------------------------------------------------------------------


def run(ctx: Context, figures: Figures, db: str = "postgres") -> None:
    rows = ctx.params.write_rows
    ratios: dict[str, list[float]] = {kind: [] for kind in KINDS}
    speeds: dict[str, list[float]] = {}
    for repeat in range(ctx.params.repeat):
        result: dict[str, Any] = ctx.worker(db).call(
            "bench.write:measure", rows=rows, decorated_first=repeat % 2 == 0
        )
        for kind in KINDS:
            if result[f"outbox_rows_{kind}"] != rows:
                figures.errors["write"] = (
                    f"{kind}: {result[f'outbox_rows_{kind}']} outbox rows for {rows} objects"
                )
            ratios[kind].append(result[f"decorated_{kind}_s"] / result[f"plain_{kind}_s"])
            for variant in ("plain", "decorated"):
                speeds.setdefault(f"{variant}_{kind}", []).append(rows / result[f"{variant}_{kind}_s"])
        ctx.log(f"write #{repeat + 1} {db}", **{f"{kind}_ratio": ratios[kind][-1] for kind in KINDS})
    figures.add("write.save_ratio", ratios["save"], unit="ratio")
    figures.add("write.bulk_ratio", ratios["bulk"], unit="ratio")
    for key, values in speeds.items():
        figures.add(f"write.{key}_rows_per_s", values, unit="rows/s")
    figures.set("write.rows", rows)
    figures.set("write.database", db)
