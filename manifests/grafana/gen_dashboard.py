#!/usr/bin/env python3
"""Writes raywarden-dashboard.json, the Grafana dashboard for raywarden and the KubeRay metric
names it keeps. The panels are listed here once, as data, so that a query is edited in one
place; dashboard_queries.py lists the queries of the written file for the tests.

  gen_dashboard.py            rewrite the file next to this script
  gen_dashboard.py --check    exit 1 when the committed file differs
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hack"))
import generated  # noqa: E402

OUT = os.path.join(HERE, "raywarden-dashboard.json")

DS = {"type": "prometheus", "uid": "${datasource}"}
# Selectors shared by the panels. Controller metrics name the RayCluster/RayService/RayJob in
# `name`; agent metrics carry the pod's RayCluster in `ray_cluster` (scrape relabelling).
NS = 'namespace=~"$namespace"'
CL = NS + ',name=~"$cluster"'
AG = 'job="raywarden-agent",' + NS + ',ray_cluster=~"$cluster"'
CTL = 'job=~"$job"'
RI = "$__rate_interval"


def quantiles(metric, by, sel, qs=(0.5, 0.95, 0.99)):
    """One histogram_quantile target per quantile, legend '<by labels> p<q>'."""
    legend = " ".join("{{%s}}" % b for b in by if b != "le")
    keys = ", ".join(list(by) + ["le"])
    return [
        ("histogram_quantile(%g, sum by (%s) (rate(%s_bucket{%s}[%s])))" % (q, keys, metric, sel, RI),
         (legend + " " if legend else "") + "p%d" % round(q * 100))
        for q in qs
    ]


# (row title, [(panel type, title, unit, width, [(expr, legend)], description)])
ROWS = [
    ("KubeRay operator", [
        ("stat", "RayClusters", "short", 4,
         [('count(kuberay_cluster_info{%s})' % NS, "")],
         "kuberay_cluster_info: one series per RayCluster."),
        ("stat", "RayJobs", "short", 4,
         [('count(kuberay_job_info{%s})' % NS, "")], "kuberay_job_info: one series per RayJob."),
        ("stat", "RayServices", "short", 4,
         [('count(kuberay_service_info{%s})' % NS, "")],
         "kuberay_service_info: one series per RayService."),
        ("stat", "RayClusters provisioned", "short", 4,
         [('count(kuberay_cluster_condition_provisioned{%s,condition=~"(?i)true"} == 1)' % CL,
           "")],
         "RayClusters whose RayClusterProvisioned condition is true."),
        ("stat", "Controller leader", "short", 4,
         [('sum(leader_election_master_status{%s})' % CTL, "")],
         "Replicas holding the leader Lease: 1 is healthy."),
        ("stat", "Controller targets up", "short", 4,
         [('sum(up{%s})' % CTL, "")], "Scraped controller replicas that answered."),
        ("bargauge", "RayCluster provisioned duration", "s", 12,
         # KubeRay exports a gauge; an exporter with a histogram of one observation per
         # RayCluster answers the second half.
         [('max by (namespace, name) (kuberay_cluster_provisioned_duration_seconds{%s}) or '
           'max by (namespace, name) (kuberay_cluster_provisioned_duration_seconds_sum{%s} '
           '/ kuberay_cluster_provisioned_duration_seconds_count{%s})' % (CL, CL, CL),
           "{{namespace}}/{{name}}")],
         "Time from a RayCluster's creation until RayClusterProvisioned became true."),
        ("bargauge", "RayJob execution duration", "s", 12,
         [('max by (namespace, name, job_deployment_status) '
           '(kuberay_job_execution_duration_seconds{%s})' % NS,
           "{{namespace}}/{{name}} {{job_deployment_status}}")],
         "Duration of each finished RayJob attempt, from its startTime."),
        ("timeseries", "RayJobs by deployment status", "short", 12,
         [('sum by (deployment_status) (kuberay_job_deployment_status{%s})' % NS,
           "{{deployment_status}}")], "kuberay_job_deployment_status summed by status."),
        ("timeseries", "Work queue depth", "short", 12,
         [('sum by (name) (workqueue_depth{%s})' % CTL, "{{name}}")],
         "Keys waiting in each controller's work queue."),
        ("timeseries", "Reconciles per second", "ops", 12,
         [('sum by (controller, result) (rate(controller_runtime_reconcile_total{%s}[%s]))'
           % (CTL, RI), "{{controller}} {{result}}")],
         "controller_runtime_reconcile_total by controller and result."),
        ("timeseries", "Reconcile time p50/p95/p99", "s", 12,
         quantiles("controller_runtime_reconcile_time_seconds", ["controller"], CTL),
         "controller_runtime_reconcile_time_seconds by controller."),
    ]),
    ("Ray pods", [
        ("timeseries", "Pods ready per RayCluster", "short", 12,
         [('sum by (namespace, name) (raywarden_raycluster_pods{%s,ready="true"})' % CL,
           "{{namespace}}/{{name}} ready"),
          ('sum by (namespace, name) (raywarden_raycluster_pods{%s,ready="false"})' % CL,
           "{{namespace}}/{{name}} not ready")],
         "Pods by their readiness gate, as the controller sets it."),
        ("table", "Ray components not ok", "short", 12,
         [('sum by (namespace, pod, component, state) '
           '(raywarden_agent_probe_state{%s,state!="ok"} == 1)' % AG, "")],
         "Each pod's probed components that are not ok (draining and absent are normal)."),
        ("timeseries", "Probe latency per component", "s", 12,
         quantiles("raywarden_agent_probe_duration_seconds", ["component"], AG, qs=(0.5, 0.99)),
         "Agent probe round trips, by Ray component."),
        ("timeseries", "Probe failures per second", "ops", 12,
         [('sum by (component, result) (rate(raywarden_agent_probes_total{%s,'
           'result=~"fail|refused|timeout|error"}[%s]))' % (AG, RI),
           "{{component}} {{result}}")],
         "Probe results other than ok, by component."),
        ("timeseries", "Oldest agent report", "s", 12,
         [('max by (namespace, name) (raywarden_raycluster_report_age_max_seconds{%s})' % CL,
           "{{namespace}}/{{name}}")],
         "Age of the oldest agent report among each RayCluster's running pods."),
        ("timeseries", "Readiness flips per second", "ops", 12,
         [('sum by (namespace, to) (rate(raywarden_pod_readiness_transitions_total{%s}[%s]))'
           % (NS, RI), "{{namespace}} to {{to}}"),
          ('sum by (namespace, ray_cluster) (rate(raywarden_agent_ready_transitions_total{%s}[%s]))'
           % (AG, RI), "{{namespace}}/{{ray_cluster}} (agents)")],
         "Readiness gate changes made by the controller, and flips seen by the agents."),
        ("timeseries", "Agent report to readiness gate", "s", 12,
         quantiles("raywarden_agent_report_to_gate_seconds", [], CTL),
         "From a report that changes a pod's readiness to its readiness gate patch answered."),
        ("timeseries", "Readiness gate patch", "s", 12,
         quantiles("raywarden_agent_gate_patch_seconds", [], CTL) +
         [('sum by (result) (rate(raywarden_agent_gate_patches_total{%s}[%s]))' % (CTL, RI),
           "patches {{result}}/s")],
         "Time of the pods/status patch that sets ray.io/agent-ready, and patches by result."),
    ]),
    ("Agent hub", [
        ("timeseries", "Agents connected", "short", 8,
         [('sum(raywarden_agents_connected{%s})' % CTL, "reporting agents"),
          ('sum(raywarden_agent_connections{%s})' % CTL, "open connections"),
          ('count(raywarden_agent_controller_connected{%s} == 0)' % AG,
           "agents without a connection")],
         "Agents that reported within the staleness period, and hub connections."),
        ("timeseries", "Hub refusals per second", "ops", 8,
         [('sum by (reason) (rate(raywarden_agent_refusals_total{%s}[%s]))' % (CTL, RI),
           "{{reason}}")],
         "Agent messages the hub refused, by reason."),
        ("timeseries", "Agents gone stale per second", "ops", 8,
         [('sum(rate(raywarden_agent_stale_total{%s}[%s]))' % (CTL, RI), "stale"),
          ('sum by (reason) (rate(raywarden_agent_connections_closed_total{%s}[%s]))'
           % (CTL, RI), "closed: {{reason}}")],
         "Agents silent for the staleness period, and connections the hub closed."),
    ]),
    ("RayService", [
        ("timeseries", "Serve endpoints", "short", 12,
         [('sum by (namespace, name) (raywarden_rayservice_serve_endpoints{%s})' % NS,
           "{{namespace}}/{{name}}")],
         "Ready serve endpoints of each RayService."),
        ("table", "RayService ready", "short", 12,
         [('max by (namespace, name, condition) (kuberay_service_condition_ready{%s})' % NS, "")],
         "The RayService Ready condition (condition=true|false)."),
    ]),
    ("Alerts", [
        ("table", "Alerts firing or pending", "short", 24,
         [('sum by (alertname, severity, alertstate, namespace, pod, name) '
           '(ALERTS{alertstate=~"firing|pending"})', "")],
         "raywarden's alerts (manifests/prometheus/raywarden-rules.yaml); runbooks in "
         "docs/observability.md."),
    ]),
    ("Controller process", [
        ("timeseries", "CPU", "percentunit", 8,
         [('sum by (instance) (rate(process_cpu_seconds_total{%s}[%s]))' % (CTL, RI),
           "{{instance}}")], "Controller CPU time per second."),
        ("timeseries", "Resident memory", "bytes", 8,
         [('sum by (instance) (process_resident_memory_bytes{%s})' % CTL, "{{instance}}")],
         "Controller resident set size."),
        ("timeseries", "API requests per second", "ops", 8,
         [('sum by (code, method) (rate(rest_client_requests_total{%s}[%s]))' % (CTL, RI),
           "{{method}} {{code}}")], "Requests to the Kubernetes API server by method and code."),
    ]),
]


def variable(name, label, query, default=None):
    """A query variable: multi-valued with All (".*") unless it has a single default."""
    v = {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query, "refresh": 2, "sort": 1, "options": [], "hide": 0,
    }
    if default:
        v.update({"includeAll": False, "multi": False,
                  "current": {"selected": True, "text": default, "value": default}})
    else:
        v.update({"includeAll": True, "multi": True, "allValue": ".*",
                  "current": {"selected": True, "text": ["All"], "value": ["$__all"]}})
    return v


def panel(pid, kind, title, unit, width, targets, description, x, y):
    p = {
        "id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"h": 4 if kind == "stat" else 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr,
             "legendFormat": legend or "__auto", "range": kind == "timeseries",
             "instant": kind != "timeseries",
             **({"format": "table"} if kind == "table" else {})}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "none"}
    elif kind == "bargauge":
        p["options"] = {"orientation": "horizontal", "displayMode": "basic",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "table":
        p["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    return p


def dashboard():
    panels, pid, y = [], 1, 0
    for row_title, row_panels in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y, x, row_h = pid + 1, y + 1, 0, 0
        for kind, title, unit, width, targets, description in row_panels:
            if x + width > 24:
                x, y, row_h = 0, y + row_h, 0
            p = panel(pid, kind, title, unit, width, targets, description, x, y)
            panels.append(p)
            pid, x, row_h = pid + 1, x + width, max(row_h, p["gridPos"]["h"])
        y += row_h
    return {
        "uid": "raywarden", "title": "raywarden", "tags": ["raywarden", "ray", "kuberay"],
        "description": "Ray clusters under raywarden: KubeRay's operator metrics and "
                       "raywarden's agents, readiness gates, agent hub and alerts.",
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "timezone": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
             "options": []},
            # Single-valued: the process and up panels must not mix in the agents' job.
            variable("job", "Controller job", "label_values(controller_runtime_reconcile_total, job)",
                     default="raywarden-controller"),
            variable("namespace", "Namespace", "label_values(kuberay_cluster_info, namespace)"),
            variable("cluster", "RayCluster",
                     'label_values(kuberay_cluster_info{namespace=~"$namespace"}, name)'),
        ]},
        "panels": panels,
    }


def render():
    return json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"


def main(argv):
    return generated.write_or_check(OUT, render(), argv, __doc__)

if __name__ == "__main__":
    sys.exit(main(sys.argv))
