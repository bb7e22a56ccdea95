"""The REST API reference of the platform's triggerable DAGs, generated from the DAGs themselves.

A DAG is triggerable by users when it declares ``Param``s; its conf's JSON schema is built from them, as
Airflow validates a triggered run's conf (``POST /api/v2/dags/{dag_id}/dagRuns`` answers 400 when a field
breaks its schema). ``python -m include.airflow.api_reference`` loads ``dags/`` with a ``DagBag`` and the
default catalogue (``config/regions.yaml``, whose region names the schemas list) and writes:

- ``docs/api/dags/<dag_id>.schema.json``, one per triggerable DAG;
- the generated parts of ``docs/api/dags.md``: each DAG's field table, and the curl request and measured
  response of every example in ``docs/api/dags/examples.json``, between ``<!-- generated: ... -->`` and
  ``<!-- end generated -->`` markers (the prose around them is written by hand).

``tests/dags/test_api_reference.py`` fails when a checked-in file differs from what this generates, and
``tests/integration/test_api_reference_dags.py`` sends every example to a real API server.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from include.catalogue import CATALOGUE_ENV, DEFAULT_CATALOGUE, REPO_ROOT
from include.errors import quoted

DAGS_FOLDER = REPO_ROOT / "dags"
REFERENCE_DIR = REPO_ROOT / "docs" / "api" / "dags"
PAGE = REPO_ROOT / "docs" / "api" / "dags.md"
EXAMPLES = REFERENCE_DIR / "examples.json"
REGENERATE = "python -m include.airflow.api_reference"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the draft Airflow's jsonschema validates with
API_URL = "http://127.0.0.1:8080"  # the local platform's API server, as the examples address it
TOKEN_VARIABLES = {"admin": "$TOKEN", "viewer": "$VIEWER_TOKEN", "expired": "$EXPIRED_TOKEN"}
GENERATED = re.compile(
    r"(<!-- generated: (?P<kind>fields|examples) (?P<name>[\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S
)


def triggerable_dags(dag_folder: Path = DAGS_FOLDER) -> dict:
    """``{dag_id: dag}`` of every DAG in ``dag_folder`` that declares Params, parsed as the dag-processor does."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG files failed to import: {bag.import_errors}")
    return {dag_id: dag for dag_id, dag in sorted(bag.dags.items()) if dag.params}


def conf_schema(dag) -> dict:
    """The JSON schema of ``dag``'s conf: one property per Param (its schema, description and default); a Param
    without a default is required."""
    from airflow.sdk.definitions._internal.types import is_arg_set

    properties, required = {}, []
    for name, param in dag.params.items():
        prop = dict(param.schema)
        if param.description:
            prop["description"] = param.description
        if is_arg_set(param.value):
            prop["default"] = param.value
        else:
            required.append(name)
        properties[name] = prop
    summary = (dag.doc_md or "").strip().split("\n\n")[0].replace("\n", " ")
    return {
        "$schema": SCHEMA_DIALECT,
        "title": f"conf of {dag.dag_id}",
        "description": summary,
        "type": "object",
        "properties": properties,
        "required": required,
    }


def _cell(value: object) -> str:
    return "`" + json.dumps(value) + "`"


def fields_table(dag_id: str, schema: dict) -> str:
    """The Markdown table of a conf schema's fields, with a link to the schema file."""
    lines = [
        f"Schema: [{dag_id}.schema.json](dags/{dag_id}.schema.json).",
        "",
        "| Field | Type | Required | Default | Rules | Description |",
        "|---|---|---|---|---|---|",
    ]
    for name, prop in schema["properties"].items():
        rules = "; ".join(
            f"{key} {_cell(value)}"
            for key, value in prop.items()
            if key not in ("type", "title", "description", "default")
        )
        kind = prop.get("type", "any")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        required = "yes" if name in schema["required"] else "no"
        default = _cell(prop["default"]) if "default" in prop else ""
        lines.append(f"| `{name}` | {kind} | {required} | {default} | {rules} | {prop.get('description', '')} |")
    return "\n".join(lines) + "\n"


def load_examples(path: Path = EXAMPLES) -> list[dict]:
    """The examples of ``docs/api/dags/examples.json``, in the order they are sent."""
    return json.loads(path.read_text())["examples"]


def example_path(example: dict) -> str:
    """The path an example's request goes to: its own ``path``, or its DAG's trigger endpoint."""
    return example.get("path") or f"/api/v2/dags/{example['dag_id']}/dagRuns"


def curl_command(example: dict) -> str:
    """The curl command of an example's request, against the local platform's API server."""
    body = json.dumps(example["body"])
    if "'" in body:
        raise ValueError(f"example {example['id']}: its body cannot be quoted for the shell: {quoted(body)}")
    lines = [f'curl -s -X POST "{API_URL}{example_path(example)}" \\']
    if example["user"] is not None:
        lines.append(f'  -H "Authorization: Bearer {TOKEN_VARIABLES[example["user"]]}" \\')
    lines.append("  -H 'Content-Type: application/json' \\")
    lines.append(f"  -d '{body}'")
    return "\n".join(lines)


def render_example(example: dict) -> str:
    """One example as the page shows it: its title, the curl command, the status and the response body."""
    response = f"```json\n{json.dumps(example['response'], indent=2)}\n```\n"
    if example["status"] == 200:  # the new run, long and alike for every DAG: folded
        response = f"<details><summary>The run created (HTTP 200)</summary>\n\n{response}\n</details>\n"
    text = (
        f"**{example['title']}** (`{example['id']}`): HTTP {example['status']}\n\n"
        f"```bash\n{curl_command(example)}\n```\n\n{response}"
    )
    detail = example["response"].get("detail") if isinstance(example["response"], dict) else None
    if isinstance(detail, str) and "\n" in detail:
        text += f"\n`detail` as text:\n\n```text\n{detail}\n```\n"
    return text


def render_page(page: str, schemas: dict[str, dict], examples: list[dict]) -> str:
    """``page`` with every generated part replaced: ``fields <dag_id>`` and ``examples <section>``."""

    def replace(match: re.Match) -> str:
        name = match["name"]
        if match["kind"] == "fields":
            if name not in schemas:
                raise ValueError(f"{PAGE.name}: no triggerable DAG {quoted(name)} for its fields table")
            content = fields_table(name, schemas[name])
        else:
            shown = [example for example in examples if example["section"] == name]
            if not shown:
                raise ValueError(f"{PAGE.name}: no example in section {quoted(name)}")
            content = "\n".join(render_example(example) for example in shown)
        return match.group(1) + "\n" + content + "\n" + match.group(5)

    return GENERATED.sub(replace, page)


def generated_files(dag_folder: Path = DAGS_FOLDER) -> dict[Path, str]:
    """Every file this reference generates, with the text it should have now."""
    schemas = {dag_id: conf_schema(dag) for dag_id, dag in triggerable_dags(dag_folder).items()}
    files = {
        REFERENCE_DIR / f"{dag_id}.schema.json": json.dumps(schema, indent=2) + "\n"
        for dag_id, schema in schemas.items()
    }
    files[PAGE] = render_page(PAGE.read_text(), schemas, load_examples())
    return files


def main() -> int:
    """Write the schema files and the generated parts of the page; print what changed."""
    os.environ[CATALOGUE_ENV] = str(DEFAULT_CATALOGUE)  # the reference documents the default catalogue's regions
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in generated_files().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
