"""Daily multi-cloud cost: AWS, GCP and Azure billing, normalised to FOCUS 1.2, analysed and reported.

Runs at 06:00 UTC and covers the previous UTC day plus the days before it that clouds still restate
(``cost.restatement_days``, or ``lookback_days`` in the trigger form). The first run, when nothing is stored
yet, loads ``cost.history_days`` (90) so that its report has a baseline. It starts paused: unpause it once
the catalogue's ``cost.sources`` name working connections. One
extract task per cloud pulls the window into day partitions; each cloud's rows are normalised and reconciled
against the source's own totals; the report (HTML and JSON, next to the data, and under Browse > Cost report
in this UI) shows cost per cloud, region and service, top movers, anomalies, savings and budgets. Every task
replaces whole day partitions, so reruns, catchup and ``airflow backfill create`` give the same result.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from include.airflow.defaults import COST_API_POOL, START_DATE, default_args
from include.airflow.failures import permanent_errors_fail_task
from include.catalogue import load_catalogue

CATALOGUE = load_catalogue()  # a local file: no network at parse time
COST = CATALOGUE.cost
PROVIDERS = COST.sources.providers if COST else []


def _day_covered(logical_date) -> str:
    """A run at 06:00 UTC on day D reports on day D - 1, the last complete UTC day."""
    return (pendulum.instance(logical_date).in_timezone("UTC") - timedelta(days=1)).date().isoformat()


@dag(
    dag_id="cost_report",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    start_date=pendulum.datetime(COST.start_date.year, COST.start_date.month, COST.start_date.day, 6, tz="UTC")
    if COST
    else START_DATE,
    catchup=COST.catchup if COST else False,
    max_active_runs=1,  # runs overlap in the days they restate
    is_paused_upon_creation=True,
    tags=["cost", "finops"],
    doc_md=__doc__,
    default_args=default_args(retries=3, retry_delay=timedelta(minutes=2), max_retry_delay=timedelta(minutes=30)),
    params={
        "lookback_days": Param(
            COST.restatement_days if COST else 3,
            type="integer",
            minimum=1,
            maximum=400,
            title="Days to (re)load",
            description="The reported day and the days before it: clouds restate the last few days. "
            "A first run loads cost.history_days whatever this says.",
        ),
    },
)
def cost_report():
    @task(multiple_outputs=False)
    def plan(params: dict, logical_date=None, dag=None, dag_run=None) -> dict:
        """The day this run reports on and the days it (re)loads."""
        from datetime import date

        from include.airflow.run_conf import check_conf_fields
        from include.cost.pipeline import days_to_load

        with permanent_errors_fail_task():
            check_conf_fields(dag_run.conf, dag.params)

        day = date.fromisoformat(_day_covered(logical_date))
        days = days_to_load(load_catalogue(), day, params["lookback_days"])
        print(f"reporting on {day}; (re)loading {days[0]}..{days[-1]} from {', '.join(PROVIDERS)}")
        return {"day": day.isoformat(), "days": [d.isoformat() for d in days]}

    @task(multiple_outputs=False, pool=COST_API_POOL, execution_timeout=timedelta(hours=1))
    def extract(provider: str, window: dict, run_id=None) -> dict:
        """One cloud's billing API for the window, into day partitions of source rows."""
        from datetime import date

        from include.cost.pipeline import extract_window

        days = [date.fromisoformat(d) for d in window["days"]]
        with permanent_errors_fail_task():
            return extract_window(load_catalogue(), provider, days, run_id)

    @task(multiple_outputs=False, execution_timeout=timedelta(hours=1))
    def normalise(extracted: dict, run_id=None) -> dict:
        """The cloud's source partitions to FOCUS 1.2, reconciled against the source's totals."""
        from datetime import date

        from include.cost.pipeline import normalise_window

        days = [date.fromisoformat(d) for d in extracted["days"]]
        with permanent_errors_fail_task():
            return {**normalise_window(load_catalogue(), extracted["provider"], days, run_id), "extracted": extracted}

    @task(multiple_outputs=False, execution_timeout=timedelta(minutes=10))
    def sample_utilisation() -> dict:
        """Used CPU and memory of the workloads that expose them, for right-sizing."""
        from include.cost.utilisation import sample_workloads

        catalogue = load_catalogue()
        return sample_workloads(catalogue, catalogue.cost.utilisation_window_seconds if catalogue.cost else 10)

    @task(multiple_outputs=False, execution_timeout=timedelta(minutes=30))
    def report(window: dict, normalised: list[dict], utilisation: dict) -> dict:
        """Analyse 90 days up to the reported day and write the HTML and JSON report next to the data."""
        from datetime import date

        from include.cost.pipeline import build_daily_report, report_summary

        notes = [note for result in normalised for note in result["extracted"]["notes"] + result["notes"]]
        built = build_daily_report(load_catalogue(), date.fromisoformat(window["day"]), utilisation, notes)
        summary = report_summary(load_catalogue(), built)
        print(summary["headline"])
        return summary

    @task(retries=2)
    def send_budget_alerts(summary: dict) -> int:
        """Post the budget and anomaly alerts to the cost webhook (and the log)."""
        from include.cost.pipeline import send_cost_alerts

        return send_cost_alerts(load_catalogue(), summary["alerts"])

    planned = plan()
    extracted = extract.partial(window=planned).expand(provider=PROVIDERS)
    summary = report(planned, normalise.expand(extracted=extracted), sample_utilisation())
    send_budget_alerts(summary)


cost_report()
