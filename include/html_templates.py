"""HTML pages drawn from a package's Jinja2 templates, with one environment set up the same way for each."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined


def template_environment(package: str, filters: dict[str, Callable]) -> Environment:
    """The templates in ``package``'s ``templates/`` folder: every value HTML-escaped, an undefined name an error,
    block tags leaving no blank lines; ``filters`` added to Jinja's own."""
    environment = Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(filters)
    return environment
