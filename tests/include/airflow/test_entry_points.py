"""The platform's UI plugins reach Airflow through their ``airflow.plugins`` entry points, not a path."""

from __future__ import annotations

from importlib.metadata import distribution
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

DISTRIBUTION = "multi-region-ml-platform"
EXPECTED = {
    "replication_status": "include.airflow.ui.replication_status:ReplicationStatusPlugin",
    "cost_report": "include.airflow.ui.cost_report:CostReportPlugin",
    "platform_view": "include.airflow.ui.platform_view:PlatformViewPlugin",
}


def platform_entry_points():
    return [ep for ep in distribution(DISTRIBUTION).entry_points if ep.group == "airflow.plugins"]


def test_installing_the_project_registers_every_ui_plugin():
    assert {ep.name: ep.value for ep in platform_entry_points()} == EXPECTED


def test_every_entry_point_loads_a_plugin_of_its_own_name():
    for entry_point in platform_entry_points():
        plugin_class = entry_point.load()
        assert issubclass(plugin_class, AirflowPlugin), entry_point.value
        assert plugin_class.name == entry_point.name


def test_airflow_loads_each_plugin_from_its_entry_point():
    """Airflow's plugin manager loads them with an entry-point source, from an empty plugins folder."""
    from airflow import plugins_manager, settings

    assert not list(Path(settings.PLUGINS_FOLDER).rglob("*.py"))
    plugins, import_errors = plugins_manager._get_plugins()
    by_name = {plugin.name: plugin for plugin in plugins}
    for name, value in EXPECTED.items():
        assert value.split(":")[0] not in import_errors
        source = by_name[name].source
        assert type(source).__name__ == "EntryPointSource"
        assert source.dist == DISTRIBUTION
