"""The check every triggerable DAG's first task makes of its run's ``conf``.

Airflow validates each field the DAG declares as a ``Param`` before the run exists (the REST API answers 400,
the form refuses it), but it accepts a field the DAG does not declare and ignores it: a typo such as
``reigon`` would run with the default region. The first task calls ``check_conf_fields`` to refuse such a
conf at once, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from include.errors import InvalidConf, quoted


def check_conf_fields(conf: Mapping | None, declared: Iterable[str]) -> None:
    """Raise ``InvalidConf`` naming every field of ``conf`` that is not in ``declared`` (the DAG's params)."""
    names = sorted(declared)
    unknown = sorted(set(conf or {}) - set(names), key=str)
    if unknown:
        raise InvalidConf(
            f"conf field(s) {', '.join(quoted(name) for name in unknown)} not declared by this DAG; "
            f"its fields are {names}"
        )
